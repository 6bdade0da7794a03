//! The advice counted as the local postgrey runs: a real postgrey started with options other
//! than its defaults, its options file read with `--postgrey-config`, and the figures that
//! depend on them checked against what postgrey itself answered.

mod common;

use std::path::{Path, PathBuf};

use common::postgrey::{DUNNO_REPLY, PASS_AFTER_DELAY_PREFIX, greylist_reply, sleep_past_delay};
use common::{Journald, Postgrey, bin, require_root, wait_for};
use serde_json::{Value, json};

const RECIPIENT: &str = "bob@example.org";
const UNIT_MATCH: &str = "_SYSTEMD_UNIT=postgrey.service";

/// Files named only in postgrey's options: its whitelist and its options file, plus an empty
/// ignore file so that the host's plays no part.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(whitelist: &str, options: &str) -> Site {
        let dir = common::world_readable_tempdir();
        let site = Site { dir };
        std::fs::write(site.whitelist(), whitelist).unwrap();
        std::fs::write(site.ignore(), "").unwrap();
        let options = options.replace("WHITELIST", &site.whitelist().display().to_string());
        std::fs::write(
            site.options(),
            format!("# as Debian's /etc/default/postgrey\nPOSTGREY_OPTS=\"{options}\"\n"),
        )
        .unwrap();
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn whitelist(&self) -> PathBuf {
        self.path("site_whitelist")
    }

    fn ignore(&self) -> PathBuf {
        self.path("ignore")
    }

    fn options(&self) -> PathBuf {
        self.path("postgrey")
    }
}

/// `postgrey-advisor report` over the test's journal, with `extra` arguments; stdout.
fn report(journald: &Journald, site: &Site, extra: &[&str]) -> String {
    let output = bin()
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
        .arg("report")
        .arg("--journal-dir")
        .arg(journald.journal_dir())
        .arg("--ignore-file")
        .arg(site.ignore())
        .args(["--legacy-ignore-file", "", "--all"])
        .args(extra)
        .output()
        .unwrap();
    common::assert_success(&output, "postgrey-advisor report");
    String::from_utf8(output.stdout).unwrap()
}

/// A real postgrey run as `/32` with the site's whitelist file: the options the site's
/// options file names too.
fn start_slash_32(site: &Site, journald: &Journald) -> Postgrey {
    Postgrey::builder()
        .arg("--ipv4cidr=32")
        .whitelist_clients(site.whitelist())
        .start(journald)
}

/// postgrey's decision lines so far.
fn logged_decisions(journald: &Journald) -> Vec<String> {
    journald
        .entries(&[UNIT_MATCH])
        .iter()
        .filter_map(|e| e.message())
        .filter(|m| m.starts_with("action="))
        .collect()
}

fn report_json(journald: &Journald, site: &Site, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = report(journald, site, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|g| g[field] == name)
        .unwrap_or_else(|| panic!("no {field} {name} in {list:#}"))
}

