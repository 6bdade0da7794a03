//! postgrey-advisor's reading of `whitelist_clients` against the real postgrey 1.37: the same
//! files go to a running postgrey and to `whitelist::load`, and every client below must get the
//! same answer from both — `action=DUNNO` (client whitelist) exactly when `covers` says so.

mod common;

use std::fs;
use std::net::IpAddr;

use common::fixtures::copy_debian_list;
use common::postgrey::{DUNNO_REPLY, greylist_reply};
use common::{Journald, Postgrey, world_readable_tempdir};
use postgrey_advisor::whitelist;

/// One entry per rule of postgrey's reader, the surprising ones included.
const TRICKY_LIST: &str = "\
# one entry per rule
sendgrid.net
MixedCase.Example
/mail\\d+\\.unanchored\\.example/
/^mx\\.anchored\\.example$/
/^cut#1\\.example$/
.leading-dot.example
*.wild.example
192.0.2.7
198.51.100.64/26
10.1.2.3/8
203.0.113
172.16
010.20.30.40
300.1.1.1
192.0.2.0/255.255.255.0
2001:db8:1::/48
2001:db8:2::/ffff:ffff:ffff::
[2001:db8:3::1]
::100.64.0.0/120
::ffff:100.64.1.1
   \t
";

/// (client_name, client_address, whitelisted?) — the expectation is postgrey's own answer.
const CLIENTS: &[(&str, &str, bool)] = &[
    // plain names: the name and below, at a label boundary, any case
    ("o1.sendgrid.net", "100.70.0.1", true),
    ("sendgrid.net", "100.70.0.2", true),
    ("evilsendgrid.net", "100.70.0.3", false),
    ("sendgrid.net.attacker.example", "100.70.0.4", false),
    ("MX.mixedcase.EXAMPLE", "100.70.0.5", true),
    // regexes: case-insensitive, unanchored unless written so
    (
        "xmail7.Unanchored.example.attacker.example",
        "100.70.0.6",
        true,
    ),
    ("mail.unanchored.example", "100.70.0.7", false),
    ("mx.anchored.example", "100.70.0.8", true),
    ("mx.anchored.example.attacker.example", "100.70.0.9", false),
    // entries that never match: a regex cut by '#', a leading dot, a '*'
    ("cut1.example", "100.70.0.10", false),
    ("a.leading-dot.example", "100.70.0.11", false),
    ("x.wild.example", "100.70.0.12", false),
    // IPv4
    ("unknown", "192.0.2.7", true),
    ("unknown", "192.0.2.8", false),
    ("unknown", "198.51.100.127", true),
    ("unknown", "198.51.100.128", false),
    ("unknown", "10.200.0.1", true),
    ("unknown", "203.0.113.250", true),
    ("unknown", "203.0.114.1", false),
    ("unknown", "172.16.0.9", true),
    ("unknown", "172.16.1.9", false),
    ("unknown", "8.20.30.40", true),
    ("unknown", "8.20.30.41", false),
    // IPv6, and IPv4 seen as ::a.b.c.d
    ("unknown", "2001:db8:1:ffff::1", true),
    ("unknown", "2001:db8:2:9::1", true),
    ("unknown", "2001:db8:4::1", false),
    ("unknown", "2001:db8:3::1", true),
    ("unknown", "2001:db8:3::2", false),
    ("unknown", "100.64.0.77", true),
    ("unknown", "100.64.1.1", false),
    ("unknown", "::ffff:100.64.1.1", true),
    // the shipped Debian list
    ("a1-2.smtp-out.eu-west-1.amazonses.com", "54.240.4.1", true),
    (
        "mail-db5eur01on2040.outbound.protection.outlook.com",
        "40.107.1.40",
        true,
    ),
    ("smtp12.orange.fr", "80.12.242.12", true),
    ("smtp.orange.fr", "80.12.242.13", false),
    ("postfix3-g20.free.fr", "212.27.42.3", true),
    ("mail140-7.suw21.mcdlv.net", "205.201.140.7", true),
    ("mail140-7.suw21.mcdlv.net", "198.2.192.1", false),
    ("unknown", "2a01:4180:4050:400::9", true),
    ("unknown", "2a01:4180:4050:401::9", false),
];

#[test]
fn postgrey_and_postgrey_advisor_agree_on_every_client() {
    common::require_root();
    let journald = Journald::start();
    let files = world_readable_tempdir();
    let debian = copy_debian_list(files.path());
    let tricky = files.path().join("tricky");
    fs::write(&tricky, TRICKY_LIST).expect("write the tricky list");
    let postgrey = Postgrey::builder()
        .whitelist_clients(&debian)
        .whitelist_clients(&tricky)
        .start(&journald);
    let list = whitelist::load(&[debian.clone(), tricky.clone()]).expect("load");

    let mut disagreements = Vec::new();
    for (index, (name, address, expected)) in CLIENTS.iter().enumerate() {
        // A sender of its own per client, so no earlier triplet lets a request pass.
        let sender = format!("s{index}@sender.example");
        let reply = postgrey.request(name, address, &sender, "bob@example.org");
        let by_postgrey = match reply.as_str() {
            DUNNO_REPLY => true,
            _ => {
                assert_eq!(reply, greylist_reply("example.org"), "{name} [{address}]");
                false
            }
        };
        let ip: IpAddr = address.parse().expect("test address");
        let client_name = (*name != "unknown").then_some(*name);
        let by_advisor = list.covers(client_name, Some(ip));
        if (by_postgrey, by_advisor) != (*expected, *expected) {
            disagreements.push(format!(
                "{name} [{address}]: expected {expected}, postgrey {by_postgrey}, \
                 postgrey-advisor {by_advisor}"
            ));
        }
    }
    assert_eq!(disagreements, Vec::<String>::new());

    // What postgrey skips is reported, with file and line.
    let problems: Vec<String> = list.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems,
        [format!(
            "{}:15: postgrey skips this line without a warning: 300 is larger than 255",
            tricky.display()
        )]
    );
}
