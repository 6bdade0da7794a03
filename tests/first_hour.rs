//! A postmaster's first hour, through the real binary: what a new user types on the bundled
//! sample (tests/fixtures/sample, dated 2026-11-21..27, so every window here is named
//! explicitly) and on a generated week, and exactly what they get back: output and exit code.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::fixtures::DAY_S;
use common::traffic::{self, Line};
use common::{ExportEntry, JournalFiles, bin, bin_path};
use jiff::Timestamp;
use serde_json::Value;

const SAMPLE_LOG: &str = "tests/fixtures/sample/mail.log";
const SAMPLE_WHITELIST: &str = "tests/fixtures/sample/whitelist_clients";
const SAMPLE_IGNORE: &str = "tests/fixtures/sample/ignore";
/// The sample's week, as a window.
const WEEK: [&str; 4] = ["--since", "2026-11-21", "--until", "2026-11-28"];

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8 output")
}

/// `postgrey-advisor ARGS…` in UTC, with the sample's whitelist and ignore file unless `args`
/// name others, and text files read as of 2026 (the sample's year, whatever their mtime).
fn advisor(args: &[&str]) -> Output {
    let mut cmd = bin();
    cmd.env("TZ", "UTC").env_remove("COLUMNS").args(args);
    let names_lists = args
        .iter()
        .any(|a| *a == "--whitelist-clients" || *a == "--ignore-file");
    let takes_lists = matches!(
        args.first(),
        Some(&("report" | "whitelist" | "run" | "check"))
    );
    if takes_lists && !names_lists {
        cmd.args(["--whitelist-clients", SAMPLE_WHITELIST]);
        cmd.args(["--ignore-file", SAMPLE_IGNORE]);
    }
    if args.contains(&"--file") && !args.contains(&"--year") {
        cmd.args(["--year", "2026"]);
    }
    cmd.output().expect("run postgrey-advisor")
}

/// `report` on the sample's week plus `args`.
fn sample_report(args: &[&str]) -> Output {
    let mut all = vec!["report", "--file", SAMPLE_LOG];
    all.extend(WEEK);
    all.extend(args);
    advisor(&all)
}