/// Waits until postgrey has logged `count` decisions.
fn wait_for_decisions(journald: &Journald, count: usize) {
    wait_for(&format!("{count} postgrey decisions"), || {
        (logged_decisions(journald).len() >= count).then_some(())
    });
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// postgrey with `--ipv4cidr=32` greylists a sender again from every other address of its /24,
/// and whitelists a client through a file named only in its options: read with
/// `--postgrey-config`, the report counts the networks and retries postgrey saw, and knows
/// the whitelisted group; read with postgrey's defaults it does not.
#[test]
fn a_slash_32_postgrey_and_its_own_whitelist_file() {
    require_root();
    let journald = Journald::start();
    let site = Site::new(
        "# the site's own list\ncovered.example\n",
        "--inet=10023 --delay=2 --ipv4cidr=32 --whitelist-clients=WHITELIST",
    );
    let postgrey = start_slash_32(&site, &journald);
    let sender = "news@esp-many.example";
    for (host, address) in [
        ("o1.esp-many.example", "198.51.100.1"),
        ("o2.esp-many.example", "198.51.100.2"),
        ("o3.esp-many.example", "198.51.100.3"),
    ] {
        // Each a `new` greylisting: another /32, though the same /24.
        let reply = postgrey.request(host, address, sender, RECIPIENT);
        assert_eq!(reply, greylist_reply("example.org"), "{host}");
    }
    let reply = postgrey.request(
        "mx.covered.example",
        "203.0.113.5",
        "a@covered.example",
        RECIPIENT,
    );
    assert_eq!(reply, DUNNO_REPLY);
    let reply = postgrey.request("unknown", "192.0.2.7", "x@unresolved.example", RECIPIENT);
    assert_eq!(reply, greylist_reply("example.org"));
    wait_for_decisions(&journald, 5);
    let logged = logged_decisions(&journald);
    assert_eq!(
        logged
            .iter()
            .filter(|m| m.starts_with("action=greylist, reason=new"))
            .count(),
        4,
        "{logged:#?}"
    );

    let options = site.options();
    let config = ["--postgrey-config", s(&options)];
    let counted = report_json(&journald, &site, &config);
    assert_eq!(
        counted["postgrey"],
        json!({
            "config": s(&site.options()),
            "delay_s": 2,
            "ipv4cidr": 32,
            "ipv6cidr": 64,
            "lookup_by_host": false,
            "whitelist_clients": [s(&site.whitelist())],
        })
    );
    assert_eq!(counted["whitelist_files"], json!([s(&site.whitelist())]));
    let esp = find(&counted["groups"], "domain", "esp-many.example");
    assert_eq!(
        (
            &esp["new"],
            &esp["distinct_ips"],
            &esp["distinct_nets"],
            &esp["retried_from_other_net"]
        ),
        (&json!(3), &json!(3), &json!(3), &json!(2))
    );
    let covered = find(&counted["groups"], "domain", "covered.example");
    assert_eq!(covered["status"], "whitelisted");
    assert_eq!(covered["passed_whitelisted"], 1);
    let unresolved = find(&counted["unresolved"], "network", "192.0.2.7/32");
    assert_eq!(unresolved["new"], 1);

    // Read as if postgrey ran with its defaults: one /24, no retry from another network, and
    // the site's file unknown.
    let defaults = site.path("defaults");
    std::fs::write(&defaults, "POSTGREY_OPTS=\"--inet=10023\"\n").unwrap();
    let assumed = report_json(&journald, &site, &["--postgrey-config", s(&defaults)]);
    let esp = find(&assumed["groups"], "domain", "esp-many.example");
    assert_eq!(
        (&esp["distinct_nets"], &esp["retried_from_other_net"]),
        (&json!(1), &json!(0))
    );
    assert_ne!(
        find(&assumed["groups"], "domain", "covered.example")["status"],
        "whitelisted"
    );
    find(&assumed["unresolved"], "network", "192.0.2.0/24");
    assert_eq!(assumed["postgrey"]["ipv4cidr"], 24);

    // The table says in one line which settings it counted with; not with the defaults.
    let table = report(&journald, &site, &config);
    // Wrapped at 80 columns where the temporary paths make it: compared unwrapped.
    let line = format!(
        "\nCounted as postgrey runs (from {}): --ipv4cidr=32, --delay=2, --whitelist-clients={}.\n",
        site.options().display(),
        site.whitelist().display()
    );
    assert!(table.replace("\n  ", " ").contains(&line), "{table}");
    let table = report(&journald, &site, &["--postgrey-config", s(&defaults)]);
    assert!(!table.contains("Counted as postgrey runs"), "{table}");
}

/// Senders that differ only in a BATV tag, a `+extension`, VERP digits or case are one
/// triplet to postgrey: after the first is greylisted, each of the others passes at once from
/// the same address (`triplet found`). From another address of a `/32` postgrey they are
/// greylisted again, and the report counts those as the same mail retried from another
/// network; a sender postgrey keys apart is not.
#[test]
fn senders_postgrey_keys_as_one_are_one_pair() {
    require_root();
    let journald = Journald::start();
    let site = Site::new(
        "",
        "--inet=10023 --delay=2 --ipv4cidr=32 --whitelist-clients=WHITELIST",
    );
    let postgrey = start_slash_32(&site, &journald);
    let first = ("o1.verp.example", "198.51.100.1");
    let ask = |(host, address): (&str, &str), sender: &str| {
        postgrey.request(host, address, sender, RECIPIENT)
    };
    assert_eq!(
        ask(first, "bounce-1234@verp.example"),
        greylist_reply("example.org")
    );
    sleep_past_delay(2);
    // postgrey's own answers: one triplet.
    let batv = ask(first, "prvs=1234567890=bounce-5678@verp.example");
    assert!(batv.starts_with(PASS_AFTER_DELAY_PREFIX), "{batv}");
    assert_eq!(ask(first, "bounce-9+news@verp.example"), DUNNO_REPLY);
    assert_eq!(ask(first, "Bounce-77@VERP.example"), DUNNO_REPLY);
    // A number inside a word is kept: another triplet, greylisted as new.
    assert_eq!(
        ask(first, "bounce-a1@verp.example"),
        greylist_reply("example.org")
    );
    // The same mail from other addresses of the /24: other networks for this postgrey.
    assert_eq!(
        ask(
            ("o2.verp.example", "198.51.100.2"),
            "prvs=0987654321=bounce-1@verp.example"
        ),
        greylist_reply("example.org")
    );
    assert_eq!(
        ask(
            ("o3.verp.example", "198.51.100.3"),
            "bounce-3+x@verp.example"
        ),
        greylist_reply("example.org")
    );
    wait_for_decisions(&journald, 7);
    let logged: Vec<String> = logged_decisions(&journald)
        .iter()
        .map(|m| m.split(", client_name=").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        logged,
        [
            "action=greylist, reason=new",
            // postgrey logs the delay of the triplet's first pass only.
            &logged[1],
            "action=pass, reason=triplet found",
            "action=pass, reason=triplet found",
            "action=greylist, reason=new",
            "action=greylist, reason=new",
            "action=greylist, reason=new",
        ]
    );
    assert!(
        logged[1].starts_with("action=pass, reason=triplet found, delay="),
        "{logged:?}"
    );

    let options = site.options();
    let report = report_json(&journald, &site, &["--postgrey-config", s(&options)]);
    let verp = find(&report["groups"], "domain", "verp.example");
    assert_eq!(
        (
            &verp["new"],
            &verp["retried_from_other_net"],
            &verp["passed_after_delay"],
            &verp["distinct_nets"]
        ),
        (&json!(4), &json!(2), &json!(1), &json!(3))
    );
}

/// `ignore` takes an address for the block unresolved clients are reported by: postgrey's
/// own network, here a `/32`.
#[test]
fn ignore_takes_an_address_for_postgreys_own_block() {
    let site = Site::new("", "--inet=10023 --ipv4cidr=32");
    let output = bin()
        .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
        .args(["ignore", "--ignore-file", s(&site.ignore())])
        .args(["--postgrey-config", s(&site.options())])
        .arg("192.0.2.7")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "192.0.2.7: ignoring 192.0.2.7/32, the block unresolved clients are reported by (/32 \
             for IPv4, /64 for IPv6)\nadded to {}:\n  192.0.2.7/32\n",
            site.ignore().display()
        )
    );
    let written = std::fs::read_to_string(site.ignore()).unwrap();
    assert!(written.ends_with("\n192.0.2.7/32\n"), "{written:?}");
}

