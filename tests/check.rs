//! `check` and `check_postgrey_whitelist`, the monitoring plugin: exact status line, exit code,
//! perfdata and long output on summaries written by real `run`s over real journal files, and one
//! check executed by a real nagios4.
//!
//! The traffic is the week of tests/common/traffic.rs with known figures, moved by whole days
//! so that it ends yesterday (UTC): the summary's window and the check's are relative to now.
//! `run` and `check` both look back [`WINDOW`] (8 days), so the whole week still counts when UTC
//! midnight passes during a test. Unreviewed with the postmaster's files (min-count 15):
//! amazonses.com 84 (whitelist), outlook.com 42 (whitelist), example-isp.net 35 (spam-like),
//! smallshop.de 21 (review); mcsv.net is whitelisted by its CIDR, bulk.co.uk ignored.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::fixtures::{DAY_S, export_entries, postmaster_files, rfc3339, week_from_day};
use common::nagios::{self, ServiceStatus};
use common::traffic::Line;
use common::{ExportEntry, JournalFiles, bin, bin_path};
use jiff::Timestamp;
use serde_json::Value;

/// What `run` and `check` look back over: the week ending yesterday, plus a day of slack.
const WINDOW: &str = "8d";
const PLUGIN: &str = "check_postgrey_whitelist";

/// The first line for the week with the postmaster's files, defaults (-w 0, no -c).
const WEEK_WARNING: &str =
    "POSTGREY WHITELIST WARNING - 4 unreviewed senders: amazonses.com, +3 more";
/// Perfdata of the week; `AGE` stands for the summary's age in seconds (checked separately).
const WEEK_PERFDATA: &str = "unreviewed=4;0;;0 greylisted=265;;;0 delay=574560s;;;0 groups=16;;;0 \
                             whitelisted_groups=2;;;0 age=AGEs;;;0";
/// One long-output line per unreviewed group, most greylisted first.
const WEEK_LONG: [&str; 4] = [
    "amazonses.com: 84 greylisted, candidate, verdict whitelist, suggest smtp-out.eu-west-1.amazonses.com",
    "outlook.com: 42 greylisted, candidate, verdict whitelist, suggest outbound.protection.outlook.com",
    "example-isp.net: 35 greylisted, candidate, verdict spam-like",
    "smallshop.de: 21 greylisted, candidate, verdict review",
];

fn today() -> i64 {
    Timestamp::now().as_second().div_euclid(DAY_S)
}

/// The week's postgrey lines as journal entries, moved by whole days so that its first day
/// (day 0) is the UTC day `first_day`; `keep` chooses the days (0–6) to include.
fn week_from(first_day: i64, keep: impl Fn(i64) -> bool) -> Vec<ExportEntry> {
    let days: Vec<Line> = week_from_day(first_day)
        .into_iter()
        .filter(|l| keep(l.at_s.div_euclid(DAY_S) - first_day))
        .collect();
    export_entries(&days)
}

/// The whole week, ending yesterday.
fn week_ending_yesterday() -> Vec<ExportEntry> {
    week_from(today() - 7, |_| true)
}

/// What the plugin printed, split the way a monitoring core splits it.
#[derive(Debug, PartialEq, Eq)]
struct PluginOutput {
    code: Option<i32>,
    /// The first line up to ` | ` (all of it without perfdata).
    status: String,
    perfdata: String,
    long: Vec<String>,
}

impl PluginOutput {
    fn parse(output: &std::process::Output) -> PluginOutput {
        let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 plugin output");
        let mut lines = stdout.lines();
        let first = lines.next().unwrap_or_default();
        let (status, perfdata) = first.split_once(" | ").unwrap_or((first, ""));
        assert!(
            !perfdata.contains('|'),
            "a second | in the first line: {first:?}"
        );
        PluginOutput {
            code: output.status.code(),
            status: status.to_owned(),
            perfdata: perfdata.to_owned(),
            long: lines.map(str::to_owned).collect(),
        }
    }