fn json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The longest line, in characters.
fn widest(output: &str) -> usize {
    output.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The sample's table, as a new user gets it: what greylisting cost (91 mails passed after
/// 574,560 s of delay in all, 453,600 s of them amazonses.com's and outlook.com's, the two
/// groups with a suggested line: 160 h, 126 h, 79 %), window, what was read, the groups within 80
/// columns with a legend, why each verdict, the lines to paste each after why.
const SAMPLE_TABLE: &str = "\
Greylisting held 91 mails for 160 h this week; the 2 suggested lines would have
  spared 126 h (79 %).

Window: 2026-11-21 00:00 to 2026-11-28 00:00.
Read tests/fixtures/sample/mail.log: 822 lines, 411 of them postgrey's, from
  2026-11-21 00:02 to 2026-11-27 23:00.
411 postgrey lines, 265 greylisted, 0 untrusted skipped, 7 malformed

GROUP           NEW EARLY ELSEWHERE PASSED MEDIAN IPS NETS HOSTS VERDICT
amazonses.com    84     0        56     28     3h  12    3    12 whitelist
bulk.co.uk       42     0        21     21  1h30m   6    2     2 ignored
outlook.com      42     0        21     21     2h   6    2     6 whitelist
example-isp.net  35     0         0      0      -  35    1    35 spam-like
smallshop.de     21     0         0     21     6m   1    1     1 review
mcsv.net         20     0        10      0      -  40    7    40 whitelisted

10 more groups greylisted fewer than 15 times (--all shows them).

NEW: greylisted the first time. EARLY: retried before the delay was over.
ELSEWHERE: the same mail retried from another network (what multi-server senders
do). PASSED: passed after the delay. MEDIAN: wait before passing. IPS, NETS,
HOSTS: distinct addresses, networks and names. VERDICT: the advice on an
undecided group; whitelisted or ignored once decided; partly/ when some of its
clients are whitelisted already.

Why:
  amazonses.com: multi-server sender: 56 of 84 greylistings retried from another
      network, 28 passed after delay, median wait 3h
  outlook.com: multi-server sender: 21 of 42 greylistings retried from another
      network, 21 passed after delay, median wait 2h
  example-isp.net: 35 hosts on 35 addresses, 0 of 35 came back; 100% of names
      look like dynamic pools
  smallshop.de: 21 greylistings from 1 address in 1 network, 21 came back,
      median wait 6m

Suggested for /etc/postgrey/whitelist_clients.local (each after why):
  # amazonses.com: multi-server sender
  smtp-out.eu-west-1.amazonses.com
  # outlook.com: multi-server sender
  outbound.protection.outlook.com
";

#[test]
fn the_sample_table_fits_80_columns_with_a_legend_and_says_why() {
    let output = sample_report(&[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), SAMPLE_TABLE);
    assert!(!text(&output.stdout).contains("1 addresses"));
    assert!(!text(&output.stdout).contains("1 networks"));
}

#[test]
fn with_all_long_names_take_a_line_of_their_own_within_80_columns() {
    let output = sample_report(&["--all"]);
    assert_eq!(output.status.code(), Some(0));
    let table = text(&output.stdout);
    assert_eq!(widest(table), 80, "{table}");
    assert!(
        table.contains(
            "ec2-3-80-1-4.compute-1.amazonaws.com\n                      \
             1     0         0      0      -   1    1     1 -\n"
        ),
        "{table}"
    );
    // The unresolved block and its row, names never cut.
    assert!(table.contains(
        "UNRESOLVED    NEW  EARLY  ELSEWHERE  PASSED  MEDIAN  IPS  NETS  HOSTS  VERDICT\n\
         192.0.2.0/24   14      0          0       0       -   14     1      0  -\n"
    ));
}

/// On a terminal 120 columns wide, the table uses the width: long names stay on their row.
#[test]
fn on_a_wider_terminal_the_table_uses_its_width() {
    let command = format!(
        "stty rows 40 cols 120; {} report --year 2026 --file {SAMPLE_LOG} {} --all --whitelist-clients \
         {SAMPLE_WHITELIST} --ignore-file {SAMPLE_IGNORE}",
        bin_path().display(),
        WEEK.join(" ")
    );
    let run = |cmd: &str| {
        let output = Command::new("script")
            .args(["-qec", cmd, "/dev/null"])
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .output()
            .expect("run script");
        String::from_utf8(output.stdout)
            .expect("UTF-8")
            .replace("\r\n", "\n")
    };
    let wide = run(&command);
    assert!(
        wide.contains(
            "ec2-3-80-1-4.compute-1.amazonaws.com    1      0          0       0       -    \
             1     1      1  -\n"
        ),
        "{wide}"
    );
    assert!(widest(&wide) <= 120, "{wide}");
    assert!(widest(&wide) > 80, "{wide}");
    // A narrower terminal still gets 80 columns.
    let narrow = run(&command.replace("cols 120", "cols 60"));
    assert_eq!(widest(&narrow), 80, "{narrow}");
}

#[test]
fn an_unresolved_verdict_has_its_why_line() {
    let output = sample_report(&["--min-count", "14"]);
    let table = text(&output.stdout);
    assert!(
        table.contains(
            "192.0.2.0/24   14      0          0       0       -   14     1      0  spam-like\n"
        ),
        "{table}"
    );
    assert!(
        table.contains(
            "  192.0.2.0/24: 14 addresses without a name, 0 of 14 greylistings came back\n"
        ),
        "{table}"
    );
}

#[test]
fn since_takes_a_relative_time_with_a_leading_hyphen() {
    for flag in ["--since", "-S"] {
        let before = Timestamp::now().as_second();
        let output = advisor(&[
            "report", "--file", SAMPLE_LOG, flag, "-2d", "--until", "-1d", "--format", "json",
        ]);
        let after = Timestamp::now().as_second();
        let report = json(&output);
        let since: Timestamp = report["since"].as_str().unwrap().parse().unwrap();
        let until: Timestamp = report["until"].as_str().unwrap().parse().unwrap();
        assert!((before - 2 * DAY_S..=after - 2 * DAY_S).contains(&since.as_second()));
        assert!((before - DAY_S..=after - DAY_S).contains(&until.as_second()));
    }
}

#[test]
fn until_before_since_is_a_usage_error() {
    let output = advisor(&[
        "report",
        "--file",
        SAMPLE_LOG,
        "--since",
        "2026-11-28",
        "--until",
        "2026-11-21",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "postgrey-advisor: --until 2026-11-21 (2026-11-21T00:00:00Z) is not after --since \
         2026-11-28 (2026-11-28T00:00:00Z): the window is empty\n"
    );
}

/// The head of a table for an empty result: window, read, totals, the reason.
fn empty_table(window: &str, read: &str, why: &str) -> String {
    format!(
        "{window}\n{read}\n0 postgrey lines, 0 greylisted, 0 untrusted skipped, 0 malformed\n\n{why}\n"
    )
}

#[test]
fn a_log_without_postgrey_lines_says_what_was_read_and_hints_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("mail.log");
    let sample = fs::read_to_string(SAMPLE_LOG).unwrap();
    fs::write(&renamed, sample.replace(" postgrey[", " pgrey[")).unwrap();
    let output = advisor(&[
        "report",
        "--file",
        s(&renamed),
        WEEK[0],
        WEEK[1],
        WEEK[2],
        WEEK[3],
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        empty_table(
            "Window: 2026-11-21 00:00 to 2026-11-28 00:00.",
            &format!(
                "Read {}: 822 lines, 0 of them postgrey's.",
                renamed.display()
            ),
            "None of the 822 lines is postgrey's: if postgrey logs under another program\n\
             name, give it with --identifier (now \"postgrey\")."
        )
    );
    // The hint works.
    let output = advisor(&[
        "report",
        "--file",
        s(&renamed),
        "--identifier",
        "pgrey",
        "--format",
        "json",
    ]);
    assert_eq!(json(&output)["totals"]["greylisted"], 265);
}

#[test]
fn a_window_without_the_data_says_where_the_data_is() {
    let output = advisor(&["report", "--file", SAMPLE_LOG, "--since", "2026-12-01"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        empty_table(
            "Window: from 2026-12-01 00:00 on.",
            "Read tests/fixtures/sample/mail.log: 822 lines, 0 of them postgrey's in the\n  \
             window and 411 outside it.",
            "All 411 postgrey's lines lie outside the window: widen --since/--until."
        )
    );
}

#[test]
fn a_journal_file_given_to_file_and_a_text_file_to_journal_file_are_named() {
    let journal = JournalFiles::with_entries(&[ExportEntry::postgrey(
        "2026-11-21T08:00:00Z",
        "action=greylist, reason=new, client_name=mx.example.com, client_address=192.0.2.1, sender=a@example.com, recipient=b@example.org",
    )]);
    let file = journal.files().remove(0);
    let output = advisor(&["report", "--file", s(&file)]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "postgrey-advisor: {0} is a journal file, not a text log: read it with --journal-file {0}\n",
            file.display()
        )
    );
    let output = advisor(&["report", "--journal-file", SAMPLE_LOG]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "postgrey-advisor: {SAMPLE_LOG} is not a journal file (a text log? read it with --file {SAMPLE_LOG})\n"
        )
    );
    // Read the right way, the entry counts.
    let output = advisor(&["report", "--journal-file", s(&file), "--format", "json"]);
    assert_eq!(json(&output)["totals"]["greylisted"], 1);
}

/// `run --file` on the sample with `args`, state in `dir`.
fn run_sample(dir: &Path, args: &[&str]) -> Output {
    let state = dir.join("state.json");
    let mut all = vec![
        "run",
        "--file",
        SAMPLE_LOG,
        "--state",
        s(&state),
        "--initial-since",
        "@0",
    ];
    all.extend(args);
    advisor(&all)
}

#[test]
fn a_first_run_outside_the_window_says_so_and_a_second_says_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    // The default --window (7d) counts back from now: the sample lies before it on any day
    // this test runs (from 2026-12-04 on).
    let output = run_sample(dir.path(), &["--keep", "100000d"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("Window: "), "{table}");
    assert_eq!(
        lines[1..].join("\n"),
        "Read tests/fixtures/sample/mail.log: 822 lines, 411 of them postgrey's, from\n  \
         2026-11-21 00:02 to 2026-11-27 23:00.\n\
         0 postgrey lines, 0 greylisted, 0 untrusted skipped, 0 malformed\n\n\
         None of the 411 entries read lies in the window (--window counts back from now;\n\
         --since/--initial-since choose what is read)."
    );
    let summary: Value =
        serde_json::from_slice(&fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["entries_read"], 411);
    assert_eq!(summary["read"]["entries"], 411);

    let output = run_sample(dir.path(), &["--keep", "100000d", "--window", "100000d"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(
        table.starts_with(
            "Greylisting held 91 mails for 160 h in the window; the 2 suggested lines would\n  \
             have spared 126 h (79 %).\n\nWindow: "
        ),
        "{table}"
    );
    let read = table.lines().nth(4).unwrap();
    assert!(
        read.starts_with("Read tests/fixtures/sample/mail.log: 0 new entries since the last"),
        "{table}"
    );
    // The window now reaches the sample: the counts kept from the first run.
    assert!(
        table.contains("411 postgrey lines, 265 greylisted"),
        "{table}"
    );
}

/// `check` on a summary of `run --min-count 30 --window 100000d`: the run's thresholds and
/// window, so Nagios counts what the digest lists, whatever day the test runs.
#[test]
fn check_takes_min_count_and_window_from_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_sample(
        dir.path(),
        &[
            "--min-count",
            "30",
            "--window",
            "100000d",
            "--keep",
            "100000d",
            "--format",
            "counts",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let summary = dir.path().join("summary.json");
    let check = |args: &[&str]| {
        let mut all = vec!["check", "--summary", s(&summary)];
        all.extend(args);
        advisor(&all)
    };
    let output = check(&[]);
    assert_eq!(output.status.code(), Some(1));
    let out = text(&output.stdout);
    assert!(
        out.starts_with(
            "POSTGREY WHITELIST WARNING - 3 unreviewed senders: amazonses.com, +2 more | \
             unreviewed=3;0;;0 greylisted=265;;;0 delay=574560s;;;0 groups=16;;;0 whitelisted_groups=2;;;0 age="
        ),
        "{out}"
    );
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        [
            "amazonses.com: 84 greylisted, candidate, verdict whitelist, suggest smtp-out.eu-west-1.amazonses.com",
            "outlook.com: 42 greylisted, candidate, verdict whitelist, suggest outbound.protection.outlook.com",
            "example-isp.net: 35 greylisted, candidate, verdict spam-like",
        ]
    );
    // Told otherwise, it counts otherwise, and says why the run gave no verdict.
    let output = check(&["--min-count", "15"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stdout).lines().last(),
        Some(
            "smallshop.de: 21 greylisted, candidate, no verdict yet (the run judges from 30 greylistings)"
        )
    );
    // A source without --since is refused, not ignored.
    let output = check(&["--journal-file", SAMPLE_LOG]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        text(&output.stdout),
        format!(
            "POSTGREY WHITELIST UNKNOWN - --file, --journal-dir and --journal-file need --since \
             (without it the check reads the summary {})\n",
            summary.display()
        )
    );
}

#[test]
fn run_help_says_where_the_summary_lands() {
    let output = advisor(&["run", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains(
            "State file (cursor and day buckets). The summary for `check` is written beside it, \
             as summary.json in the same directory"
        ),
        "{help}"
    );
}

#[test]
fn every_help_has_its_defaults_and_an_example() {
    for (command, defaults, example) in [
        (
            "report",
            "Source: the system journal (entries of postgrey.service) unless --file, --journal-dir \
             or --journal-file name another. Window: everything the source holds unless --since \
             or --until narrow it.",
            "postgrey-advisor report --since -7d",
        ),
        (
            "whitelist",
            "Source: the system journal",
            "postgrey-advisor whitelist --since -7d",
        ),
        (
            "accept",
            "File: /etc/postgrey/whitelist_clients.local",
            "postgrey-advisor accept",
        ),
        (
            "ignore",
            "File: /etc/postgrey-advisor/ignore",
            "postgrey-advisor ignore",
        ),
        (
            "audit",
            "Files: /etc/postgrey/whitelist_clients",
            "postgrey-advisor audit",
        ),
        (
            "run",
            "Window of the report and summary: --window, 7d.",
            "systemctl start postgrey-advisor.service",
        ),
        (
            "check",
            "Source: summary.json",
            "postgrey-advisor check Warn while",
        ),
    ] {
        let output = advisor(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0));
        let help = text(&output.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(help.contains(defaults), "{command}: {help}");
        assert!(
            help.contains(&format!("Examples: {example}")),
            "{command}: {help}"
        );
    }
}

/// A `check_postgrey_whitelist` symlink, as the package installs it.
fn plugin_link(dir: &Path) -> PathBuf {
    let link = dir.join("check_postgrey_whitelist");
    std::os::unix::fs::symlink(bin_path(), &link).unwrap();
    link
}

#[test]
fn the_plugin_help_shows_its_own_usage() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(plugin_link(dir.path()))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    assert!(
        help.contains("Usage: check_postgrey_whitelist [OPTIONS]\n"),
        "{help}"
    );
    assert!(
        help.contains("check_postgrey_whitelist -w 3 -c 10"),
        "{help}"
    );
}

/// Every page `generate man-pages` writes renders with man(1) without a warning, with the
/// sections a postmaster looks for.
#[test]
fn man_pages_render_with_options_files_environment_exit_status_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let output = advisor(&["generate", "man-pages", s(dir.path())]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let pages: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    let names: Vec<String> = pages
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "postgrey-advisor.1",
            "postgrey-advisor-report.1",
            "postgrey-advisor-whitelist.1",
            "postgrey-advisor-accept.1",
            "postgrey-advisor-ignore.1",
            "postgrey-advisor-audit.1",
            "postgrey-advisor-run.1",
            "postgrey-advisor-check.1",
            "check_postgrey_whitelist.1",
        ]
    );
    for page in &pages {
        let output = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", page])
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            // man-db's seccomp sandbox refuses what faketime (CI's reruns) needs.
            .env("MAN_DISABLE_SECCOMP", "1")
            .output()
            .expect("man");
        assert!(output.status.success(), "{page}");
        assert_eq!(text(&output.stderr), "", "{page}");
        let rendered = Command::new("man")
            .args(["-l", page])
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            // man-db's seccomp sandbox refuses what faketime (CI's reruns) needs.
            .env("MAN_DISABLE_SECCOMP", "1")
            .env("MANPAGER", "cat")
            .output()
            .expect("man");
        // Piped, man prints no overstrike: plain section names.
        let plain = text(&rendered.stdout);
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "FILES",
            "ENVIRONMENT",
            "EXIT STATUS",
            "EXAMPLES",
        ] {
            assert!(
                plain.lines().any(|l| l == section),
                "{page} lacks {section}:\n{plain}"
            );
        }
    }
    let plugin = fs::read_to_string(dir.path().join("check_postgrey_whitelist.1")).unwrap();
    assert!(plugin.contains("UNKNOWN"));
    assert!(plugin.contains("POSTGREY_ADVISOR_SUMMARY"));
    let main = fs::read_to_string(dir.path().join("postgrey-advisor.1")).unwrap();
    assert!(
        !main.contains("postgrey\\-advisor\\-help"),
        "a help page that is never built"
    );
}

