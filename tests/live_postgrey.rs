//! The binary against a real running journald fed by a real postgrey answering real policy
//! requests: `report` sees the multi-server signature exactly as postgrey logged it, and a
//! suggestion from `whitelist`, appended with `accept`, is what postgrey whitelists after SIGHUP.
//!
//! Postgrey runs with the default `--lookup-by-subnet` (triplets keyed by /24) and a 1 s delay,
//! and with an empty main whitelist instead of Debian's shipped one (which lists
//! `amazonses.com`), so it greylists the provider these tests play. Every figure asserted
//! follows from the requests sent; delays, which depend on the clock, are read back from what
//! postgrey logged.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::postgrey::{DUNNO_REPLY, PASS_AFTER_DELAY_PREFIX, greylist_reply, sleep_past_delay};
use common::{JournalEntry, Journald, Postgrey, bin, require_root, wait_for};
use serde_json::{Value, json};

const DELAY_S: u32 = 1;
const RECIPIENT: &str = "bob@example.org";
const UNIT_MATCH: &str = "_SYSTEMD_UNIT=postgrey.service";
/// An ordinary user's uid: what journald records for a forged `logger -t postgrey` line.
const FORGER_UID: u32 = 65534;

/// A sender host of the multi-server provider: name and address.
struct Host {
    name: &'static str,
    address: &'static str,
}

impl Host {
    const fn new(name: &'static str, address: &'static str) -> Host {
        Host { name, address }
    }
}

/// The whitelist files postgrey and the advisor share: an empty main list (Debian's shipped
/// one would whitelist the provider) and an empty `.local` beside it for `accept`. Plus an
/// empty ignore file, so the host's `/etc/postgrey-advisor/ignore` plays no part.
struct Lists {
    dir: tempfile::TempDir,
}

