//! A site with two MX hosts, each running its own real postgrey (its own triplet database)
//! into its own real journald namespace. Their journals are gathered into one directory as
//! `journalctl -o export | systemd-journal-remote` does on a log host; since both namespaces
//! run on this one machine, the export of each is given the host name and machine id of the MX
//! host it stands for (`_HOSTNAME`, `_MACHINE_ID`), and nothing else is touched.
//!
//! A sender greylisted at mx1 retries at mx2 from the same address and is greylisted there
//! again: `retried_at_other_mx`, and the note on separate greylisting databases. `run` over the
//! gathered directory counts every entry once, also when mx2's journal arrives after a run read
//! mx1's; a report over the text logs of the two hosts gives the same figures.

mod common;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use common::postgrey::{PASS_AFTER_DELAY_PREFIX, greylist_reply, sleep_past_delay};
use common::{JournalFiles, Journald, Postgrey, assert_success, bin_path, opt_path, wait_for};
use serde_json::{Value, json};

const DELAY: u32 = 2;
const MX1: (&str, &str) = ("mx1", "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1");
const MX2: (&str, &str) = ("mx2", "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2");

/// `export` (journal export format) with every entry's `_HOSTNAME` and `_MACHINE_ID` set to
/// `host`'s. Text fields are `NAME=value` lines; a binary field is its name, a 64-bit
/// little-endian length, the data and a newline, copied as it is.
fn as_host(export: &[u8], (name, machine): (&str, &str)) -> Vec<u8> {
    let mut out = Vec::with_capacity(export.len());
    let mut rest = export;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        if !line.is_empty() && !line.contains(&b'=') {
            let length = u64::from_le_bytes(rest[end + 1..end + 9].try_into().unwrap()) as usize;
            let field_end = end + 9 + length + 1;
            out.extend_from_slice(&rest[..field_end]);
            rest = &rest[field_end..];
            continue;
        }
        if line.starts_with(b"_HOSTNAME=") {
            out.extend_from_slice(format!("_HOSTNAME={name}").as_bytes());
        } else if line.starts_with(b"_MACHINE_ID=") {
            out.extend_from_slice(format!("_MACHINE_ID={machine}").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out
}

/// Everything in `journald`'s namespace, in export format.
fn export_of(journald: &Journald) -> Vec<u8> {
    journald.sync();
    let output = Command::new("journalctl")
        .arg("-D")
        .arg(journald.journal_dir())
        .args(["-o", "export"])
        .output()
        .unwrap();
    assert_success(&output, "journalctl -o export");
    output.stdout
}

/// Each MX host's journal, as gathered: `remote-HOST.journal` in `gathered`.
fn gather(gathered: &JournalFiles, journald: &Journald, host: (&str, &str)) {
    gathered.add_export(
        &format!("remote-{}", host.0),
        as_host(&export_of(journald), host),
    );
}

/// The binary with `args` and the postmaster's (empty) whitelist and ignore file; stdout as
/// JSON.
fn json_of(args: &[OsString]) -> Value {
    let output = Command::new(bin_path())
        .env_remove("JOURNAL_STREAM")
        .env("TZ", "UTC")
        .args(args)
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_success(&output, "postgrey-advisor");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn run(gathered: &Path, state: &Path) -> Value {
    let mut args = os(&["run", "--window", "30d", "--initial-since", "@0"]);
    args.extend([
        opt_path("--journal-dir=", gathered),
        opt_path("--state=", state),
    ]);
    json_of(&args)
}

/// A group's figures that tell the MX hosts apart.
fn mx_figures(report: &Value, domain: &str) -> Value {
    let group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["domain"] == domain)
        .unwrap_or_else(|| panic!("no group {domain} in {report:#}"));
    json!({
        "mx": group["mx"],
        "new": group["new"],
        "passed_after_delay": group["passed_after_delay"],
        "retried_at_other_mx": group["retried_at_other_mx"],
        "retried_from_other_net": group["retried_from_other_net"],
    })
}

/// What must be equal however the two hosts' logs were read (the notes on how a run read, such
/// as a new host's journal, left out).
fn figures(report: &Value) -> Value {
    let notes: Vec<&Value> = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.as_str().unwrap().contains("another MX host"))
        .collect();
    json!({
        "bulk.example": mx_figures(report, "bulk.example"),
        "mx_hosts": report["mx_hosts"],
        "notes": notes,
        "sender.example": mx_figures(report, "sender.example"),
        "totals": report["totals"],
    })
}

const NOTE: &str = "1 greylisting repeated a greylisting at another MX host (same sender, \
     recipient and network): the MX hosts (mx1, mx2) keep separate greylisting databases, so a \
     sender that retries at another MX host waits again. One database for all of them fixes it \
     (one postgrey that every MX host's Postfix asks: postgrey --inet=ADDRESS:10023, \
     check_policy_service inet:ADDRESS:10023), or whitelisting the senders hit most: \
     sender.example (1)";

#[test]
fn a_sender_greylisted_at_both_mx_hosts_is_told_apart() {
    let (journald1, journald2) = (Journald::start(), Journald::start());
    let mx1 = Postgrey::builder().delay(DELAY).start(&journald1);
    let mx2 = Postgrey::builder().delay(DELAY).start(&journald2);
    let greylisted = greylist_reply("example.org");
    let sender = ("mail.sender.example", "192.0.2.10");
    // a@ is greylisted at mx1, retries at mx2 from the same address: greylisted again.
    assert_eq!(
        mx1.request(sender.0, sender.1, "a@sender.example", "bob@example.org"),
        greylisted
    );
    assert_eq!(
        mx2.request(sender.0, sender.1, "a@sender.example", "bob@example.org"),
        greylisted
    );
    // b@ stays at mx1.
    assert_eq!(
        mx1.request(sender.0, sender.1, "b@sender.example", "bob@example.org"),
        greylisted
    );
    // A bulk sender retries at mx2 from another network: the multi-server signature instead.
    let c = ("c@bulk.example", "carol@example.org");
    assert_eq!(
        mx1.request("out1.bulk.example", "198.51.100.7", c.0, c.1),
        greylisted
    );
    assert_eq!(
        mx2.request("out2.bulk.example", "203.0.113.9", c.0, c.1),
        greylisted
    );
    sleep_past_delay(DELAY);
    // a@ passes at mx2, b@ at mx1, each after the delay there.
    let passed = mx2.request(sender.0, sender.1, "a@sender.example", "bob@example.org");
    assert!(passed.starts_with(PASS_AFTER_DELAY_PREFIX), "{passed}");
    let passed = mx1.request(sender.0, sender.1, "b@sender.example", "bob@example.org");
    assert!(passed.starts_with(PASS_AFTER_DELAY_PREFIX), "{passed}");
    // Postgrey's lines reach the journal a little after its replies.
    let decisions = |j: &Journald| {
        j.entries(&["SYSLOG_IDENTIFIER=postgrey"])
            .iter()
            .filter(|e| e.message().is_some_and(|m| m.contains("action=")))
            .count()
    };
    for (journald, expected) in [(&journald1, 4), (&journald2, 3)] {
        wait_for("postgrey's decisions in the journal", || {
            (decisions(journald) >= expected).then_some(())
        });
        assert_eq!(decisions(journald), expected);
    }
    let postgrey_entries =
        [&journald1, &journald2].map(|j| j.entries(&["SYSLOG_IDENTIFIER=postgrey"]).len() as u64);

    let expected_mx_hosts = json!([
        {"entries": postgrey_entries[0], "greylisted": 3, "host": "mx1"},
        {"entries": postgrey_entries[1], "greylisted": 2, "host": "mx2"},
    ]);
    let expected_sender = json!({
        "mx": {"mx1": 2, "mx2": 1},
        "new": 3,
        "passed_after_delay": 2,
        "retried_at_other_mx": 1,
        "retried_from_other_net": 0,
    });
    let expected_bulk = json!({
        "mx": {"mx1": 1, "mx2": 1},
        "new": 2,
        "passed_after_delay": 0,
        "retried_at_other_mx": 0,
        "retried_from_other_net": 1,
    });

    // The log host gathers mx1's journal first; a run reads it.
    let gathered = JournalFiles::new();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.json");
    gather(&gathered, &journald1, MX1);
    let first = run(gathered.dir(), &state);
    assert_eq!(first["totals"]["greylisted"], 3, "{first:#}");
    assert_eq!(first["mx_hosts"], Value::Null, "one host so far: {first:#}");
    assert_eq!(
        mx_figures(&first, "sender.example")["mx"],
        json!({"mx1": 2}),
        "{first:#}"
    );

    // mx2's journal arrives later, its entries older than mx1's last: read once, after mx1's
    // greylisting of a@ was counted by the earlier run.
    gather(&gathered, &journald2, MX2);
    let second = run(gathered.dir(), &state);
    assert_eq!(second["totals"]["greylisted"], 5, "{second:#}");
    assert_eq!(second["totals"]["decisions"], 7, "{second:#}");
    assert_eq!(second["mx_hosts"], expected_mx_hosts, "{second:#}");
    assert_eq!(mx_figures(&second, "sender.example"), expected_sender);
    assert_eq!(mx_figures(&second, "bulk.example"), expected_bulk);
    assert_eq!(figures(&second)["notes"], json!([NOTE]));
    // Nothing new: the same figures, nothing counted twice.
    let third = run(gathered.dir(), &state);
    assert_eq!(figures(&third), figures(&second));

    // One report over the gathered directory says the same.
    let mut args = os(&["report", "--since", "@0"]);
    args.push(opt_path("--journal-dir=", gathered.dir()));
    let report = json_of(&args);
    assert_eq!(figures(&report), figures(&second));
    let sender_group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["domain"] == "sender.example")
        .unwrap();
    assert_eq!(sender_group["verdict"], Value::Null, "below --min-count");

    // The text logs of the two hosts, as their syslog would write them, give the same figures.
    let logs = tempfile::tempdir().unwrap();
    let mut text_args = os(&["report", "--since", "@0"]);
    for (host, file) in [("mx1", &gathered.files()[0]), ("mx2", &gathered.files()[1])] {
        let output = Command::new("journalctl")
            .arg(opt_path("--file=", file))
            .args(["-o", "short-iso-precise", "SYSLOG_IDENTIFIER=postgrey"])
            .output()
            .unwrap();
        assert_success(&output, "journalctl -o short-iso-precise");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.lines().all(|l| l.split(' ').nth(1) == Some(host)),
            "{text}"
        );
        let log = logs.path().join(format!("{host}-mail.log"));
        std::fs::write(&log, text).unwrap();
        text_args.push("--file".into());
        text_args.push(log.into());
    }
    let from_text = json_of(&text_args);
    assert_eq!(figures(&from_text), figures(&report));

    // The table per MX host.
    let output = Command::new(bin_path())
        .env("TZ", "UTC")
        .env("COLUMNS", "100")
        .args(["report", "--since", "@0", "--all", "--by-mx"])
        .arg(opt_path("--journal-dir=", gathered.dir()))
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_success(&output, "report --by-mx");
    let table = String::from_utf8(output.stdout).unwrap();
    let by_mx = format!(
        "\nMX mx1: {} entries, 3 greylisted\n  GROUP           GREYLISTED\n  \
         sender.example           2\n  bulk.example             1\n\n\
         MX mx2: {} entries, 2 greylisted\n  GROUP           GREYLISTED\n  \
         bulk.example             1\n  sender.example           1\n",
        postgrey_entries[0], postgrey_entries[1]
    );
    assert!(table.contains(&by_mx), "{table}");
}