#[test]
fn whitelist_json_lists_the_suggestions_and_other_formats_are_refused() {
    let mut args = vec!["whitelist", "--file", SAMPLE_LOG];
    args.extend(WEEK);
    let mut json_args = args.clone();
    json_args.extend(["--format", "json"]);
    let list = json(&advisor(&json_args));
    assert_eq!(
        list,
        serde_json::json!([
            {
                "group": "amazonses.com",
                "line": "smtp-out.eu-west-1.amazonses.com",
                "verdict": "whitelist",
                "status": "candidate",
                "greylisted": 84,
                "reason": "multi-server sender: 56 of 84 greylistings retried from another network, 28 passed after delay, median wait 3h"
            },
            {
                "group": "outlook.com",
                "line": "outbound.protection.outlook.com",
                "verdict": "whitelist",
                "status": "candidate",
                "greylisted": 42,
                "reason": "multi-server sender: 21 of 42 greylistings retried from another network, 21 passed after delay, median wait 2h"
            }
        ])
    );
    for refused in [&["--format", "counts"][..], &["--all"]] {
        let mut refused_args = args.clone();
        refused_args.extend(refused);
        assert_eq!(advisor(&refused_args).status.code(), Some(2), "{refused:?}");
    }
}

#[test]
fn counts_include_unresolved_blocks_honour_all_and_skip_zero_rows() {
    let output = sample_report(&["--format", "counts"]);
    assert_eq!(
        text(&output.stdout),
        "     84 amazonses.com candidate whitelist
     42 bulk.co.uk ignored -
     42 outlook.com candidate whitelist
     35 example-isp.net candidate spam-like
     21 smallshop.de candidate review
     20 mcsv.net whitelisted -
"
    );
    let output = sample_report(&["--format", "counts", "--all"]);
    let all = text(&output.stdout);
    assert!(
        all.contains("\n     14 192.0.2.0/24 candidate -\n"),
        "{all}"
    );
    assert_eq!(all.lines().count(), 14, "{all}");
    assert!(
        !all.lines().any(|l| l.trim_start().starts_with("0 ")),
        "{all}"
    );
    let output = sample_report(&["--format", "counts", "--min-count", "14"]);
    assert!(text(&output.stdout).ends_with("     14 192.0.2.0/24 candidate spam-like\n"));
}

