//! `report` and `whitelist` on a week of traffic with known answers (tests/common/traffic.rs),
//! read from real journal files (built by systemd-journal-remote) and from text logs.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::traffic::{self, Line};
use common::{ExportEntry, JournalFiles, bin};
use serde_json::Value;

/// The postmaster's files: the CIDR entry that whitelists Mailchimp, and an ignored domain.
fn postmaster_files(dir: &Path) -> (PathBuf, PathBuf) {
    let whitelist = dir.join("whitelist_clients");
    std::fs::write(
        &whitelist,
        "# test whitelist\n205.201.128.0/20\nmx.awl.example\n",
    )
    .unwrap();
    let ignore = dir.join("ignore");
    std::fs::write(&ignore, "# decided: not worth it\nbulk.co.uk\n").unwrap();
    (whitelist, ignore)
}

fn rfc3339(at_s: i64) -> String {
    jiff::Timestamp::from_second(at_s).unwrap().to_string()
}

/// The week as journal entries, plus 20 forged lines from an ordinary user (uid 1000) that
/// claim a flood from a sender that must never appear.
fn week_in_journal() -> JournalFiles {
    let mut entries: Vec<ExportEntry> = traffic::week()
        .iter()
        .map(|l| ExportEntry::postgrey(&rfc3339(l.at_s), &l.message))
        .collect();
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

fn report_json(source: &[&str], dir: &Path) -> Value {
    let (whitelist, ignore) = postmaster_files(dir);
    let output = bin()
        .env("TZ", "UTC")
        .arg("report")
        .args(source)
        .arg("--whitelist-clients")
        .arg(&whitelist)
        .arg("--ignore-file")
        .arg(&ignore)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn group<'a>(report: &'a Value, domain: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["domain"] == domain)
        .unwrap_or_else(|| panic!("no group {domain} in {report:#}"))
}

