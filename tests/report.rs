//! `report` and `whitelist` on a week of traffic with known answers (tests/common/traffic.rs),
//! read from real journal files (built by systemd-journal-remote) and from text logs.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::fixtures::{assert_week, export_entries, group, postmaster_files, rfc3339};
use common::traffic::{self, Line};
use common::{ExportEntry, JournalFiles, bin};
use serde_json::Value;

/// The week as journal entries, plus 20 forged lines from an ordinary user (uid 1000) that
/// claim a flood from a sender that must never appear.
fn week_in_journal() -> JournalFiles {
    let mut entries = export_entries(&traffic::week());
    for i in 0..20 {
        let at = traffic::WEEK_START_S + 3600 * 12 + i * 60;
        entries.push(ExportEntry::forged(
            &rfc3339(at),
            1000,
            format!(
                "action=greylist, reason=new, client_name=mx{i}.forged.example, client_address=192.0.2.{i}, sender=a@forged.example, recipient=bob@example.org"
            ),
        ));
    }
    entries.sort_by_key(|e| e.realtime_us());
    JournalFiles::with_entries(&entries)
}

/// The binary in UTC with `args`, then the postmaster's files (written into `dir`).
fn advisor(args: &[&str], dir: &Path) -> assert_cmd::Command {
    let (whitelist, ignore) = postmaster_files(dir);
    let mut command = bin();
    command
        .env("TZ", "UTC")
        .args(args)
        .arg("--whitelist-clients")
        .arg(whitelist)
        .arg("--ignore-file")
        .arg(ignore);
    command
}

/// The JSON a successful run printed; panics with its stderr on failure.
fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn report_json(source: &[&str], dir: &Path) -> Value {
    let args = [&["report"][..], source, &["--format", "json"]].concat();
    json_of(&advisor(&args, dir).output().unwrap())
}

/// [`assert_week`] on the week where traffic.rs put it, 2026-11-21 to 27.
fn assert_week_in_november(report: &Value, entries: u64) {
    assert_week(report, entries);
    let amazon = group(report, "amazonses.com");
    assert_eq!(amazon["first_seen"], "2026-11-21T08:00:00Z");
    assert_eq!(amazon["last_seen"], "2026-11-27T20:00:00Z");
}

#[test]
fn journal_files_give_the_weeks_figures_and_forged_lines_never_count() {
    let journal = week_in_journal();
    let dir = tempfile::tempdir().unwrap();
    let files = journal.files();
    let mut args: Vec<&str> = Vec::new();
    for f in &files {
        args.push("--journal-file");
        args.push(f.to_str().unwrap());
    }
    let report = report_json(&args, dir.path());
    assert_week_in_november(&report, 431);
    assert_eq!(report["totals"]["postgrey_lines"], 411);
    assert_eq!(report["totals"]["untrusted_skipped"], 20);
    assert!(
        !report.to_string().contains("forged.example"),
        "a forged line was counted"
    );

    // The same directory read with -D, and --trust-any makes the forgeries count.
    let dir_arg = journal.dir().to_str().unwrap().to_owned();
    let trusting = report_json(&["--journal-dir", &dir_arg, "--trust-any"], dir.path());
    assert_eq!(trusting["totals"]["untrusted_skipped"], 0);
    assert_eq!(group(&trusting, "forged.example")["new"], 20);
}