#[test]
fn ignore_takes_a_pasted_host_name_as_its_group_and_networks() {
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join("ignore");
    let output = advisor(&[
        "ignore",
        "--ignore-file",
        s(&ignore),
        "adsl.example-isp.net",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        format!(
            "adsl.example-isp.net: ignoring example-isp.net, the group (registrable domain) it \
             belongs to: every host of example-isp.net is ignored\nadded to {}:\n  example-isp.net\n",
            ignore.display()
        )
    );
    let output = advisor(&[
        "ignore",
        "--ignore-file",
        s(&ignore),
        "192.0.2.0/24",
        "203.0.113.9",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        format!(
            "203.0.113.9: ignoring 203.0.113.0/24, the block unresolved clients are reported by \
             (/24 for IPv4, /64 for IPv6)\nadded to {}:\n  192.0.2.0/24\n  203.0.113.0/24\n",
            ignore.display()
        )
    );
    // Again: already there, still success.
    let output = advisor(&["ignore", "--ignore-file", s(&ignore), "mx9.example-isp.net"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stderr),
        format!(
            "postgrey-advisor: not adding example-isp.net: already in {}\n",
            ignore.display()
        )
    );
    // A network wider than the reported blocks cannot match one: refused with the fix.
    let output = advisor(&["ignore", "--ignore-file", s(&ignore), "198.51.100.0/23"]);
    assert_eq!(output.status.code(), Some(2));
    // The report and the check no longer count them.
    let output = sample_report(&[
        "--ignore-file",
        s(&ignore),
        "--min-count",
        "14",
        "--format",
        "json",
    ]);
    let report = json(&output);
    let isp = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["domain"] == "example-isp.net")
        .unwrap();
    assert_eq!(isp["status"], "ignored");
    assert_eq!(report["unresolved"][0]["status"], "ignored");
}

#[test]
fn accept_takes_a_pasted_regex_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("whitelist_clients.local");
    let line = r"/(^|\.)smtp-out\.eu-west-1\.amazonses\.com$/";
    let output = advisor(&["accept", "--whitelist-local", s(&local), line]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let written = fs::read_to_string(&local).unwrap();
    assert!(written.ends_with(&format!("{line}\n")), "{written}");
    let output = advisor(&["accept", "--whitelist-local", s(&local), line]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        format!("nothing to add to {}: already there\n", local.display())
    );
}

#[test]
fn audit_of_the_stock_list_points_to_the_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = common::fixtures::copy_debian_list(dir.path());
    let output = advisor(&["audit", "--whitelist-clients", s(&main)]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "postgrey-advisor: {0} is the list postgrey ships (a conffile): leave it as it is and \
             put entries that fix these findings in {0}.local, which postgrey reads after it\n",
            main.display()
        )
    );
}

