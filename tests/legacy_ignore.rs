//! The classic `check_postgrey_whitelist` plugin's ignore file
//! (`/etc/nagios-plugins/postgrey_no_whitelist`, one domain per line), read as well as our own
//! by `run`, `report` and `check` through the real binary; `--legacy-ignore-file` (or
//! `POSTGREY_ADVISOR_LEGACY_IGNORE_FILE`) points them at a temporary one here.
//!
//! The traffic is the week of tests/common/traffic.rs, moved to end yesterday (UTC). With the
//! postmaster's files (bulk.co.uk in our ignore file, mcsv.net whitelisted) four senders are
//! unreviewed: amazonses.com 84, outlook.com 42, example-isp.net 35, smallshop.de 21. The
//! classic file below holds two of them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::fixtures::{DAY_S, export_entries, group, postmaster_files, week_from_day};
use common::{JournalFiles, bin};
use jiff::Timestamp;
use serde_json::Value;

/// `run` and `check` look back 8 days: the week ending yesterday, plus a day of slack.
const WINDOW: &str = "8d";

/// As a postmaster wrote it for the classic plugin: one domain per line.
const CLASSIC: &str = "example-isp.net\nsmallshop.de\n";

struct Site {
    dir: tempfile::TempDir,
    journal: JournalFiles,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        postmaster_files(dir.path());
        fs::write(dir.path().join("postgrey_no_whitelist"), CLASSIC).unwrap();
        let today = Timestamp::now().as_second().div_euclid(DAY_S);
        let journal = JournalFiles::with_entries(&export_entries(&week_from_day(today - 7)));
        Site { dir, journal }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn legacy(&self) -> PathBuf {
        self.path("postgrey_no_whitelist")
    }

    /// The flags naming this site's whitelist and our ignore file.
    fn advice_args(&self) -> Vec<String> {
        let s = |p: PathBuf| p.display().to_string();
        vec![
            "--whitelist-clients".into(),
            s(self.path("whitelist_clients")),
            "--ignore-file".into(),
            s(self.path("ignore")),
        ]
    }

    /// The timer job's `run`, reading the classic file at `legacy` (empty: none).
    fn run(&self, legacy: &Path) -> Output {
        bin()
            .env("TZ", "UTC")
            .env("POSTGREY_ADVISOR_LEGACY_IGNORE_FILE", legacy)
            .arg("run")
            .arg("--journal-file")
            .arg(self.journal.files().remove(0))
            .arg("--state")
            .arg(self.path("state.json"))
            .args(["--initial-since", "@0", "--window", WINDOW])
            .args(self.advice_args())
            .args(["--format", "json"])
            .output()
            .unwrap()
    }

    fn check(&self, legacy: &Path, args: &[&str]) -> Output {
        bin()
            .env("TZ", "UTC")
            .arg("check")
            .arg("--summary")
            .arg(self.path("summary.json"))
            .args(self.advice_args())
            .arg("--legacy-ignore-file")
            .arg(legacy)
            .args(["--window", WINDOW])
            .args(args)
            .output()
            .unwrap()
    }