fn write_week_text(dir: &Path, lines: &[Line], gz: bool) -> PathBuf {
    let text = traffic::syslog_text(lines);
    if gz {
        let path = dir.join("mail.log.1.gz");
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
        path
    } else {
        let path = dir.join("mail.log");
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[test]
fn text_logs_plain_and_gz_give_the_same_figures() {
    let dir = tempfile::tempdir().unwrap();
    let week = traffic::week();
    // First half gzipped (as logrotate leaves it), second half plain.
    let half = week.len() / 2;
    let gz_dir = dir.path().join("old");
    std::fs::create_dir(&gz_dir).unwrap();
    let gz = write_week_text(&gz_dir, &week[..half], true);
    let plain = write_week_text(dir.path(), &week[half..], false);
    let report = report_json(
        &[
            "--year",
            "2026",
            "--file",
            gz.to_str().unwrap(),
            "--file",
            plain.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_week_in_november(&report, 411);
    assert_eq!(report["totals"]["untrusted_skipped"], 0);
}

#[test]
fn since_and_until_cut_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_week_text(dir.path(), &traffic::week(), false);
    // Only 2026-11-23 (day 2): amazonses has 12 new that day.
    let report = report_json(
        &[
            "--year",
            "2026",
            "--file",
            path.to_str().unwrap(),
            "--since",
            "2026-11-23",
            "--until",
            "2026-11-24",
        ],
        dir.path(),
    );
    assert_eq!(group(&report, "amazonses.com")["new"], 12);
    assert_eq!(report["since"], "2026-11-23T00:00:00Z");
    assert_eq!(report["until"], "2026-11-24T00:00:00Z");
}

#[test]
fn counts_match_the_json_new_figures_sorted_descending() {
    let journal = week_in_journal();
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = journal.dir().to_str().unwrap().to_owned();
    let report = report_json(&["--journal-dir", &dir_arg], dir.path());
    // With --all: every group and unresolved block that was greylisted, none that only passed.
    let mut expected: Vec<(i64, String, String)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["unresolved"].as_array().unwrap())
        .filter(|g| g["new"].as_i64().unwrap() > 0)
        .map(|g| {
            let verdict = g["verdict"].as_str().unwrap_or("-");
            let name = g["domain"].as_str().or(g["network"].as_str()).unwrap();
            (
                g["new"].as_i64().unwrap(),
                name.to_owned(),
                format!("{} {verdict}", g["status"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(expected.len(), 14);
    expected.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let expected_text: String = expected
        .iter()
        .map(|(n, d, advice)| format!("{n:>7} {d} {advice}\n"))
        .collect();
    let output = advisor(
        &[
            "report",
            "--journal-dir",
            &dir_arg,
            "--format",
            "counts",
            "--all",
        ],
        dir.path(),
    )
    .output()
    .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text, expected_text);
    assert!(
        text.starts_with(concat!(
            "     84 amazonses.com candidate whitelist\n",
            "     42 bulk.co.uk ignored -\n",
            "     42 outlook.com candidate whitelist\n",
            "     35 example-isp.net candidate spam-like\n",
        )),
        "{text}"
    );
}

#[test]
fn whitelist_prints_ready_to_paste_lines() {
    let journal = week_in_journal();
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = journal.dir().to_str().unwrap();
    let output = advisor(&["whitelist", "--journal-dir", journal_dir], dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines,
        [
            "smtp-out.eu-west-1.amazonses.com",
            "outbound.protection.outlook.com"
        ]
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("# amazonses.com: multi-server sender"))
            .count(),
        1,
        "{text}"
    );

    let regex = advisor(
        &["whitelist", "--regex", "--journal-dir", journal_dir],
        dir.path(),
    )
    .output()
    .unwrap();
    let text = String::from_utf8(regex.stdout).unwrap();
    assert!(
        text.contains("\n/(^|\\.)outbound\\.protection\\.outlook\\.com$/\n"),
        "{text}"
    );
}

#[test]
fn bad_time_is_a_usage_error_naming_the_value() {
    let output = bin()
        .args(["report", "--file", "/dev/null", "--since", "next blursday"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("next blursday"), "{stderr}");
}

#[test]
fn closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_week_text(dir.path(), &traffic::week(), false);
    let mut child = std::process::Command::new(common::bin_path())
        .args(["report", "--all", "--year", "2026", "--file"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn journalctl_short_output_piped_to_stdin_gives_the_weeks_figures() {
    let journal = week_in_journal();
    let dir = tempfile::tempdir().unwrap();
    let short = common::run_ok(
        std::process::Command::new("journalctl")
            .env("TZ", "UTC")
            .args(["--no-pager", "-o", "short", "-D"])
            .arg(journal.dir())
            .arg("_SYSTEMD_UNIT=postgrey.service"),
    )
    .stdout;
    let output = advisor(
        &[
            "report", "--year", "2026", "--file", "-", "--format", "json",
        ],
        dir.path(),
    )
    .write_stdin(short)
    .output()
    .unwrap();
    assert_week_in_november(&json_of(&output), 411);
}

/// Colour only on a terminal (a pseudo-terminal from script(1) here), never with NO_COLOR.
#[test]
fn table_colours_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_week_text(dir.path(), &traffic::week(), false);
    let (whitelist, ignore) = postmaster_files(dir.path());
    let command = format!(
        "{} report --year 2026 --file {} --whitelist-clients {} --ignore-file {}",
        common::bin_path().display(),
        path.display(),
        whitelist.display(),
        ignore.display()
    );
    let on_tty = |no_color: Option<&str>| {
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env("TZ", "UTC")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            script.env("NO_COLOR", v);
        }
        String::from_utf8(common::run_ok(&mut script).stdout).unwrap()
    };
    let coloured = on_tty(None);
    assert!(
        coloured.contains("\x1b["),
        "no colour on a terminal: {coloured}"
    );
    assert!(coloured.contains("amazonses.com"));
    let plain = on_tty(Some("1"));
    assert!(!plain.contains("\x1b["), "colour despite NO_COLOR: {plain}");
    let piped = bin()
        .env("TZ", "UTC")
        .args(["report", "--year", "2026", "--file"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stdout).contains('\x1b'));
}

/// Rotated logs across New Year: a traditional-stamp file written on 2 January (its mtime) holds
/// December and January lines; an rsyslog high-precision file carries its own year.
#[test]
fn text_logs_across_new_year_in_both_stamp_styles() {
    let dir = tempfile::tempdir().unwrap();
    let line = |name: &str, ip: &str| {
        format!(
            "action=greylist, reason=new, client_name={name}, client_address={ip}, sender=a@x.example, recipient=bob@example.org"
        )
    };
    let traditional = dir.path().join("mail.log.1");
    std::fs::write(
        &traditional,
        format!(
            "Dec 31 23:59:58 mx1 postgrey[7]: {}\nJan  1 00:00:02 mx1 postgrey[7]: {}\nJan  1 00:00:03 mx1 postfix/smtpd[8]: disconnect\n",
            line("a.old.example.com", "192.0.2.1"),
            line("b.old.example.com", "192.0.2.2")
        ),
    )
    .unwrap();
    common::run_ok(
        std::process::Command::new("touch")
            .env("TZ", "UTC")
            .args(["-d", "2027-01-02 06:25:00"])
            .arg(&traditional),
    );
    let precise = dir.path().join("mail.log");
    std::fs::write(
        &precise,
        format!(
            "2027-01-01T00:30:00.123456+00:00 mx1 postgrey[7]: {}\n2027-01-01T01:30:00+01:00 mx1 postgrey[7]: {}\n",
            line("c.new.example.net", "198.51.100.3"),
            line("d.new.example.net", "198.51.100.4")
        ),
    )
    .unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let output = bin()
        .env("TZ", "UTC")
        .args(["report", "--format", "json", "--file"])
        .arg(&traditional)
        .arg("--file")
        .arg(&precise)
        .arg("--whitelist-clients")
        .arg(&empty)
        .output()
        .unwrap();
    let report = json_of(&output);
    assert_eq!(report["totals"]["entries"], 4);
    let old = group(&report, "example.com");
    assert_eq!(old["new"], 2);
    assert_eq!(old["first_seen"], "2026-12-31T23:59:58Z");
    assert_eq!(old["last_seen"], "2027-01-01T00:00:02Z");
    let new = group(&report, "example.net");
    assert_eq!(new["new"], 2);
    // 01:30 at +01:00 is 00:30 UTC, a fraction of a second before the other line.
    assert_eq!(new["first_seen"], "2027-01-01T00:30:00Z");
    assert_eq!(new["last_seen"], "2027-01-01T00:30:00.123456Z");
}

/// The journal captured from four real postgrey 1.37 daemons (Debian's unit, two test units,
/// and a `--daemonize` one logging through syslog(3) as user postgrey, uid 104 there).
/// Trusting only uid 0 and `postgrey.service`, the uid-104 lines of the other units and of
/// the syslog daemon are skipped; trusting 104 too counts every line.
#[test]
fn the_real_captured_journal_counts_what_journald_vouches_for() {
    let journal = JournalFiles::new();
    journal.add_export(
        "real",
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/journal/real-postgrey-journal.export"
        ))
        .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let report = |trust: &[&str]| {
        let output = bin()
            .args([
                "report",
                "--format",
                "json",
                "--min-count",
                "1",
                "--journal-dir",
            ])
            .arg(journal.dir())
            .arg("--whitelist-clients")
            .arg(&empty)
            .arg("--ignore-file")
            .arg(&empty)
            .args(trust)
            .output()
            .unwrap();
        json_of(&output)
    };
    let root_only = report(&["--trust-uid", "0"]);
    assert_eq!(
        root_only["totals"],
        // 11 passes after greylisting, whose delays (summed independently of the binary
        // from the export, over postgrey.service's and root's entries) are 361 s.
        serde_json::json!({"entries": 137, "postgrey_lines": 84, "decisions": 59,
                           "greylisted": 30, "untrusted_skipped": 53, "malformed": 0,
                           "passed_after_delay": 11, "delay_total_s": 361})
    );
    let net = group(&root_only, "example.net");
    assert_eq!(
        (&net["new"], &net["early_retry"]),
        (&Value::from(6), &Value::from(1))
    );
    assert_eq!(
        (&net["passed_after_delay"], &net["median_delay_s"]),
        (&Value::from(1), &Value::from(6))
    );
    assert_eq!(group(&root_only, "example-isp.net")["verdict"], "spam-like");
    let unresolved: Vec<(&str, u64)> = root_only["unresolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["network"].as_str().unwrap(), u["new"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        unresolved,
        [
            ("192.0.2.0/24", 3),
            ("198.51.100.0/24", 2),
            ("203.0.113.0/24", 0)
        ]
    );

    let everyone = report(&["--trust-uid", "0", "--trust-uid", "104"]);
    assert_eq!(everyone["totals"]["postgrey_lines"], 137);
    assert_eq!(everyone["totals"]["untrusted_skipped"], 0);
    // All 53 `action=greylist` lines of the capture (real-messages.txt has the same).
    assert_eq!(everyone["totals"]["greylisted"], 53);
    assert_eq!(everyone["totals"]["malformed"], 0);
}

/// A postgrey line whose stamp cannot be read is counted nowhere else, so the report says so.
#[test]
fn unreadable_stamps_are_reported_not_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        "Nov 21 10:00:00 mx1 postgrey[7]: action=greylist, reason=new, client_name=a.example.com, client_address=192.0.2.1, recipient=bob@example.org\n\
         Nov 99 25:61:00 mx1 postgrey[7]: action=greylist, reason=new, client_name=b.example.com, client_address=192.0.2.2, recipient=bob@example.org\n",
    )
    .unwrap();
    let report = report_json(
        &["--year", "2026", "--file", log.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(report["totals"]["entries"], 1);
    assert_eq!(
        report["notes"],
        serde_json::json!([
            "1 postgrey lines had a time stamp that could not be read and were skipped"
        ])
    );
}

/// A scan that takes longer than a second shows progress on a terminal's stderr, and none when
/// stderr is not a terminal. The input arrives through a FIFO with a pause in the middle, so the
/// scan certainly takes that long (no assertion about speed).
#[test]
fn progress_shows_on_a_terminal_only_when_a_scan_is_slow() {
    let dir = tempfile::tempdir().unwrap();
    let line = "Nov 21 10:00:00 mx1 postgrey[7]: action=greylist, reason=new, client_name=a.example.com, client_address=192.0.2.1, recipient=bob@example.org\n";
    let half = line.repeat(10_000);
    let fifo = dir.path().join("log.fifo");
    let feed = |fifo: PathBuf, half: String| {
        std::thread::spawn(move || {
            let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            writer.write_all(half.as_bytes()).unwrap();
            writer.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1500));
            writer.write_all(half.as_bytes()).unwrap();
        })
    };
    common::run_ok(std::process::Command::new("mkfifo").arg(&fifo));
    let command = format!(
        "{} report --year 2026 --format counts --whitelist-clients /dev/null --file {}",
        common::bin_path().display(),
        fifo.display()
    );
    let writer = feed(fifo.clone(), half.clone());
    let on_tty = common::run_ok(
        std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("TZ", "UTC"),
    );
    writer.join().unwrap();
    let screen = String::from_utf8_lossy(&on_tty.stdout);
    assert!(
        screen.contains("postgrey entries read"),
        "no progress on a terminal: {screen}"
    );
    assert!(
        screen.contains("  20000 example.com candidate review"),
        "{screen}"
    );

    let writer = feed(fifo.clone(), half);
    let piped = bin()
        .env("TZ", "UTC")
        .args([
            "report",
            "--year",
            "2026",
            "--format",
            "counts",
            "--whitelist-clients",
            "/dev/null",
            "--file",
        ])
        .arg(&fifo)
        .output()
        .unwrap();
    writer.join().unwrap();
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stderr), "");
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout),
        "  20000 example.com candidate review\n"
    );
}