/// `--to-journal` where no journald listens: an empty directory mounted over
/// /run/systemd/journal in a private mount namespace (the tests run as root).
#[test]
fn to_journal_without_a_journald_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    fs::create_dir_all("/run/systemd/journal").unwrap();
    let script = format!(
        "mount --bind {} /run/systemd/journal && exec {} run --year 2026 --file {SAMPLE_LOG} --state {} \
         --initial-since @0 --whitelist-clients {SAMPLE_WHITELIST} --ignore-file {SAMPLE_IGNORE} \
         --to-journal",
        empty.path().display(),
        bin_path().display(),
        dir.path().join("state.json").display()
    );
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stderr),
        "postgrey-advisor: --to-journal: no journald listens at /run/systemd/journal/socket, so \
         the report could not be written (without --to-journal it is printed)\n"
    );
    // Refused before anything was read or saved.
    assert!(!dir.path().join("state.json").exists());
}

/// The week of traffic.rs, plus greylistings whose client is odd: no name and no address,
/// `unknown` with an address, a name that is no host name (malformed), an IDN label.
fn odd_week() -> Vec<Line> {
    let mut lines = traffic::week();
    let at = traffic::WEEK_START_S + 3 * DAY_S + 3600;
    for (i, message) in [
        "action=greylist, reason=new, sender=a@odd.example, recipient=bob@example.org",
        "action=greylist, reason=new, client_name=unknown, client_address=198.51.100.7, sender=b@odd.example, recipient=bob@example.org",
        "action=greylist, reason=new, client_name=not a host!, client_address=198.51.100.8, sender=c@odd.example, recipient=bob@example.org",
        "action=greylist, reason=new, client_name=xn--bcher-kva.example, client_address=198.51.100.9, sender=d@odd.example, recipient=bob@example.org",
        "action=greylist, reason=early-retry (30s missing), client_name=mx.odd.example, client_address=198.51.100.10, sender=e@odd.example, recipient=bob@example.org",
    ]
    .iter()
    .enumerate()
    {
        lines.push(Line {
            at_s: at + i as i64,
            message: (*message).to_owned(),
        });
    }
    lines.sort_by_key(|l| l.at_s);
    lines
}