    fn expected(code: i32, status: &str, perfdata: &str, long: &[&str]) -> PluginOutput {
        PluginOutput {
            code: Some(code),
            status: status.to_owned(),
            perfdata: perfdata.to_owned(),
            long: long.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// An UNKNOWN result: one line, no perfdata.
    fn unknown(reason: &str) -> PluginOutput {
        Self::expected(
            3,
            &format!("POSTGREY WHITELIST UNKNOWN - {reason}"),
            "",
            &[],
        )
    }
}

/// The summary's `last_run`, in seconds; `None` when there is no readable one.
fn last_run_s(summary: &Path) -> Option<i64> {
    let value: Value = serde_json::from_slice(&fs::read(summary).ok()?).ok()?;
    Some(
        value["last_run"]
            .as_str()?
            .parse::<Timestamp>()
            .ok()?
            .as_second(),
    )
}

/// `perfdata` with the `age=Ns` value replaced by `AGE`, after checking that N is the age of
/// a summary written at `last_run_s` as seen at some moment in `[before_s, after_s]`.
fn with_age_checked(perfdata: &str, last_run_s: i64, before_s: i64, after_s: i64) -> String {
    let Some((head, tail)) = perfdata.split_once(" age=") else {
        return perfdata.to_owned();
    };
    let (age, rest) = tail.split_once("s;").expect("age=Ns;…");
    let age: i64 = age.parse().expect("numeric age");
    assert!(
        (before_s - last_run_s..=after_s - last_run_s).contains(&age),
        "age={age}s for a summary written at {last_run_s}, checked between {before_s} and {after_s}"
    );
    format!("{head} age=AGEs;{rest}")
}

/// A mail server's files in a temporary directory: the postmaster's whitelist (the CIDR entry
/// that whitelists Mailchimp), a `.local` file `accept` appends to (absent at first, as on a
/// fresh Debian install), the ignore file, and the journal.
struct Site {
    dir: tempfile::TempDir,
    journal: JournalFiles,
}

impl Site {
    fn new(entries: &[ExportEntry]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        postmaster_files(dir.path());
        Site {
            dir,
            journal: JournalFiles::with_entries(entries),
        }
    }

    /// The week ending yesterday, with a summary from a real `run`.
    fn week() -> Site {
        let site = Site::new(&week_ending_yesterday());
        site.run(WINDOW);
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn journal_file(&self) -> PathBuf {
        self.journal.files().remove(0)
    }

    fn summary(&self) -> PathBuf {
        self.path("summary.json")
    }

    /// Both whitelist files, as postgrey reads them.
    fn whitelists(&self) -> OsString {
        let mut both = self.path("whitelist_clients").into_os_string();
        both.push(",");
        both.push(self.path("whitelist_clients.local"));
        both
    }

    /// The timer job's `run`, reading the whole journal file; writes summary.json beside the
    /// state file.
    fn run(&self, window: &str) {
        let output = bin()
            .env("TZ", "UTC")
            .arg("run")
            .arg("--journal-file")
            .arg(self.journal_file())
            .arg("--state")
            .arg(self.path("state.json"))
            .args(["--initial-since", "@0", "--window", window])
            .arg("--whitelist-clients")
            .arg(self.whitelists())
            .arg("--ignore-file")
            .arg(self.path("ignore"))
            .args(["--format", "counts"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(self.summary().exists());
    }

    /// The plugin's options that point at this site's files (no --window).
    fn file_args(&self) -> Vec<OsString> {
        vec![
            "--summary".into(),
            self.summary().into(),
            "--whitelist-clients".into(),
            self.whitelists(),
            "--ignore-file".into(),
            self.path("ignore").into(),
        ]
    }

    /// Runs `command` (the plugin with its arguments) and checks the perfdata's age against
    /// the summary.
    fn plugin(&self, command: &mut Command) -> PluginOutput {
        let last_run = last_run_s(&self.summary());
        let before_s = Timestamp::now().as_second();
        let output = command.env("TZ", "UTC").output().unwrap();
        let after_s = Timestamp::now().as_second();
        let mut parsed = PluginOutput::parse(&output);
        if let Some(last_run) = last_run {
            parsed.perfdata = with_age_checked(&parsed.perfdata, last_run, before_s, after_s);
        }
        parsed
    }

    /// `postgrey-advisor check` on this site's summary and files, over [`WINDOW`], plus `args`.
    fn check(&self, args: &[&str]) -> PluginOutput {
        let mut command = Command::new(bin_path());
        command
            .arg("check")
            .args(self.file_args())
            .args(["--window", WINDOW])
            .args(args);
        self.plugin(&mut command)
    }

    /// A `check_postgrey_whitelist` symlink to the built binary, as the Debian package
    /// installs it in /usr/lib/nagios/plugins/.
    fn plugin_symlink(&self) -> PathBuf {
        let link = self.path(PLUGIN);
        if !link.exists() {
            symlink(bin_path(), &link).unwrap();
        }
        link
    }

    /// Replaces the summary's `last_run`, as if the timer had last run `ago_s` seconds ago.
    fn age_summary(&self, ago_s: i64) {
        let mut value: Value = serde_json::from_slice(&fs::read(self.summary()).unwrap()).unwrap();
        value["last_run"] = Value::from(rfc3339(Timestamp::now().as_second() - ago_s));
        fs::write(self.summary(), serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }
}

#[test]
fn unreviewed_senders_warn_by_default_with_one_long_line_each() {
    let site = Site::week();
    assert_eq!(
        site.check(&[]),
        PluginOutput::expected(1, WEEK_WARNING, WEEK_PERFDATA, &WEEK_LONG)
    );
}

#[test]
fn thresholds_are_nagios_ranges_on_the_unreviewed_count() {
    let site = Site::week();
    let perfdata = |w: &str, c: &str| {
        WEEK_PERFDATA.replace("unreviewed=4;0;;0", &format!("unreviewed=4;{w};{c};0"))
    };
    let line = |state: &str| WEEK_WARNING.replace("WARNING", state);
    for (args, code, state, w, c) in [
        (&["-c", "2"][..], 2, "CRITICAL", "0", "2"),
        (&["-w", "10"], 0, "OK", "10", ""),
        (&["-w", "4"], 0, "OK", "4", ""),
        (&["-w", "3", "-c", "10"], 1, "WARNING", "3", "10"),
        (&["-w", "5:"], 1, "WARNING", "5:", ""),
        (&["-w", "~:4"], 0, "OK", "~:4", ""),
        (&["-w", "10", "-c", "@4:6"], 2, "CRITICAL", "10", "@4:6"),
        (&["-w", "10", "-c", "@5:6"], 0, "OK", "10", "@5:6"),
    ] {
        assert_eq!(
            site.check(args),
            PluginOutput::expected(code, &line(state), &perfdata(w, c), &WEEK_LONG),
            "{args:?}"
        );
    }
}

#[test]
fn min_count_decides_which_groups_need_a_review() {
    let site = Site::week();
    assert_eq!(
        site.check(&["--min-count", "40"]),
        PluginOutput::expected(
            1,
            "POSTGREY WHITELIST WARNING - 2 unreviewed senders: amazonses.com, outlook.com",
            &WEEK_PERFDATA.replace("unreviewed=4;", "unreviewed=2;"),
            &WEEK_LONG[..2],
        )
    );
    // The unresolved network has 14, one below the run's --min-count: it counts now, but the
    // run gave it no verdict.
    let output = site.check(&["--min-count", "14"]);
    assert_eq!(output.code, Some(1));
    assert_eq!(
        output.status,
        "POSTGREY WHITELIST WARNING - 5 unreviewed senders: amazonses.com, +4 more"
    );
    assert_eq!(
        output.long[4..],
        [
            "192.0.2.0/24: 14 greylisted, candidate, no verdict yet (the run judges from 15 greylistings)"
        ]
    );
}

#[test]
fn verbose_lists_the_reviewed_groups_too() {
    let site = Site::week();
    let output = site.check(&["-v"]);
    assert_eq!(output.code, Some(1));
    assert_eq!(output.status, WEEK_WARNING);
    assert_eq!(output.long[..4], WEEK_LONG);
    assert_eq!(
        output.long[4..7],
        [
            "bulk.co.uk: 42 greylisted, ignored",
            "mcsv.net: 20 greylisted, whitelisted",
            "ec2-3-80-1-0.compute-1.amazonaws.com: 1 greylisted, candidate",
        ]
    );
    assert_eq!(output.long.len(), 16, "{:#?}", output.long);
}

/// The postmaster acts on the alert; the check re-reads the whitelist and ignore files, so the
/// alert clears without waiting for the timer's next run.
#[test]
fn an_alert_clears_after_accept_without_a_new_run() {
    let site = Site::week();
    let summary_before = fs::read(site.summary()).unwrap();
    assert_eq!(
        site.check(&["-w", "2"]),
        PluginOutput::expected(
            1,
            WEEK_WARNING,
            &WEEK_PERFDATA.replace("unreviewed=4;0;", "unreviewed=4;2;"),
            &WEEK_LONG
        )
    );

    // The two suggestions, as `whitelist` prints them.
    bin()
        .args([
            "accept",
            "smtp-out.eu-west-1.amazonses.com",
            "outbound.protection.outlook.com",
            "--whitelist-local",
        ])
        .arg(site.path("whitelist_clients.local"))
        .assert()
        .success();
    assert_eq!(
        site.check(&["-w", "2"]),
        PluginOutput::expected(
            0,
            "POSTGREY WHITELIST OK - 2 unreviewed senders: example-isp.net, smallshop.de",
            "unreviewed=2;2;;0 greylisted=265;;;0 delay=574560s;;;0 groups=16;;;0 whitelisted_groups=4;;;0 \
             age=AGEs;;;0",
            &WEEK_LONG[2..]
        )
    );

    // The other two are decided against.
    bin()
        .args(["ignore", "example-isp.net", "smallshop.de", "--ignore-file"])
        .arg(site.path("ignore"))
        .assert()
        .success();
    assert_eq!(
        site.check(&[]),
        PluginOutput::expected(
            0,
            "POSTGREY WHITELIST OK - no unreviewed senders",
            "unreviewed=0;0;;0 greylisted=265;;;0 delay=574560s;;;0 groups=16;;;0 whitelisted_groups=4;;;0 \
             age=AGEs;;;0",
            &[]
        )
    );
    assert_eq!(fs::read(site.summary()).unwrap(), summary_before);
}

#[test]
fn a_check_before_any_run_says_no_run_has_completed() {
    let site = Site::new(&week_ending_yesterday());
    assert_eq!(
        site.check(&[]),
        PluginOutput::unknown(&format!(
            "no run of postgrey-advisor has completed yet: {} does not exist \
             (start one: systemctl start postgrey-advisor.service)",
            site.summary().display()
        ))
    );
}

#[test]
fn a_corrupt_summary_is_unknown() {
    let site = Site::week();
    let whole = fs::read(site.summary()).unwrap();
    // Cut off mid-write (as by a full disk, were it not replaced atomically).
    fs::write(site.summary(), &whole[..whole.len() / 2]).unwrap();
    let output = site.check(&[]);
    let prefix = format!(
        "POSTGREY WHITELIST UNKNOWN - summary {} is corrupt: EOF while parsing",
        site.summary().display()
    );
    assert!(output.status.starts_with(&prefix), "{output:?}");
    assert_eq!(
        (output.code, output.perfdata.as_str(), output.long.len()),
        (Some(3), "", 0)
    );

    // Valid JSON, but not a summary.
    fs::write(site.summary(), "{\"groups\": []}\n").unwrap();
    assert_eq!(
        site.check(&[]),
        PluginOutput::unknown(&format!(
            "summary {} is corrupt: missing field `last_run` at line 1 column 14",
            site.summary().display()
        ))
    );

    fs::write(site.summary(), "").unwrap();
    assert_eq!(
        site.check(&[]),
        PluginOutput::unknown(&format!(
            "summary {} is corrupt: EOF while parsing a value at line 1 column 0",
            site.summary().display()
        ))
    );
}

/// The timer stopped: its last summary is older than --max-age (default 8 days).
#[test]
fn a_stale_summary_is_unknown() {
    let site = Site::week();
    site.age_summary(9 * DAY_S);
    let stale = PluginOutput::unknown(&format!(
        "summary {} is 9d old (--max-age 8d): is postgrey-advisor.timer running?",
        site.summary().display()
    ));
    assert_eq!(site.check(&[]), stale);
    assert_eq!(site.check(&["--max-age", "8d"]), stale);

    // Allowed a longer age, it is evaluated; the age shows in the perfdata.
    let output = site.check(&["--max-age", "10d"]);
    assert_eq!(output.code, Some(1));
    assert_eq!(output.status, WEEK_WARNING);
    assert_eq!(output.perfdata, WEEK_PERFDATA);

    // Just younger than the limit.
    site.age_summary(8 * DAY_S - 3600);
    assert_eq!(site.check(&[]).code, Some(1));
}

/// A check window wider than the run's cannot be answered from the summary.
#[test]
fn a_window_wider_than_the_summary_is_unknown() {
    let site = Site::week();
    let value: Value = serde_json::from_slice(&fs::read(site.summary()).unwrap()).unwrap();
    let since = value["since"].as_str().unwrap().to_owned();
    let mut wide = Command::new(bin_path());
    wide.arg("check")
        .args(site.file_args())
        .args(["--window", "30d"]);
    assert_eq!(
        site.plugin(&mut wide),
        PluginOutput::unknown(&format!(
            "--window 30d is wider than summary {} covers (since {since}); widen the timer's --window",
            site.summary().display()
        ))
    );
    assert_eq!(site.check(&[]).code, Some(1));
}

/// Usage errors are UNKNOWN (3), not the usual 2, with the reason on stdout where Nagios
/// looks.
#[test]
fn bad_arguments_are_unknown_with_the_reason() {
    let site = Site::week();
    let invalid_range = |flag: &str, range: &str| {
        PluginOutput::unknown(&format!(
            "{flag}: invalid range \"{range}\" (forms: 10, 10:, ~:10, 10:20, @10:20)"
        ))
    };
    assert_eq!(site.check(&["-w", "x"]), invalid_range("-w", "x"));
    assert_eq!(site.check(&["-c", "20:10"]), invalid_range("-c", "20:10"));
    assert_eq!(site.check(&["-w", "@"]), invalid_range("-w", "@"));
    assert_eq!(
        site.check(&["--bogus"]),
        PluginOutput::unknown("unexpected argument '--bogus' found (see --help)")
    );
    assert_eq!(
        site.check(&["-t", "soon"]),
        PluginOutput::unknown(
            "invalid value 'soon' for '--timeout <SECONDS>': invalid digit found in string \
             (see --help)"
        )
    );
    assert_eq!(
        site.check(&["--min-count"]),
        PluginOutput::unknown(
            "a value is required for '--min-count <N>' but none was supplied (see --help)"
        )
    );
    let output = site.check(&["--max-age", "a fortnight"]);
    assert_eq!(output.code, Some(3));
    assert!(
        output
            .status
            .starts_with("POSTGREY WHITELIST UNKNOWN - --max-age: "),
        "{output:?}"
    );
    assert!(output.status.contains("a fortnight"), "{output:?}");
}

#[test]
fn version_and_help() {
    let site = Site::week();
    let version = format!(
        "check_postgrey_whitelist (postgrey-advisor) {}\n",
        env!("CARGO_PKG_VERSION")
    );
    for args in [&["check", "-V"][..], &["check", "--version"]] {
        let output = bin().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&output.stdout), version);
    }
    let output = Command::new(site.plugin_symlink())
        .arg("-V")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), version);

    for help in [
        bin().args(["check", "-h"]).output().unwrap(),
        Command::new(site.plugin_symlink())
            .arg("--help")
            .output()
            .unwrap(),
    ] {
        assert_eq!(help.status.code(), Some(0));
        let text = String::from_utf8_lossy(&help.stdout);
        for option in [
            "-w, --warning <RANGE>",
            "-c, --critical <RANGE>",
            "-t, --timeout <SECONDS>",
            "--summary <FILE>",
            "--since <TIME>",
            "--max-age <SPAN>",
            "--min-count <N>",
            "-v, --verbose",
            "-V, --version",
        ] {
            assert!(text.contains(option), "{option} missing from help:\n{text}");
        }
    }
}

/// The Debian package symlinks the binary into the plugin directory; invoked by that name it is
/// the check, with the same options.
#[test]
fn invoked_through_the_plugin_symlink_it_is_the_check() {
    let site = Site::week();
    let link = site.plugin_symlink();
    let mut command = Command::new(&link);
    command.args(site.file_args()).args(["--window", WINDOW]);
    assert_eq!(
        site.plugin(&mut command),
        PluginOutput::expected(1, WEEK_WARNING, WEEK_PERFDATA, &WEEK_LONG)
    );

    let mut command = Command::new(&link);
    command
        .args(site.file_args())
        .args(["--window", WINDOW, "-w", "1", "-c", "3"]);
    assert_eq!(
        site.plugin(&mut command),
        PluginOutput::expected(
            2,
            &WEEK_WARNING.replace("WARNING", "CRITICAL"),
            &WEEK_PERFDATA.replace("unreviewed=4;0;;0", "unreviewed=4;1;3;0"),
            &WEEK_LONG
        )
    );

    // A usage error by that name is UNKNOWN too.
    let mut command = Command::new(&link);
    command.arg("report");
    assert_eq!(
        site.plugin(&mut command),
        PluginOutput::unknown("unexpected argument 'report' found (see --help)")
    );
}

/// Without the timer: `--since` scans the journal itself. Same figures, no summary age.
#[test]
fn since_scans_the_journal_directly() {
    let site = Site::new(&week_ending_yesterday());
    let output = bin()
        .env("TZ", "UTC")
        .args(["check", "--since", "@0", "--journal-file"])
        .arg(site.journal_file())
        .arg("--whitelist-clients")
        .arg(site.whitelists())
        .arg("--ignore-file")
        .arg(site.path("ignore"))
        // Would be UNKNOWN if it were read.
        .args(["--summary", "/nonexistent/summary.json"])
        .output()
        .unwrap();
    assert_eq!(
        PluginOutput::parse(&output),
        PluginOutput::expected(
            1,
            WEEK_WARNING,
            WEEK_PERFDATA.strip_suffix(" age=AGEs;;;0").unwrap(),
            &WEEK_LONG
        )
    );
    assert!(!site.summary().exists());

    // A journal that cannot be read is UNKNOWN.
    let output = bin()
        .args([
            "check",
            "--since",
            "@0",
            "--journal-file",
            "/nonexistent/x.journal",
        ])
        .arg("--whitelist-clients")
        .arg(site.whitelists())
        .arg("--ignore-file")
        .arg(site.path("ignore"))
        .output()
        .unwrap();
    let parsed = PluginOutput::parse(&output);
    assert_eq!(parsed.code, Some(3));
    assert!(
        parsed.status.starts_with("POSTGREY WHITELIST UNKNOWN - ")
            && parsed.status.contains("/nonexistent/x.journal"),
        "{parsed:?}"
    );
}

/// Without --window the check counts over the run's window (so it counts what the digest
/// lists); a narrower --window counts only its days, from the summary's day counts. The week
/// is moved to end two days ago and its day 1 left out, so that a 7-day window starts on that
/// empty day today and on day 2 tomorrow: days 2–6 either way.
#[test]
fn a_narrower_window_counts_only_its_days_and_the_default_is_the_runs() {
    let site = Site::new(&week_from(today() - 8, |day| day != 1));
    site.run("30d");
    let mut command = Command::new(bin_path());
    command.arg("check").args(site.file_args());
    assert_eq!(
        site.plugin(&mut command),
        PluginOutput::expected(
            1,
            "POSTGREY WHITELIST WARNING - 4 unreviewed senders: amazonses.com, +3 more",
            // The run's 30 days: 6 days of 35 greylistings, and mcsv.net's 10 on day 0.
            "unreviewed=4;0;;0 greylisted=220;;;0 delay=492480s;;;0 groups=15;;;0 whitelisted_groups=2;;;0 \
             age=AGEs;;;0",
            &[
                "amazonses.com: 72 greylisted, candidate, verdict whitelist, suggest smtp-out.eu-west-1.amazonses.com",
                "outlook.com: 36 greylisted, candidate, verdict whitelist, suggest outbound.protection.outlook.com",
                "example-isp.net: 30 greylisted, candidate, verdict spam-like",
                "smallshop.de: 18 greylisted, candidate, verdict review",
            ]
        )
    );
    let mut command = Command::new(bin_path());
    command
        .arg("check")
        .args(site.file_args())
        .args(["--window", "7d"]);
    assert_eq!(
        site.plugin(&mut command),
        PluginOutput::expected(
            1,
            "POSTGREY WHITELIST WARNING - 4 unreviewed senders: amazonses.com, +3 more",
            // 5 days of 35 greylistings; day 0's ec2 host still counts as a group. The delay
            // is the run's window's (6 days of 82080 s): the summary keeps no delays per day.
            "unreviewed=4;0;;0 greylisted=175;;;0 delay=492480s;;;0 groups=15;;;0 whitelisted_groups=2;;;0 \
             age=AGEs;;;0",
            &[
                "amazonses.com: 60 greylisted, candidate, verdict whitelist, suggest smtp-out.eu-west-1.amazonses.com",
                "outlook.com: 30 greylisted, candidate, verdict whitelist, suggest outbound.protection.outlook.com",
                "example-isp.net: 25 greylisted, candidate, verdict spam-like",
                "smallshop.de: 15 greylisted, candidate, verdict review",
            ]
        )
    );
}

/// Names come from the log. The parser only takes host names Postfix would have verified, so
/// `|`, line breaks and control bytes never become a group; the longest valid names still fit
/// in the first line. A summary edited by hand is sanitised by the check itself.
#[test]
fn names_from_the_log_cannot_break_the_output() {
    let yesterday = (today() - 1) * DAY_S;
    let mut entries = week_ending_yesterday();
    let long_domain = format!("{}.com", "l".repeat(63));
    for i in 0..100i64 {
        let at = rfc3339(yesterday + 60 * i);
        for hostile in [
            "mx|warning.evil.example",
            "mx\nPOSTGREY WHITELIST OK.evil.example",
            "mx\u{1b}[2J.evil.example",
        ] {
            entries.push(ExportEntry::postgrey(
                &at,
                format!(
                    "action=greylist, reason=new, client_name={hostile}, client_address=198.51.100.{}, sender=a{i}@evil.example, recipient=bob@example.org",
                    100 + i % 50
                ),
            ));
        }
        entries.push(ExportEntry::postgrey(
            &at,
            format!(
                "action=greylist, reason=new, client_name=mta{}.{long_domain}, client_address=203.0.113.{}, sender=b{i}@{long_domain}, recipient=bob@example.org",
                i % 20,
                100 + i % 20
            ),
        ));
    }
    entries.sort_by_key(ExportEntry::realtime_us);
    let site = Site::new(&entries);
    site.run(WINDOW);

    let output = site.check(&[]);
    // The long name leads the list but does not fit in the first line: just the count.
    assert_eq!(
        output.status,
        "POSTGREY WHITELIST WARNING - 5 unreviewed senders"
    );
    assert_eq!(
        output.perfdata,
        "unreviewed=5;0;;0 greylisted=365;;;0 delay=574560s;;;0 groups=17;;;0 whitelisted_groups=2;;;0 \
         age=AGEs;;;0"
    );
    assert!(
        output.long[0].starts_with(&format!("{long_domain}: 100 greylisted, candidate, ")),
        "{:?}",
        output.long
    );
    assert_eq!(output.long[1..], WEEK_LONG);
    assert!(!format!("{output:?}").contains("evil"), "{output:?}");

    // The summary edited by hand: a name and a verdict no parser would produce.
    let mut summary: Value = serde_json::from_slice(&fs::read(site.summary()).unwrap()).unwrap();
    for group in summary["groups"].as_array_mut().unwrap() {
        if group["domain"] == "smallshop.de" {
            group["domain"] = Value::from("shop|x=1\nPOSTGREY WHITELIST OK\u{1b}[2J.de");
            group["verdict"] = Value::from("review | x=1");
        }
    }
    fs::write(site.summary(), serde_json::to_vec(&summary).unwrap()).unwrap();
    let output = site.check(&[]);
    assert_eq!(output.code, Some(1));
    assert_eq!(
        output.perfdata,
        "unreviewed=5;0;;0 greylisted=365;;;0 delay=574560s;;;0 groups=17;;;0 whitelisted_groups=2;;;0 \
         age=AGEs;;;0"
    );
    assert_eq!(output.long.len(), 5, "{:?}", output.long);
    assert_eq!(
        output.long[4],
        "shop_x=1_POSTGREY WHITELIST OK_[2J.de: 21 greylisted, candidate, verdict ?"
    );
}

/// A check that cannot finish within -t is UNKNOWN: here the log to scan is a FIFO nobody
/// writes to, so opening it blocks forever.
#[test]
fn a_check_that_hangs_is_unknown_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("mail.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let output = bin()
        .args([
            "check", "-t", "1", "--since", "@0", "--year", "2026", "--file",
        ])
        .arg(&fifo)
        .arg("--whitelist-clients")
        .arg(dir.path().join("whitelist_clients.local"))
        .arg("--ignore-file")
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(
        PluginOutput::parse(&output),
        PluginOutput::unknown("timed out after 1 s (-t)")
    );
}

/// nagios4 runs the plugin (through its symlink, with the shipped command definition) on a
/// summary from a real run, and records the state, the first line, the long output and the
/// perfdata in status.dat.
#[test]
fn nagios4_executes_the_check_and_records_state_and_perfdata() {
    let site = Site::week();
    let options = format!(
        "--summary {} --whitelist-clients {} --ignore-file {} --window {WINDOW}",
        site.summary().display(),
        site.whitelists().to_str().unwrap(),
        site.path("ignore").display()
    );
    let last_run = last_run_s(&site.summary()).unwrap();
    let before_s = Timestamp::now().as_second();
    let statuses = nagios::check_once(
        &nagios::shipped_commands(&site.plugin_symlink()),
        &[
            &format!("check_postgrey_advisor_args!{options}"),
            &format!("check_postgrey_advisor_args!{options} -w 1 -c 3"),
            "check_postgrey_advisor_args!--summary /nonexistent/summary.json",
        ],
    );
    let after_s = Timestamp::now().as_second();
    let statuses: Vec<ServiceStatus> = statuses
        .into_iter()
        .map(|status| ServiceStatus {
            perfdata: with_age_checked(&status.perfdata, last_run, before_s, after_s),
            ..status
        })
        .collect();
    let long_output = WEEK_LONG.join("\\n");
    assert_eq!(
        statuses,
        [
            ServiceStatus {
                state: 1,
                output: WEEK_WARNING.to_owned(),
                long_output: long_output.clone(),
                perfdata: WEEK_PERFDATA.to_owned(),
            },
            ServiceStatus {
                state: 2,
                output: WEEK_WARNING.replace("WARNING", "CRITICAL"),
                long_output,
                perfdata: WEEK_PERFDATA.replace("unreviewed=4;0;;0", "unreviewed=4;1;3;0"),
            },
            ServiceStatus {
                state: 3,
                output: "POSTGREY WHITELIST UNKNOWN - no run of postgrey-advisor has completed \
                         yet: /nonexistent/summary.json does not exist (start one: systemctl \
                         start postgrey-advisor.service)"
                    .to_owned(),
                long_output: String::new(),
                perfdata: String::new(),
            },
        ]
    );
}
