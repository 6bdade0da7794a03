//! Real processes at the same time: `accept`/`ignore` appending to the files that `report` and
//! `run` read, and `check` reading `summary.json` while `run` replaces it. Writers replace whole
//! files atomically under a directory lock, so a reader sees an old or a new file, never a part
//! of one, and concurrent writers never lose each other's lines.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use common::bin_path;

/// Sender domains that greylist in the log; each is accepted or ignored by its own process.
const SENDERS: usize = 8;
const ROUNDS: usize = 6;

fn sender(n: usize) -> String {
    format!("sender-{n}.example")
}

/// A mail.log of 2026 in which every sender is greylisted 20 times from two hosts.
fn write_log(path: &Path) {
    let mut text = String::new();
    for n in 0..SENDERS {
        for i in 0..20 {
            text.push_str(&format!(
                "Nov 21 10:{:02}:{:02} mx1 postgrey[42]: action=greylist, reason=new, \
                 client_name=out{}.mx.{}, client_address=192.0.{}.{}, \
                 sender=news@{}, recipient=user{i}@example.org\n",
                n,
                i,
                i % 2,
                sender(n),
                n,
                i + 1,
                sender(n)
            ));
        }
    }
    fs::write(path, text).unwrap();
}

fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(bin_path())
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: Child, what: &str) -> Output {
    let output = child.wait_with_output().unwrap();
    common::assert_success(&output, what);
    output
}

/// The groups of a JSON report with the given status.
fn with_status(report: &Value, status: &str) -> BTreeSet<String> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["status"] == status)
        .map(|g| g["domain"].as_str().unwrap().to_owned())
        .collect()
}

/// The entries of a whitelist or ignore file, without comments.
fn entries(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Eight `accept` and eight `ignore` processes at once, each adding its own sender, while
/// reports read both files: every line lands exactly once, and every report sees whole files —
/// each group it calls whitelisted or ignored was added by a finished line, never a fragment.
#[test]
fn accept_and_ignore_while_reports_read_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_log(&log);
    let everyone: BTreeSet<String> = (0..SENDERS).map(sender).collect();
    // Even senders are accepted, odd ones ignored, so that both files change.
    let accepted_ones: BTreeSet<String> = (0..SENDERS).step_by(2).map(sender).collect();
    let ignored_ones: BTreeSet<String> = (1..SENDERS).step_by(2).map(sender).collect();
    for round in 0..ROUNDS {
        let whitelist = dir.path().join(format!("whitelist_clients.local.{round}"));
        let ignore = dir.path().join(format!("ignore.{round}"));
        fs::write(&whitelist, "# the site's own entries\n").unwrap();
        fs::write(&ignore, "").unwrap();
        let (w, i, l) = (
            whitelist.to_str().unwrap(),
            ignore.to_str().unwrap(),
            log.to_str().unwrap(),
        );
        let report_args = [
            "report",
            "--year",
            "2026",
            "--file",
            l,
            "--whitelist-clients",
            w,
            "--ignore-file",
            i,
            "--all",
            "--format",
            "json",
        ];
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for n in 0..SENDERS {
            let domain = sender(n);
            writers.push(if n % 2 == 0 {
                spawn(&["accept", &domain, "--whitelist-local", w], dir.path())
            } else {
                spawn(&["ignore", &domain, "--ignore-file", i], dir.path())
            });
            readers.push(spawn(&report_args, dir.path()));
        }
        for (n, writer) in writers.into_iter().enumerate() {
            finished(writer, &format!("round {round}, writer of {}", sender(n)));
        }
        for reader in readers {
            let output = finished(reader, &format!("round {round}, a report"));
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            let whitelisted = with_status(&report, "whitelisted");
            let ignored = with_status(&report, "ignored");
            let candidates = with_status(&report, "candidate");
            assert!(
                whitelisted.is_subset(&accepted_ones),
                "round {round}: whitelisted {whitelisted:?}"
            );
            assert!(
                ignored.is_subset(&ignored_ones),
                "round {round}: ignored {ignored:?}"
            );
            let seen: BTreeSet<String> = whitelisted
                .iter()
                .chain(&ignored)
                .chain(&candidates)
                .cloned()
                .collect();
            assert_eq!(seen, everyone, "round {round}: every sender is a group");
        }
        let accepted: BTreeSet<String> = entries(&whitelist).into_iter().collect();
        let ignored: BTreeSet<String> = entries(&ignore).into_iter().collect();
        assert_eq!(entries(&whitelist).len(), SENDERS / 2, "round {round}");
        assert_eq!(entries(&ignore).len(), SENDERS / 2, "round {round}");
        assert_eq!(accepted, accepted_ones, "round {round}");
        assert_eq!(ignored, ignored_ones, "round {round}");
        // The finished files: the report sees all of it.
        let output = finished(spawn(&report_args, dir.path()), "the last report");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(with_status(&report, "whitelisted"), accepted);
        assert_eq!(with_status(&report, "ignored"), ignored);
    }
}

/// `check` again and again while `run` replaces `summary.json` again and again: every check
/// reads a whole summary (WARNING with the same figures), never a torn or missing one.
#[test]
fn check_while_run_replaces_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    write_log(&log);
    let state = dir.path().join("state.json");
    let empty = dir.path().join("empty");
    fs::write(&empty, "").unwrap();
    let (l, s, e) = (
        log.to_str().unwrap(),
        state.to_str().unwrap(),
        empty.to_str().unwrap(),
    );
    let run_args = [
        "run",
        "--year",
        "2026",
        "--file",
        l,
        "--state",
        s,
        "--whitelist-clients",
        e,
        "--ignore-file",
        e,
        "--initial-since",
        "@0",
        "--window",
        "100000d",
        "--keep",
        "100000d",
        "--lock-timeout",
        "60",
        "--format",
        "counts",
    ];
    finished(spawn(&run_args, dir.path()), "the first run");
    let summary = dir.path().join("summary.json");
    let check_args = [
        "check",
        "--summary",
        summary.to_str().unwrap(),
        "--whitelist-clients",
        e,
        "--ignore-file",
        e,
        "--window",
        "100000d",
        "--min-count",
        "15",
    ];
    let expected = {
        let output = Command::new(bin_path()).args(check_args).output().unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8(output.stdout).unwrap()
    };
    assert!(
        expected.starts_with("POSTGREY WHITELIST WARNING - 8 unreviewed senders"),
        "{expected}"
    );
    for round in 0..ROUNDS {
        // Each run starts over (the same log read again), so each replaces the summary.
        let runs: Vec<Child> = (0..3)
            .map(|_| {
                let mut args = run_args.to_vec();
                args.push("--reset-state");
                spawn(&args, dir.path())
            })
            .collect();
        let checks: Vec<Child> = (0..12)
            .map(|_| {
                Command::new(bin_path())
                    .args(check_args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for check in checks {
            let output = check.wait_with_output().unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            assert_eq!(output.status.code(), Some(1), "round {round}: {stdout}");
            // The age in the perfdata may differ by a second; the rest is the same.
            let strip_age = |text: &str| {
                text.split_whitespace()
                    .filter(|w| !w.starts_with("age="))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            assert_eq!(strip_age(&stdout), strip_age(&expected), "round {round}");
        }
        for run in runs {
            finished(run, &format!("round {round}, a run"));
        }
    }
}