/// Every greylisting is somewhere visible: groups + unresolved + ungrouped + folded = total.
#[test]
fn every_greylisting_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    fs::write(&log, traffic::syslog_text(&odd_week())).unwrap();
    let output = advisor(&[
        "report",
        "--file",
        s(&log),
        "--year",
        "2026",
        "--since",
        "2026-11-21",
        "--until",
        "2026-11-28",
        "--all",
        "--format",
        "json",
    ]);
    let report = json(&output);
    let sum = |list: &str| -> u64 {
        report[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["greylisted"].as_u64().unwrap())
            .sum()
    };
    // The week's 265, and 4 of the 5 odd lines (the bad name is malformed, as postgrey
    // cannot have logged it).
    assert_eq!(report["totals"]["greylisted"], 269);
    assert_eq!(report["totals"]["malformed"], 8);
    assert_eq!(report["ungrouped_greylisted"], 1);
    assert_eq!(report["folded_greylisted"], 0);
    assert_eq!(
        sum("groups") + sum("unresolved") + 1,
        report["totals"]["greylisted"].as_u64().unwrap()
    );
    assert_eq!(
        report["notes"],
        serde_json::json!([
            "1 greylisting had neither a usable client name nor a client address: in the totals but under no group"
        ])
    );
    // The same in the table, for the user who never opens the JSON.
    let output = advisor(&[
        "report",
        "--file",
        s(&log),
        "--year",
        "2026",
        "--since",
        "2026-11-21",
        "--until",
        "2026-11-28",
    ]);
    assert!(text(&output.stdout).ends_with(
        "\nNote: 1 greylisting had neither a usable client name nor a client address: in\n  \
         the totals but under no group\n"
    ));
}