/// The figures every source must produce for the week (see the table in traffic.rs).
fn assert_week(report: &Value) {
    let amazon = group(report, "amazonses.com");
    assert_eq!(amazon["new"], 84);
    assert_eq!(amazon["early_retry"], 0);
    assert_eq!(amazon["retried_from_other_net"], 56);
    assert_eq!(amazon["passed_after_delay"], 28);
    assert_eq!(amazon["median_delay_s"], 10800);
    assert_eq!(amazon["max_delay_s"], 10800);
    assert_eq!(amazon["distinct_ips"], 12);
    assert_eq!(amazon["distinct_nets"], 3);
    assert_eq!(amazon["distinct_hosts"], 12);
    assert_eq!(amazon["first_seen"], "2026-11-21T08:00:00Z");
    assert_eq!(amazon["last_seen"], "2026-11-27T20:00:00Z");
    assert_eq!(amazon["status"], "candidate");
    assert_eq!(amazon["verdict"], "whitelist");
    assert_eq!(amazon["suggestion"], "smtp-out.eu-west-1.amazonses.com");

    let outlook = group(report, "outlook.com");
    assert_eq!(
        (
            &outlook["new"],
            &outlook["retried_from_other_net"],
            &outlook["passed_after_delay"]
        ),
        (&Value::from(42), &Value::from(21), &Value::from(21))
    );
    assert_eq!(outlook["median_delay_s"], 7200);
    assert_eq!(
        (&outlook["distinct_ips"], &outlook["distinct_nets"]),
        (&Value::from(6), &Value::from(2))
    );
    assert_eq!(outlook["verdict"], "whitelist");
    assert_eq!(outlook["suggestion"], "outbound.protection.outlook.com");

    let isp = group(report, "example-isp.net");
    assert_eq!(
        (&isp["new"], &isp["distinct_ips"], &isp["distinct_hosts"]),
        (&Value::from(35), &Value::from(35), &Value::from(35))
    );
    assert_eq!(isp["retried_from_other_net"], 0);
    assert_eq!(isp["passed_after_delay"], 0);
    assert_eq!(isp["verdict"], "spam-like");
    assert_eq!(isp["suggestion"], Value::Null);

    let shop = group(report, "smallshop.de");
    assert_eq!(
        (&shop["new"], &shop["passed_after_delay"]),
        (&Value::from(21), &Value::from(21))
    );
    assert_eq!(shop["median_delay_s"], 360);
    assert_eq!(
        (&shop["distinct_ips"], &shop["distinct_nets"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(shop["verdict"], "review");
    assert_eq!(shop["suggestion"], Value::Null);

    let mailchimp = group(report, "mcsv.net");
    assert_eq!(mailchimp["new"], 20);
    assert_eq!(mailchimp["distinct_ips"], 40);
    assert_eq!(mailchimp["status"], "whitelisted");
    assert_eq!(mailchimp["verdict"], Value::Null);

    let bulk = group(report, "bulk.co.uk");
    assert_eq!(
        (&bulk["new"], &bulk["retried_from_other_net"]),
        (&Value::from(42), &Value::from(21))
    );
    assert_eq!(bulk["status"], "ignored");
    assert_eq!(bulk["verdict"], Value::Null);

    let ec2 = group(report, "ec2-3-80-1-4.compute-1.amazonaws.com");
    assert_eq!(ec2["new"], 1);
    assert_eq!(ec2["verdict"], Value::Null);

    let unresolved = report["unresolved"].as_array().unwrap();
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0]["network"], "192.0.2.0/24");
    assert_eq!(unresolved[0]["new"], 14);
    assert_eq!(unresolved[0]["distinct_ips"], 14);

    // 6 organisations, 7 EC2 hosts, the AWL and recipient-whitelist clients.
    assert_eq!(report["groups"].as_array().unwrap().len(), 15);
    assert_eq!(report["totals"]["greylisted"], 265);
    assert_eq!(report["totals"]["malformed"], 7);
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
    assert_week(&report);
    assert_eq!(report["totals"]["entries"], 431);
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
    assert_week(&report);
    assert_eq!(report["totals"]["entries"], 411);
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
    let mut expected: Vec<(i64, String, String)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let verdict = g["verdict"].as_str().unwrap_or("-");
            (
                g["new"].as_i64().unwrap(),
                g["domain"].as_str().unwrap().to_owned(),
                format!("{} {verdict}", g["status"].as_str().unwrap()),
            )
        })
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let expected_text: String = expected
        .iter()
        .map(|(n, d, advice)| format!("{n:>7} {d} {advice}\n"))
        .collect();
    let (whitelist, ignore) = postmaster_files(dir.path());
    let output = bin()
        .args(["report", "--journal-dir", &dir_arg, "--format", "counts"])
        .arg("--whitelist-clients")
        .arg(&whitelist)
        .arg("--ignore-file")
        .arg(&ignore)
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
    let (whitelist, ignore) = postmaster_files(dir.path());
    let output = bin()
        .args([
            "whitelist",
            "--journal-dir",
            journal.dir().to_str().unwrap(),
        ])
        .arg("--whitelist-clients")
        .arg(&whitelist)
        .arg("--ignore-file")
        .arg(&ignore)
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

    let regex = bin()
        .args([
            "whitelist",
            "--regex",
            "--journal-dir",
            journal.dir().to_str().unwrap(),
        ])
        .arg("--whitelist-clients")
        .arg(&whitelist)
        .arg("--ignore-file")
        .arg(&ignore)
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
    let (whitelist, ignore) = postmaster_files(dir.path());
    let output = bin()
        .env("TZ", "UTC")
        .args([
            "report", "--year", "2026", "--file", "-", "--format", "json",
        ])
        .arg("--whitelist-clients")
        .arg(&whitelist)
        .arg("--ignore-file")
        .arg(&ignore)
        .write_stdin(short)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_week(&report);
    assert_eq!(report["totals"]["entries"], 411);
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
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
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