/// The files postgrey's options name are those `audit` lints and `accept` measures against;
/// `accept` warns when the file it appends to is not one of them.
#[test]
fn audit_and_accept_use_the_files_postgreys_options_name() {
    let site = Site::new(
        "# the site's own list\nmail.example.net\n/mx\\.example\\.org/\n",
        "--inet=10023 --whitelist-clients=WHITELIST",
    );
    let options = site.options();
    let whitelist = site.whitelist();
    let output = bin()
        .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
        .args(["audit", "--postgrey-config", s(&options)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "{}:3: regex /mx\\.example\\.org/ is not anchored: postgrey matches it anywhere in the \
             client name, so it also matches names with anything before and after it; write \
             /^…$/ or /(^|\\.)…$/\n",
            whitelist.display()
        )
    );

    let local = site.path("whitelist_clients.local");
    let output = bin()
        .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
        .args(["accept", "--postgrey-config", s(&options)])
        .args(["--whitelist-local", s(&local)])
        .args(["mail.example.net", "new.example.com"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "postgrey-advisor: warning: postgrey does not read {local} (it reads {w}, as its \
             options in {o} say): name one of those with --whitelist-local\n\
             postgrey-advisor: not adding mail.example.net: already covered by mail.example.net \
             at {w}:2\n",
            local = local.display(),
            w = whitelist.display(),
            o = options.display()
        )
    );
}