    fn report(&self, legacy: &Path) -> Value {
        let out = bin()
            .env("TZ", "UTC")
            .arg("report")
            .arg("--journal-file")
            .arg(self.journal.files().remove(0))
            .args(["--since", "@0"])
            .args(self.advice_args())
            .arg("--legacy-ignore-file")
            .arg(legacy)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        assert_eq!(out.status.code(), Some(0));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The note `report`, `run` and `check -v` give when the classic file was read.
fn note(site: &Site) -> String {
    format!(
        "also ignoring 2 domains from {}, the classic check_postgrey_whitelist plugin's ignore \
         file (`ignore` adds to {})",
        site.legacy().display(),
        site.path("ignore").display()
    )
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    [
        "amazonses.com",
        "outlook.com",
        "example-isp.net",
        "smallshop.de",
        "bulk.co.uk",
    ]
    .iter()
    .map(|d| {
        let status = group(report, d)["status"].as_str().unwrap().to_owned();
        (d.to_string(), status)
    })
    .collect()
}

#[test]
fn report_treats_the_classic_files_domains_as_ignored_and_says_so() {
    let site = Site::new();
    let with = site.report(&site.legacy());
    let s = |d: &str, st: &str| (d.to_string(), st.to_string());
    assert_eq!(
        statuses(&with),
        [
            s("amazonses.com", "candidate"),
            s("outlook.com", "candidate"),
            s("example-isp.net", "ignored"),
            s("smallshop.de", "ignored"),
            s("bulk.co.uk", "ignored"),
        ]
    );
    assert_eq!(with["notes"], Value::from(vec![note(&site)]));

    // Without it (an empty value reads none), the two are back.
    let without = site.report(Path::new(""));
    assert_eq!(
        statuses(&without)[2..4],
        [
            s("example-isp.net", "candidate"),
            s("smallshop.de", "candidate")
        ]
    );
    assert_eq!(without["notes"], Value::from(Vec::<String>::new()));
}

#[test]
fn run_and_check_treat_the_classic_files_domains_as_ignored() {
    let site = Site::new();
    let run = site.run(&site.legacy());
    assert_eq!(String::from_utf8_lossy(&run.stderr), "");
    assert_eq!(run.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(group(&report, "smallshop.de")["status"], "ignored");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .contains(&Value::from(note(&site))),
        "{:#}",
        report["notes"]
    );

    let with = site.check(&site.legacy(), &[]);
    let first = stdout(&with);
    let first = first.lines().next().unwrap();
    assert_eq!(
        first.split_once(" | ").unwrap().0,
        "POSTGREY WHITELIST WARNING - 2 unreviewed senders: amazonses.com, outlook.com"
    );
    assert!(first.contains(" unreviewed=2;0;;0 "), "{first}");
    assert_eq!(with.status.code(), Some(1));

    // -v lists the ignored groups, and ends with where their status comes from.
    let verbose = site.check(&site.legacy(), &["-v"]);
    let lines: Vec<String> = stdout(&verbose).lines().map(str::to_owned).collect();
    for line in [
        "example-isp.net: 35 greylisted, ignored",
        "smallshop.de: 21 greylisted, ignored",
        "bulk.co.uk: 42 greylisted, ignored",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line} in {lines:#?}");
    }
    assert_eq!(lines.last(), Some(&note(&site)));

    // The classic file is read now, like ours: without it, the check alerts on four.
    let without = site.check(Path::new(""), &["-v"]);
    let text = stdout(&without);
    assert!(
        text.starts_with(
            "POSTGREY WHITELIST WARNING - 4 unreviewed senders: amazonses.com, +3 more |"
        ),
        "{text}"
    );
    assert!(!text.contains("classic"), "{text}");
}

#[test]
fn public_suffixes_in_the_classic_file_are_noted() {
    // The classic plugin counted the last two labels, so its file may hold "co.uk".
    let site = Site::new();
    fs::write(site.legacy(), "co.uk\n# reviewed\nsmallshop.de\n").unwrap();
    let report = site.report(&site.legacy());
    assert_eq!(group(&report, "bulk.co.uk")["status"], "ignored");
    assert_eq!(group(&report, "smallshop.de")["status"], "ignored");
    assert_eq!(group(&report, "example-isp.net")["status"], "candidate");
    assert_eq!(
        report["notes"],
        Value::from(vec![
            format!(
                "{}: co.uk is a public suffix: it ignores every domain under it",
                site.legacy().display()
            ),
            note(&site),
        ])
    );
}

#[test]
fn a_missing_classic_file_named_explicitly_is_an_error() {
    let site = Site::new();
    let missing = site.path("nowhere");
    let out = site.check(&missing, &[]);
    assert_eq!(
        stdout(&out),
        format!(
            "POSTGREY WHITELIST UNKNOWN - cannot read the classic plugin's ignore file {} \
             (--legacy-ignore-file): No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    assert_eq!(out.status.code(), Some(3));
}