/// The sample's delays, as summed by `awk` from its `delay=` fields: 91 mails passed after
/// 574,560 s in all; amazonses.com's and outlook.com's, the groups with a suggested line, are
/// what the suggestions would have spared.
#[test]
fn the_sample_says_what_greylisting_cost() {
    let report = json(&sample_report(&["--format", "json"]));
    for (domain, passed, delay) in [
        ("amazonses.com", 28, 302_400),
        ("outlook.com", 21, 151_200),
        ("bulk.co.uk", 21, 113_400),
        ("smallshop.de", 21, 7_560),
        ("example-isp.net", 0, 0),
    ] {
        let group = common::fixtures::group(&report, domain);
        assert_eq!(
            (&group["passed_after_delay"], &group["delay_total_s"]),
            (&Value::from(passed), &Value::from(delay)),
            "{domain}"
        );
    }
    assert_eq!(report["totals"]["passed_after_delay"], 91);
    assert_eq!(report["totals"]["delay_total_s"], 574_560);
    assert_eq!(report["spared_delay_s"], 453_600);
}

#[test]
fn json_describes_itself() {
    let report = json(&sample_report(&["--format", "json"]));
    assert_eq!(report["schema_version"], 2);
    assert_eq!(report["min_count"], 15);
    assert_eq!(
        report["window"],
        "from since (inclusive) to until (exclusive)"
    );
    assert_eq!(
        report["whitelist_files"],
        serde_json::json!([SAMPLE_WHITELIST])
    );
    assert_eq!(report["ignore_file"], SAMPLE_IGNORE);
    assert_eq!(
        report["read"],
        serde_json::json!({
            "source": SAMPLE_LOG,
            "identifier": "postgrey",
            "lines": 822,
            "entries": 411,
            "outside_window": 0,
            "first": "2026-11-21T00:02:00Z",
            "last": "2026-11-27T23:00:00Z",
            "previous_run": null,
        })
    );
    let whole = json(&advisor(&[
        "report", "--file", SAMPLE_LOG, "--format", "json",
    ]));
    assert_eq!(whole["since"], Value::Null);
    assert_eq!(whole["until"], Value::Null);
    assert_eq!(
        whole["window"],
        "all data: since and until are null, the source was read whole"
    );
}