/// A state counted with /24 and read with a `/32` postgrey's options: the run says that the
/// networks changed, and the state records the new ones.
#[test]
fn a_run_after_postgreys_networks_changed_says_so() {
    use common::fixtures::{DAY_S, rfc3339};
    let now_s = jiff::Timestamp::now().as_second();
    let at = (now_s.div_euclid(DAY_S) - 1) * DAY_S + 3600;
    let entries: Vec<common::ExportEntry> = ["198.51.100.1", "198.51.100.2"]
        .iter()
        .enumerate()
        .map(|(i, address)| {
            common::ExportEntry::postgrey(
                &rfc3339(at + 60 * i as i64),
                format!(
                    "action=greylist, reason=new, client_name=o{i}.esp.example, \
                     client_address={address}, sender=news@esp.example, recipient={RECIPIENT}"
                ),
            )
        })
        .collect();
    let journal = common::JournalFiles::with_entries(&entries);
    let site = Site::new("", "--inet=10023 --ipv4cidr=32");
    let defaults = site.path("defaults");
    std::fs::write(&defaults, "POSTGREY_OPTS=\"--inet=10023\"\n").unwrap();
    let state = site.path("state.json");
    let run = |options: &Path| {
        let output = bin()
            .env_remove("POSTGREY_ADVISOR_POSTGREY_CONFIG")
            .args([
                "run",
                "--format",
                "json",
                "--window",
                "7d",
                "--initial-since",
                "@0",
            ])
            .arg("--journal-dir")
            .arg(journal.dir())
            .args(["--state", s(&state), "--ignore-file", s(&site.ignore())])
            .args(["--legacy-ignore-file", "", "--postgrey-config", s(options)])
            .output()
            .unwrap();
        common::assert_success(&output, "postgrey-advisor run");
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let first = run(&defaults);
    let esp = find(&first["groups"], "domain", "esp.example");
    assert_eq!(
        (&esp["distinct_nets"], &esp["retried_from_other_net"]),
        (&json!(1), &json!(0))
    );
    assert!(!std::fs::read_to_string(&state).unwrap().contains("\"net\""));

    let second = run(&site.options());
    let esp = find(&second["groups"], "domain", "esp.example");
    // The day is cut into /32s again from its addresses; its retries stay as counted.
    assert_eq!(
        (&esp["distinct_nets"], &esp["retried_from_other_net"]),
        (&json!(2), &json!(0))
    );
    let notes: Vec<String> = serde_json::from_value(second["notes"].clone()).unwrap();
    assert!(
        notes.contains(&String::from(
            "postgrey's networks changed from /24 (IPv4), /64 (IPv6) to /32 (IPv4), /64 (IPv6) \
             since the state was saved: the days before this run keep the retries from another \
             network counted under the old ones, and unresolved clients stay under their old \
             networks until those days age out"
        )),
        "{notes:?}"
    );
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("\"net\":[32,64]")
    );
}