impl Lists {
    fn new() -> Self {
        let dir = common::world_readable_tempdir();
        for name in ["whitelist_clients", "whitelist_clients.local", "ignore"] {
            std::fs::write(dir.path().join(name), "").expect("write empty list");
            std::fs::set_permissions(
                dir.path().join(name),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod list 0644");
        }
        Lists { dir }
    }

    fn main(&self) -> PathBuf {
        self.dir.path().join("whitelist_clients")
    }

    fn local(&self) -> PathBuf {
        self.dir.path().join("whitelist_clients.local")
    }

    fn ignore(&self) -> PathBuf {
        self.dir.path().join("ignore")
    }

    /// Postgrey with both whitelist files (postgrey takes `--whitelist-clients` repeatedly).
    fn start_postgrey(&self, journald: &Journald) -> Postgrey {
        Postgrey::builder()
            .delay(DELAY_S)
            .whitelist_clients(self.main())
            .whitelist_clients(self.local())
            .start(journald)
    }

    /// `postgrey-advisor <command> --journal-dir … --whitelist-clients main --whitelist-clients
    /// local --ignore-file … <extra>`; returns stdout after asserting success.
    fn advisor(&self, command: &str, journald: &Journald, extra: &[&str]) -> String {
        let output = bin()
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .arg(command)
            .arg("--journal-dir")
            .arg(journald.journal_dir())
            .arg("--whitelist-clients")
            .arg(self.main())
            .arg("--whitelist-clients")
            .arg(self.local())
            .arg("--ignore-file")
            .arg(self.ignore())
            .args(extra)
            .output()
            .expect("run postgrey-advisor");
        assert!(
            output.status.success(),
            "postgrey-advisor {command} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    fn report_json(&self, journald: &Journald, extra: &[&str]) -> Value {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let stdout = self.advisor("report", journald, &args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn request(postgrey: &Postgrey, host: &Host, sender: &str) -> String {
    postgrey.request(host.name, host.address, sender, RECIPIENT)
}

fn assert_greylisted(reply: &str) {
    assert_eq!(reply, greylist_reply("example.org"));
}

fn assert_passed_after_delay(reply: &str) {
    assert!(reply.starts_with(PASS_AFTER_DELAY_PREFIX), "{reply}");
}

/// Postgrey's decision lines (`action=…`) in journal order, once at least `count` are there.
fn decisions(journald: &Journald, count: usize) -> Vec<JournalEntry> {
    wait_for(
        &format!("{count} postgrey decisions in the journal"),
        || {
            let found: Vec<JournalEntry> = journald
                .entries(&[UNIT_MATCH])
                .into_iter()
                .filter(|e| e.message().is_some_and(|m| m.starts_with("action=")))
                .collect();
            (found.len() >= count).then_some(found)
        },
    )
}

/// The `delay=` postgrey logged when the triplet of `client_name`/`sender` passed.
fn logged_delay(decisions: &[JournalEntry], client_name: &str, sender: &str) -> u64 {
    let tail = format!(", client_name={client_name}, ");
    let sender = format!(", sender={sender}, ");
    let found: Vec<u64> = decisions
        .iter()
        .filter_map(JournalEntry::message)
        .filter(|m| m.contains(&tail) && m.contains(&sender))
        .filter_map(|m| {
            let rest = m.strip_prefix("action=pass, reason=triplet found, delay=")?;
            rest.split(',').next()?.parse().ok()
        })
        .collect();
    assert_eq!(found.len(), 1, "one pass of {client_name}: {decisions:?}");
    assert!(found[0] >= u64::from(DELAY_S), "{found:?}");
    found[0]
}

/// `__REALTIME_TIMESTAMP` of an entry as the report prints it.
fn rfc3339(entry: &JournalEntry) -> String {
    let us: i64 = entry
        .get("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse().ok())
        .expect("entry has __REALTIME_TIMESTAMP");
    jiff::Timestamp::from_microsecond(us)
        .expect("valid timestamp")
        .to_string()
}

/// The realtime stamps of the first and last decisions naming any of `clients`.
fn seen_span(decisions: &[JournalEntry], clients: &[&str]) -> (String, String) {
    let naming: Vec<&JournalEntry> = decisions
        .iter()
        .filter(|e| {
            e.message().is_some_and(|m| {
                clients
                    .iter()
                    .any(|c| m.contains(&format!(", client_name={c}, ")))
            })
        })
        .collect();
    let first = naming.first().expect("a decision naming the clients");
    let last = naming.last().expect("a decision naming the clients");
    (rfc3339(first), rfc3339(last))
}

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array()
        .expect("an array")
        .iter()
        .find(|g| g[field] == name)
        .unwrap_or_else(|| panic!("no {field} {name} in {list:#}"))
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("an array")
        .iter()
        .map(|g| g[field].as_str().expect("a name").to_owned())
        .collect()
}

/// The evidence fields of issue 2's JSON contract, picked out of a group.
fn evidence_of(group: &Value) -> Value {
    let fields = [
        "new",
        "early_retry",
        "passed_after_delay",
        "median_delay_s",
        "max_delay_s",
        "delay_total_s",
        "distinct_ips",
        "distinct_nets",
        "distinct_hosts",
        "retried_from_other_net",
        "first_seen",
        "last_seen",
    ];
    let mut picked = serde_json::Map::new();
    for field in fields {
        picked.insert(field.to_owned(), group[field].clone());
    }
    Value::Object(picked)
}

/// Asserts the evidence fields of `group`: the figures in `expected`, and as `first_seen` and
/// `last_seen` the stamps of the first and last decisions naming any of `clients`, which it
/// returns.
fn assert_evidence(
    group: &Value,
    decisions: &[JournalEntry],
    clients: &[&str],
    mut expected: Value,
) -> (String, String) {
    let (first, last) = seen_span(decisions, clients);
    expected["first_seen"] = Value::from(first.as_str());
    expected["last_seen"] = Value::from(last.as_str());
    assert_eq!(evidence_of(group), expected);
    (first, last)
}

// The provider (amazonses.com), one server in each of two /24s, and a small sender.
const A1: Host = Host::new("a1-1.smtp-out.eu-west-1.amazonses.com", "198.51.100.10");
const B2: Host = Host::new("b2-2.smtp-out.eu-west-1.amazonses.com", "203.0.113.20");
const SMALLSHOP: Host = Host::new("mail.smallshop.de", "198.18.20.25");
const UNKNOWN: Host = Host::new("unknown", "192.0.2.77");

#[test]
fn report_shows_the_multi_server_retry_real_postgrey_logged_and_skips_a_forged_line() {
    require_root();
    let journald = Journald::start();
    let lists = Lists::new();
    let postgrey = lists.start_postgrey(&journald);
    let ses_sender = "bounces@shop-one.example";
    let shop_sender = "orders@smallshop.de";

    // First attempts: the provider from its first /24, the small sender, an unresolved
    // client; then the provider's retry from another server in another /24, which postgrey
    // (keying triplets by /24) greylists as new again.
    assert_greylisted(&request(&postgrey, &A1, ses_sender));
    assert_greylisted(&request(&postgrey, &SMALLSHOP, shop_sender));
    assert_greylisted(&request(&postgrey, &UNKNOWN, "newsletter@shop.example"));
    assert_greylisted(&request(&postgrey, &B2, ses_sender));
    // An ordinary user forges a retry of the same mail from a third /24: were it counted, the
    // provider would show 2 retries from other networks and 3 networks.
    journald.log_as_user(
        FORGER_UID,
        "postgrey",
        &format!(
            "action=greylist, reason=new, client_name=c3-3.smtp-out.eu-west-1.amazonses.com, \
             client_address=198.18.7.9, sender={ses_sender}, recipient={RECIPIENT}"
        ),
    );

    sleep_past_delay(DELAY_S);
    assert_passed_after_delay(&request(&postgrey, &A1, ses_sender));
    assert_passed_after_delay(&request(&postgrey, &SMALLSHOP, shop_sender));

    let decisions = decisions(&journald, 6);
    assert_eq!(decisions.len(), 6, "{decisions:?}");
    journald.wait_for_entries(&[&format!("_UID={FORGER_UID}")], 1);
    let ses_delay = logged_delay(&decisions, A1.name, ses_sender);
    let shop_delay = logged_delay(&decisions, SMALLSHOP.name, shop_sender);
    // Every entry with postgrey's identifier: its own (decisions and start-up lines) and the
    // forged one.
    let entries = journald.entries(&["SYSLOG_IDENTIFIER=postgrey"]).len() as u64;
    let trusted = journald.entries(&[UNIT_MATCH]).len() as u64;
    assert_eq!(entries, trusted + 1);

    let report = lists.report_json(&journald, &[]);

    assert_eq!(
        report["totals"],
        json!({
            "entries": entries,
            "postgrey_lines": trusted,
            // The policy requests; not postgrey's start-up lines.
            "decisions": 6,
            "greylisted": 4,
            "untrusted_skipped": 1,
            "malformed": 0,
            // The two passes after greylisting and the delays postgrey logged for them.
            "passed_after_delay": 2,
            "delay_total_s": ses_delay + shop_delay,
        })
    );
    assert_eq!(
        names(&report["groups"], "domain"),
        ["amazonses.com", "smallshop.de"]
    );

    let ses = find(&report["groups"], "domain", "amazonses.com");
    assert_evidence(
        ses,
        &decisions,
        &[A1.name, B2.name],
        json!({
            "new": 2,
            "early_retry": 0,
            "passed_after_delay": 1,
            "median_delay_s": ses_delay,
            "max_delay_s": ses_delay,
            "delay_total_s": ses_delay,
            "distinct_ips": 2,
            "distinct_nets": 2,
            "distinct_hosts": 2,
            "retried_from_other_net": 1,
        }),
    );
    // A1 was named twice (greylisted, passed), B2 once: most frequent first.
    assert_eq!(ses["sample_hosts"], json!([A1.name, B2.name]));
    assert_eq!(ses["status"], "candidate");
    // Below the default --min-count of 15: no verdict, no suggestion.
    assert_eq!(ses["verdict"], Value::Null);
    assert_eq!(ses["suggestion"], Value::Null);

    let shop = find(&report["groups"], "domain", "smallshop.de");
    assert_evidence(
        shop,
        &decisions,
        &[SMALLSHOP.name],
        json!({
            "new": 1,
            "early_retry": 0,
            "passed_after_delay": 1,
            "median_delay_s": shop_delay,
            "max_delay_s": shop_delay,
            "delay_total_s": shop_delay,
            "distinct_ips": 1,
            "distinct_nets": 1,
            "distinct_hosts": 1,
            "retried_from_other_net": 0,
        }),
    );
    assert_eq!(shop["sample_hosts"], json!([SMALLSHOP.name]));

    assert_eq!(names(&report["unresolved"], "network"), ["192.0.2.0/24"]);
    let unresolved = find(&report["unresolved"], "network", "192.0.2.0/24");
    let (first, last) = assert_evidence(
        unresolved,
        &decisions,
        &[UNKNOWN.name],
        json!({
            "new": 1,
            "early_retry": 0,
            "passed_after_delay": 0,
            "median_delay_s": null,
            "max_delay_s": null,
            "delay_total_s": 0,
            "distinct_ips": 1,
            "distinct_nets": 1,
            "distinct_hosts": 0,
            "retried_from_other_net": 0,
        }),
    );
    assert_eq!(first, last);

    // `counts --all` gives the same `new` figures, in `uniq -c` layout, then status and verdict
    // (none below --min-count); unresolved clients count under their block.
    assert_eq!(
        lists.advisor("report", &journald, &["--format", "counts", "--all"]),
        "      2 amazonses.com candidate -\n      1 192.0.2.0/24 candidate -\n      \
         1 smallshop.de candidate -\n"
    );
}

// The provider's servers for the whitelist test: three /24s it retries from, and a fourth
// that is first seen after the whitelist took effect.
const NET_A: Host = Host::new("a1-1.smtp-out.eu-west-1.amazonses.com", "54.240.1.11");
const NET_B: Host = Host::new("b2-1.smtp-out.eu-west-1.amazonses.com", "54.240.2.12");
const NET_C: Host = Host::new("c3-1.smtp-out.eu-west-1.amazonses.com", "54.240.3.13");
const NET_D: Host = Host::new("d4-7.smtp-out.eu-west-1.amazonses.com", "54.240.9.40");
const SUFFIX: &str = "smtp-out.eu-west-1.amazonses.com";

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn an_accepted_suggestion_is_what_real_postgrey_whitelists_after_sighup() {
    require_root();
    let journald = Journald::start();
    let lists = Lists::new();
    let postgrey = lists.start_postgrey(&journald);
    let senders = ["bounces@shop-one.example", "bounces@shop-two.example"];

    // Two mails, each greylisted from three /24s in turn (new each time), then passing from
    // the first after the delay: 6 new, 4 retried from another network, 2 passed.
    for sender in senders {
        for host in [&NET_A, &NET_B, &NET_C] {
            assert_greylisted(&request(&postgrey, host, sender));
        }
    }
    sleep_past_delay(DELAY_S);
    for sender in senders {
        assert_passed_after_delay(&request(&postgrey, &NET_A, sender));
    }
    let decisions = decisions(&journald, 8);
    assert_eq!(decisions.len(), 8, "{decisions:?}");
    let mut delays: Vec<u64> = senders
        .iter()
        .map(|s| logged_delay(&decisions, NET_A.name, s))
        .collect();
    delays.sort_unstable();
    // The lower middle of two: a delay that happened.
    let median = delays[0];

    let report = lists.report_json(&journald, &["--min-count", "1"]);
    let ses = find(&report["groups"], "domain", "amazonses.com");
    assert_eq!(ses["new"], 6);
    assert_eq!(ses["retried_from_other_net"], 4);
    assert_eq!(ses["passed_after_delay"], 2);
    assert_eq!(ses["median_delay_s"], median);
    assert_eq!(ses["max_delay_s"], delays[1]);
    assert_eq!(ses["distinct_nets"], 3);
    assert_eq!(ses["status"], "candidate");
    assert_eq!(ses["verdict"], "whitelist");
    assert_eq!(ses["suggestion"], SUFFIX);

    let suggested = lists.advisor("whitelist", &journald, &["--min-count", "1"]);
    assert_eq!(
        suggested,
        format!(
            "# amazonses.com: multi-server sender: 4 of 6 greylistings retried from another \
             network, 2 passed after delay, median wait {median}s\n{SUFFIX}\n"
        )
    );
    let line = suggested
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a suggested line");

    let accepted = bin()
        .arg("accept")
        .arg(line)
        .arg("--whitelist-local")
        .arg(lists.local())
        .output()
        .expect("run postgrey-advisor accept");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&accepted.stdout),
        format!(
            "added to {}:\n  {SUFFIX}\n\
             postgrey rereads its whitelists on SIGHUP: systemctl kill -s HUP --kill-whom=main \
             postgrey.service (or accept --reload)\n",
            lists.local().display()
        )
    );
    let local = std::fs::read_to_string(lists.local()).expect("read .local");
    let local_lines: Vec<&str> = local.lines().collect();
    assert_eq!(local_lines.len(), 2, "{local}");
    assert!(local_lines[0].starts_with('#'), "{local}");
    assert_eq!(local_lines[1], SUFFIX);
    // Postgrey runs as user postgrey and must still be able to read the file.
    assert_eq!(mode_of(&lists.local()), 0o644);

    // A server in a /24 never seen before, a mail never seen before.
    let fresh = "bounces@shop-three.example";
    // Until postgrey rereads its lists, the new line does nothing.
    assert_greylisted(&request(&postgrey, &NET_D, fresh));
    postgrey.reload(&journald);
    assert_eq!(request(&postgrey, &NET_D, fresh), DUNNO_REPLY);
    let whitelisted = journald.wait_for_entries(
        &[&format!(
            "MESSAGE=action=pass, reason=client whitelist, client_name={}, client_address={}, \
             sender={fresh}, recipient={RECIPIENT}",
            NET_D.name, NET_D.address
        )],
        1,
    );
    assert_eq!(whitelisted.len(), 1);
    assert_eq!(
        whitelisted[0].get("_SYSTEMD_UNIT").as_deref(),
        Some("postgrey.service")
    );

    // The advisor now sees the group as whitelisted (every host it saw is covered) and
    // suggests nothing more.
    let report = lists.report_json(&journald, &["--min-count", "1"]);
    let ses = find(&report["groups"], "domain", "amazonses.com");
    assert_eq!(ses["status"], "whitelisted");
    assert_eq!(ses["new"], 7);
    assert_eq!(ses["passed_whitelisted"], 1);
    assert_eq!(ses["verdict"], Value::Null);
    assert_eq!(ses["suggestion"], Value::Null);
    assert_eq!(
        lists.advisor("whitelist", &journald, &["--min-count", "1"]),
        ""
    );
}
