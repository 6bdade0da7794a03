//! `run`, the timer job, end to end with the real binary: reading only what is new after the
//! saved cursor (real journald namespace, real postgrey), resuming by time when the cursor's file
//! was vacuumed, surviving SIGKILL at any moment, the run lock, corrupt state files, the digest
//! mail through a real Postfix, structured entries in the journal, and Prometheus metrics checked
//! by `promtool`.
//!
//! Most tests use the week of tests/common/traffic.rs moved by whole days into the recent past
//! ([`week_from`]), so that every documented figure holds and the run's rolling window
//! (`--window 30d`) covers it whenever the suite runs. The week lies 14 days back: older than the
//! five days a (sender, recipient) pair is remembered, so the state a run leaves does not depend on
//! the time of day the test runs at.

mod common;

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::fixtures::{
    DAY_S, assert_week, export_entries, group, postmaster_files, rfc3339, week_from_day,
};
use common::postgrey::sleep_past_delay;
use common::traffic::Line;
use common::{
    ExportEntry, JournalEntry, JournalFiles, Journald, Postfix, Postgrey, bin, bin_in_journald,
    bin_path, wait_for,
};
use serde_json::Value;

/// The catalog id of the report entries (src/render/journal.rs, README).
const MESSAGE_ID: &str = "81e1a72418af45329193ed2abb060aad";
/// Test knobs of the binary (src/state.rs, src/app/run.rs).
const PAUSE_BEFORE_SAVE: &str = "POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_SAVE_MS";
const PAUSE_BEFORE_RENAME: &str = "POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_RENAME_MS";
const GATE_BEFORE_SAVE: &str = "POSTGREY_ADVISOR_TEST_GATE_BEFORE_SAVE";
/// What `run` says when the saved cursor's entry is gone (src/app/run.rs).
const CURSOR_LOST_NOTE: &str = "the saved journal cursor no longer exists (journal rotated or \
     vacuumed); reading resumed from the time of the last entry counted, and entries logged in \
     between may have been lost";

/// The week of traffic.rs moved by whole days so that its first day is `days_ago` days before
/// today (UTC): every figure the table in traffic.rs gives stays the same.
fn week_from(days_ago: i64) -> Vec<Line> {
    let today = jiff::Timestamp::now().as_second().div_euclid(DAY_S);
    week_from_day(today - days_ago)
}

/// The postmaster's side of a test: whitelist (the CIDR that whitelists Mailchimp), ignore file
/// (bulk.co.uk), and the state file in a directory of its own (summary.json goes beside it).
struct Postmaster {
    dir: tempfile::TempDir,
    whitelist: PathBuf,
    ignore: PathBuf,
}

impl Postmaster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (whitelist, ignore) = postmaster_files(dir.path());
        fs::create_dir(dir.path().join("lib")).unwrap();
        Postmaster {
            dir,
            whitelist,
            ignore,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("lib")
    }

    fn state(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    fn lock_file(&self) -> PathBuf {
        self.state_dir().join("state.json.lock")
    }

    fn summary(&self) -> PathBuf {
        self.state_dir().join("summary.json")
    }

    /// `run` over `journal_dir` with this postmaster's files, a 30-day window, reading everything
    /// on the first run, JSON on stdout.
    fn run_args(&self, journal_dir: &Path) -> Vec<OsString> {
        self.run_args_as(journal_dir, "json")
    }

    /// [`Postmaster::run_args`] with another `--format`.
    fn run_args_as(&self, journal_dir: &Path, format: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["run", "--journal-dir"].map(OsString::from).to_vec();
        args.push(journal_dir.into());
        args.push("--state".into());
        args.push(self.state().into());
        args.push("--whitelist-clients".into());
        args.push(self.whitelist.clone().into());
        args.push("--ignore-file".into());
        args.push(self.ignore.clone().into());
        for a in [
            "--window",
            "30d",
            "--initial-since",
            "@0",
            "--format",
            format,
        ] {
            args.push(a.into());
        }
        args
    }

    /// The binary as `std::process::Command` (for spawning and killing), set up like [`bin`].
    fn command(&self, journal_dir: &Path) -> Command {
        self.command_as(journal_dir, "json")
    }

    /// [`Postmaster::command`] with another `--format`.
    fn command_as(&self, journal_dir: &Path, format: &str) -> Command {
        let mut cmd = Command::new(bin_path());
        cmd.env_remove("JOURNAL_STREAM")
            .env("TZ", "UTC")
            .args(self.run_args_as(journal_dir, format));
        cmd
    }

    /// Runs to the end and returns stdout parsed as JSON; panics with stderr on failure.
    fn run_ok(&self, journal_dir: &Path, extra: &[&str]) -> Value {
        let output = self.command(journal_dir).args(extra).output().unwrap();
        assert_success(&output);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("run printed no JSON ({e}): {}", stdout_of(&output)))
    }

    fn state_json(&self) -> Value {
        read_json(&self.state())
    }

    fn summary_json(&self) -> Value {
        read_json(&self.summary())
    }
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "run failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        stdout_of(output),
        stderr_of(output)
    );
}

fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e})", path.display()))
}

/// The analysis part of a report or summary: what must be equal however the entries were read.
fn findings(report: &Value) -> Value {
    serde_json::json!({
        "totals": report["totals"],
        "groups": report["groups"],
        "unresolved": report["unresolved"],
    })
}

/// A small deterministic generator (xorshift64*); the seed is printed so a failure can be
/// replayed with `RUN_TEST_SEED=…`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("RUN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("RUN_TEST_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Temporary files a run left behind (killed between creating and renaming one):
/// `.state.json.XXXXXX.tmp`, `.summary.json.XXXXXX.tmp`.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

/// Sum of a tally's per-day `entries` in a state file.
fn state_entries(state: &Value) -> u64 {
    state["tally"]["totals"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["entries"].as_u64().unwrap())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Real journald + real postgrey: only new entries, and a lost cursor.

const RCPT: &str = "bob@example.org";

/// Mail `i` of a multi-server sender: greylisted from two /24s of amazonses.com.
fn greylist_twice(postgrey: &Postgrey, i: u32) {
    let sender = format!("0102018c{i}@eu-west-1.amazonses.com");
    for k in 1..=2 {
        let reply = postgrey.request(
            &format!("a{i}-{k}.smtp-out.eu-west-1.amazonses.com"),
            &format!("54.240.{}.{}", 3 + k, 10 + i),
            &sender,
            RCPT,
        );
        assert!(reply.starts_with("action=DEFER_IF_PERMIT"), "{reply}");
    }
}

/// The retry of mail `i` from its first server, after the delay: passes.
fn retry_passes(postgrey: &Postgrey, i: u32) {
    let reply = postgrey.request(
        &format!("a{i}-1.smtp-out.eu-west-1.amazonses.com"),
        &format!("54.240.4.{}", 10 + i),
        &format!("0102018c{i}@eu-west-1.amazonses.com"),
        RCPT,
    );
    assert!(
        reply.starts_with(common::postgrey::PASS_AFTER_DELAY_PREFIX),
        "{reply}"
    );
}

/// A dynamic-pool host that tries once.
fn one_shot(postgrey: &Postgrey, n: u32) {
    let reply = postgrey.request(
        &format!("dynamic-203-0-113-{n}.adsl.example-isp.net"),
        &format!("203.0.113.{n}"),
        &format!("xk{n}@random-bot.example"),
        RCPT,
    );
    assert!(reply.starts_with("action=DEFER_IF_PERMIT"), "{reply}");
}

/// Waits until journald has `decisions` postgrey decision lines (`action=…`), then returns how
/// many postgrey entries (decisions and start-up lines) the namespace holds.
fn postgrey_entries_once(journald: &Journald, decisions: usize) -> u64 {
    wait_for(
        &format!("{decisions} postgrey decisions in the journal"),
        || {
            let entries = journald.entries(&["SYSLOG_IDENTIFIER=postgrey"]);
            let seen = entries
                .iter()
                .filter(|e| e.message().is_some_and(|m| m.starts_with("action=")))
                .count();
            (seen >= decisions).then_some(entries.len() as u64)
        },
    )
}

#[test]
fn a_second_run_counts_only_new_entries_and_a_vacuumed_cursor_resumes_by_time() {
    let journald = Journald::start();
    // Debian's whitelist_clients lists amazonses.com: an empty list instead.
    let lists = common::world_readable_tempdir();
    let no_whitelist = lists.path().join("whitelist_clients");
    fs::write(&no_whitelist, "").unwrap();
    let postgrey = Postgrey::builder()
        .delay(1)
        .whitelist_clients(&no_whitelist)
        .start(&journald);
    let pm = Postmaster::new();
    let journal_dir = journald.journal_dir().to_path_buf();

    // Three mails greylisted from two networks each.
    for i in 0..3 {
        greylist_twice(&postgrey, i);
    }
    let after_first = postgrey_entries_once(&journald, 6);
    pm.run_ok(&journal_dir, &[]);
    let first = pm.summary_json();
    assert_eq!(first["entries_read"], after_first);
    assert_eq!(first["cursor_lost"], false);
    assert_eq!(first["totals"]["entries"], after_first);
    assert_eq!(first["totals"]["greylisted"], 6);
    assert_eq!(group(&first, "amazonses.com")["new"], 6);
    assert_eq!(group(&first, "amazonses.com")["retried_from_other_net"], 3);
    assert_eq!(group(&first, "amazonses.com")["passed_after_delay"], 0);

    // The retries pass; two one-shot hosts appear.
    sleep_past_delay(1);
    for i in 0..3 {
        retry_passes(&postgrey, i);
    }
    one_shot(&postgrey, 1);
    one_shot(&postgrey, 2);
    let after_second = postgrey_entries_once(&journald, 11);
    pm.run_ok(&journal_dir, &[]);
    let second = pm.summary_json();
    assert_eq!(second["entries_read"], after_second - after_first);
    assert_eq!(second["cursor_lost"], false);
    assert_eq!(second["totals"]["entries"], after_second);
    assert_eq!(second["totals"]["greylisted"], 8);
    let amazon = group(&second, "amazonses.com");
    assert_eq!(
        (
            &amazon["new"],
            &amazon["retried_from_other_net"],
            &amazon["passed_after_delay"]
        ),
        (&Value::from(6), &Value::from(3), &Value::from(3))
    );
    assert_eq!(group(&second, "example-isp.net")["new"], 2);

    // The two runs together are one `report` over the whole journal.
    let report = report_over(&pm, &journal_dir);
    assert_eq!(findings(&second), findings(&report));

    // Retention removes the file that holds the cursor's entry; new traffic lands in a new file.
    journald.rotate();
    journald.vacuum_archived();
    for i in 3..5 {
        greylist_twice(&postgrey, i);
    }
    let in_new_file = postgrey_entries_once(&journald, 4);
    let output = pm.command_as(&journal_dir, "table").output().unwrap();
    assert_success(&output);
    let table = stdout_of(&output);
    // The table wraps notes to its width.
    let flowed = table.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flowed.contains(&format!("Note: {CURSOR_LOST_NOTE}")),
        "no cursor note in:\n{table}"
    );
    let third = pm.summary_json();
    assert_eq!(third["cursor_lost"], true);
    assert_eq!(third["entries_read"], in_new_file);
    assert_eq!(third["totals"]["entries"], after_second + in_new_file);
    assert_eq!(third["totals"]["greylisted"], 12);
    assert_eq!(group(&third, "amazonses.com")["new"], 10);
    assert!(
        third["notes"]
            .as_array()
            .unwrap()
            .contains(&Value::from(CURSOR_LOST_NOTE)),
        "{third:#}"
    );

    // The new cursor holds: nothing new, nothing lost, nothing counted twice.
    let fourth_stdout = pm.run_ok(&journal_dir, &[]);
    let fourth = pm.summary_json();
    assert_eq!(fourth["cursor_lost"], false);
    assert_eq!(fourth["entries_read"], 0);
    assert_eq!(findings(&fourth), findings(&third));
    assert_eq!(fourth_stdout["notes"], Value::Array(Vec::new()));
}

// ---------------------------------------------------------------------------------------------
// A journal directory gathered from several hosts.

const MACHINE_MX1: &str = "6f1c0a2e9b8d4c7fa3e5d2b1c0f9e8d7";
const MACHINE_MX2: &str = "0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5d";

/// `lines` as postgrey.service's entries on the host `hostname` with `_MACHINE_ID` `machine`,
/// as `systemd-journal-remote` stores what that host's journald sent.
fn host_entries(lines: &[Line], machine: &str, hostname: &str) -> Vec<ExportEntry> {
    export_entries(lines)
        .into_iter()
        .map(|e| e.set("_MACHINE_ID", machine).set("_HOSTNAME", hostname))
        .collect()
}

/// `report` over the whole directory with the postmaster's files, as JSON.
fn report_over(pm: &Postmaster, journal_dir: &Path) -> Value {
    let output = bin()
        .env("TZ", "UTC")
        .arg("report")
        .arg("--journal-dir")
        .arg(journal_dir)
        .arg("--whitelist-clients")
        .arg(&pm.whitelist)
        .arg("--ignore-file")
        .arg(&pm.ignore)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_success(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The realtime (µs) of the newest of `lines`.
fn newest_us(lines: &[Line]) -> i64 {
    lines.iter().map(|l| l.at_s).max().unwrap() * 1_000_000
}

/// The reviewer's case: `run` over mx1's journal; then mx2's arrives (systemd-journal-remote
/// receives hosts at different times) with entries older than mx1's newest. sd-journal
/// interleaves them by time, all before mx1's cursor: one cursor for the directory never read
/// them. A cursor per machine does, and counts nothing twice.
#[test]
fn a_host_whose_entries_arrive_later_with_older_stamps_is_counted_once() {
    let week = week_from(14);
    // The week's mail went through two MX hosts: mx2 took Amazon SES's and Outlook's (a
    // mail's greylistings and retries reach one host, so no sender's pair memory spans the
    // runs: the runs forget pairs older than five days).
    let (mx2, mx1): (Vec<Line>, Vec<Line>) = week.iter().cloned().partition(|l| {
        l.message.contains(".amazonses.com,") || l.message.contains(".outlook.com,")
    });
    assert_eq!((mx1.len(), mx2.len()), (236, 175));
    let journal = JournalFiles::new();
    let pm = Postmaster::new();

    journal.add("remote-mx1", &host_entries(&mx1, MACHINE_MX1, "mx1"));
    pm.run_ok(journal.dir(), &[]);
    let first = pm.summary_json();
    assert_eq!(first["entries_read"], 236);
    assert_eq!(first["totals"]["entries"], 236);

    // mx2's whole week arrives: every entry of it is older than mx1's newest.
    assert!(mx2.iter().all(|l| l.at_s * 1_000_000 < newest_us(&mx1)));
    journal.add("remote-mx2", &host_entries(&mx2, MACHINE_MX2, "mx2"));
    pm.run_ok(journal.dir(), &[]);
    let second = pm.summary_json();
    assert_eq!(second["entries_read"], 175);
    assert_eq!(second["cursor_lost"], false);
    assert_week(&second, 411);
    assert_eq!(
        findings(&second),
        findings(&report_over(&pm, journal.dir()))
    );

    let state = pm.state_json();
    let machines = state["machines"].as_object().unwrap();
    let keys: Vec<&str> = machines.keys().map(String::as_str).collect();
    // "": the pass over entries without a machine id (none here) keeps a position too.
    assert_eq!(keys, vec!["", MACHINE_MX2, MACHINE_MX1]);
    assert_eq!(machines[MACHINE_MX1]["last_entry_us"], newest_us(&mx1));
    assert_eq!(machines[MACHINE_MX2]["last_entry_us"], newest_us(&mx2));
    assert_eq!(state["last_entry_us"], newest_us(&week));

    // Later mx1 goes on in a new file, and a third host, never seen, delivers entries older
    // than anything read: none of its entries was counted, so it is read back to --keep (8w).
    const MACHINE_MX3: &str = "9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4";
    let mx1_later: Vec<Line> = week_from(7).into_iter().take(3).collect();
    let mx3: Vec<Line> = week_from(21).into_iter().take(3).collect();
    journal.add(
        "remote-mx1-later",
        &host_entries(&mx1_later, MACHINE_MX1, "mx1"),
    );
    journal.add("remote-mx3", &host_entries(&mx3, MACHINE_MX3, "mx3"));
    pm.run_ok(journal.dir(), &[]);
    let third = pm.summary_json();
    assert_eq!(third["entries_read"], 6);
    assert_eq!(third["totals"]["entries"], 417);
    assert_eq!(findings(&third), findings(&report_over(&pm, journal.dir())));
    let state = pm.state_json();
    assert_eq!(
        state["machines"][MACHINE_MX1]["last_entry_us"],
        newest_us(&mx1_later)
    );
    assert_eq!(
        state["machines"][MACHINE_MX3]["last_entry_us"],
        newest_us(&mx3)
    );

    assert_eq!(
        third["notes"],
        serde_json::json!([format!(
            "journal entries of a new host (machine id {MACHINE_MX3}) were read back to --keep 8w"
        )])
    );

    // Nothing new: nothing read, nothing lost, nothing counted twice.
    pm.run_ok(journal.dir(), &[]);
    let fourth = pm.summary_json();
    assert_eq!(fourth["entries_read"], 0);
    assert_eq!(fourth["cursor_lost"], false);
    assert_eq!(fourth["notes"], serde_json::json!([]));
    assert_eq!(findings(&fourth), findings(&third));

    // mx2 is decommissioned and its journal files removed: nothing is counted twice or lost
    // from the state, and the report says the host's entries since its last one are missing.
    std::fs::remove_file(journal.dir().join("remote-mx2.journal")).unwrap();
    pm.run_ok(journal.dir(), &[]);
    let fifth = pm.summary_json();
    assert_eq!(fifth["entries_read"], 0);
    assert_eq!(fifth["cursor_lost"], false);
    let mx2_last = jiff::Timestamp::from_microsecond(newest_us(&mx2)).unwrap();
    assert_eq!(
        fifth["notes"],
        serde_json::json!([format!(
            "no journal files of host (machine id {MACHINE_MX2}) are left; its entries since {mx2_last} are missing"
        )])
    );
    assert_eq!(findings(&fifth), findings(&third));
}

// ---------------------------------------------------------------------------------------------
// Crash safety.

/// Whatever a kill left must parse; the state holds either no run's counts or the counts of
/// every entry some earlier complete read saw (`complete_reads`, cumulative entry counts).
fn assert_intact_after_kill(pm: &Postmaster, complete_reads: &[u64]) {
    if pm.state().exists() {
        let state = pm.state_json();
        assert_eq!(state["schema"], 2);
        let entries = state_entries(&state);
        assert!(
            complete_reads.contains(&entries),
            "state counts {entries} entries, not the end of any complete read {complete_reads:?}"
        );
    }
    if pm.summary().exists() {
        let summary = pm.summary_json();
        assert!(summary["totals"]["entries"].is_u64(), "{summary:#}");
    }
}

#[test]
fn sigkill_at_twenty_random_moments_loses_and_doubles_nothing() {
    let week = week_from(14);
    let first_day = week[0].at_s.div_euclid(DAY_S);
    // The week in four files written one after the other, split at midnight UTC: days 0–1,
    // 2–3, 4–5 and 6 (no mail of the week spans midnight).
    let parts: Vec<Vec<Line>> = [0..2, 2..4, 4..6, 6..7]
        .into_iter()
        .map(|days| {
            week.iter()
                .filter(|l| days.contains(&(l.at_s.div_euclid(DAY_S) - first_day)))
                .cloned()
                .collect()
        })
        .collect();
    assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), week.len());

    // A clean run over all of it in one file.
    let clean_journal = JournalFiles::with_entries(&export_entries(&week));
    let clean = Postmaster::new();
    clean.run_ok(clean_journal.dir(), &[]);
    let clean_state = clean.state_json();
    let clean_summary = clean.summary_json();
    assert_week(&clean_summary, 411);
    assert_eq!(clean_summary["entries_read"], 411);

    let journal = JournalFiles::new();
    let pm = Postmaster::new();
    let mut rng = Rng::seeded();
    let mut complete_reads = vec![0u64];
    let mut kills = 0;
    let mut completed_unkilled = 0;
    let mut killed_after_save = 0;
    let mut saved: Option<u64> = None;
    for (i, part) in parts.iter().enumerate() {
        journal.add(&format!("part{i}"), &export_entries(part));
        complete_reads.push(complete_reads.last().unwrap() + part.len() as u64);
        let mut kills_here = 0;
        for _attempt in 0..50 {
            if kills_here == 5 {
                break;
            }
            let before_save = rng.below(250);
            let before_rename = rng.below(120);
            // The run sleeps before_save, then before_rename for the state and again for the
            // summary: any moment in there, or in the milliseconds of reading before.
            let kill_after = rng.below(before_save + 2 * before_rename + 40);
            let mut child = pm
                .command(journal.dir())
                .env(PAUSE_BEFORE_SAVE, before_save.to_string())
                .env(PAUSE_BEFORE_RENAME, before_rename.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(kill_after));
            match child.try_wait().unwrap() {
                Some(status) => {
                    assert!(status.success(), "an unkilled run failed: {status}");
                    completed_unkilled += 1;
                }
                None => {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills_here += 1;
                    kills += 1;
                    let saved_before = saved;
                    saved = pm.state().exists().then(|| state_entries(&pm.state_json()));
                    if saved != saved_before {
                        killed_after_save += 1;
                    }
                }
            }
            assert_intact_after_kill(&pm, &complete_reads);
        }
        assert_eq!(kills_here, 5, "could not kill a run 5 times in 50 tries");
    }
    assert_eq!(kills, 20);
    eprintln!(
        "{kills} runs killed ({killed_after_save} after saving new counts), \
         {completed_unkilled} finished before their kill"
    );

    eprintln!(
        "{} temporary files left by killed runs",
        temporaries(&pm.state_dir()).len()
    );

    // Run to the end: the same counts as the clean run, to the last field of the state.
    pm.run_ok(journal.dir(), &[]);
    let state = pm.state_json();
    assert_eq!(state["tally"], clean_state["tally"]);
    assert_eq!(state["last_entry_us"], clean_state["last_entry_us"]);
    // The cursors name entries of other files; the machines and times are the same.
    let last_entries = |state: &Value| -> Vec<(String, Value)> {
        let machines = state["machines"].as_object().unwrap();
        machines
            .iter()
            .map(|(machine, position)| (machine.clone(), position["last_entry_us"].clone()))
            .collect()
    };
    assert_eq!(last_entries(&state), last_entries(&clean_state));
    let summary = pm.summary_json();
    assert_eq!(findings(&summary), findings(&clean_summary));
    assert_week(&summary, 411);
    // Temporary files of killed runs are cleaned up by the next run (under the lock).
    assert_eq!(temporaries(&pm.state_dir()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// The run lock and broken state files.

/// True while some process holds the exclusive lock on `path`.
fn lock_is_held(path: &Path) -> bool {
    let Ok(file) = File::options().write(true).open(path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => false,
        Err(fs::TryLockError::WouldBlock) => true,
        Err(fs::TryLockError::Error(e)) => panic!("try_lock {}: {e}", path.display()),
    }
}

/// True when process `pid` has `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

fn wait_success(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    assert_success(&output);
    output
}

#[test]
fn two_runs_at_once_take_turns_and_a_busy_lock_exits_75() {
    let journal = JournalFiles::with_entries(&export_entries(&week_from(14)));
    let pm = Postmaster::new();
    let go = pm.dir.path().join("go");

    // The first run holds the lock at the gate before its save until the test lets it go on.
    let first = pm
        .command(journal.dir())
        .env(GATE_BEFORE_SAVE, &go)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first run to hold the lock", || {
        lock_is_held(&pm.lock_file()).then_some(())
    });

    let impatient = pm
        .command(journal.dir())
        .args(["--lock-timeout", "1"])
        .output()
        .unwrap();
    assert_eq!(
        impatient.status.code(),
        Some(75),
        "{}",
        stderr_of(&impatient)
    );
    assert_eq!(
        stderr_of(&impatient),
        format!(
            "postgrey-advisor: another postgrey-advisor run holds {} (waited 1 s); try again later\n",
            pm.lock_file().display()
        )
    );
    assert_eq!(stdout_of(&impatient), "");
    assert!(!pm.state().exists() && !pm.summary().exists());

    // A patient run opens the lock file and waits; only then does the first go on.
    let patient = pm
        .command(journal.dir())
        .args(["--lock-timeout", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let patient_pid = patient.id();
    wait_for("the second run to wait for the lock", || {
        has_open(patient_pid, &pm.lock_file()).then_some(())
    });
    assert!(
        !pm.state().exists(),
        "a run saved while another held the lock"
    );
    File::create(&go).unwrap();
    let first = wait_success(first);
    let patient = wait_success(patient);

    // The first read everything; the second, after it, nothing new: the week counted once.
    let first_report: Value = serde_json::from_slice(&first.stdout).unwrap();
    let patient_report: Value = serde_json::from_slice(&patient.stdout).unwrap();
    assert_week(&first_report, 411);
    assert_eq!(findings(&first_report), findings(&patient_report));
    let summary = pm.summary_json();
    assert_eq!(summary["entries_read"], 0);
    assert_week(&summary, 411);
    assert_eq!(state_entries(&pm.state_json()), 411);
}

#[test]
fn a_corrupt_state_file_is_named_and_left_alone_until_reset() {
    let journal = JournalFiles::with_entries(&export_entries(&week_from(14)));
    let pm = Postmaster::new();
    pm.run_ok(journal.dir(), &[]);
    let good = fs::read(pm.state()).unwrap();
    let good_state = pm.state_json();
    let summary_before = fs::read(pm.summary()).unwrap();

    let truncated = good[..good.len() / 2].to_vec();
    let mut wrong_schema = good_state.clone();
    wrong_schema["schema"] = Value::from(99);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "truncated",
            truncated,
            "is corrupt (left untouched; --reset-state starts over): ",
        ),
        (
            "empty",
            Vec::new(),
            "is corrupt (left untouched; --reset-state starts over): ",
        ),
        (
            "garbage",
            b"\x00\xffnot json at all\n".to_vec(),
            "is corrupt (left untouched; --reset-state starts over): ",
        ),
        (
            "schema",
            serde_json::to_vec(&wrong_schema).unwrap(),
            "has schema 99, this version reads 2 (--reset-state starts over)",
        ),
    ];
    for (what, bytes, problem) in cases {
        fs::write(pm.state(), &bytes).unwrap();
        let output = pm.command(journal.dir()).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {}",
            stderr_of(&output)
        );
        let expected = format!(
            "postgrey-advisor: state file {} {problem}",
            pm.state().display()
        );
        assert!(
            stderr_of(&output).starts_with(&expected),
            "{what}: {}",
            stderr_of(&output)
        );
        assert_eq!(stdout_of(&output), "", "{what}");
        assert_eq!(
            fs::read(pm.state()).unwrap(),
            bytes,
            "{what}: state changed"
        );
        assert_eq!(
            fs::read(pm.summary()).unwrap(),
            summary_before,
            "{what}: summary changed"
        );
    }

    // --reset-state starts over: the week read once more from the beginning, counted once.
    pm.run_ok(journal.dir(), &["--reset-state"]);
    let state = pm.state_json();
    assert_eq!(state["tally"], good_state["tally"]);
    let summary = pm.summary_json();
    assert_eq!(summary["entries_read"], 411);
    assert_week(&summary, 411);
}

// ---------------------------------------------------------------------------------------------
// Structured entries in the journal.

fn one_with<'a>(entries: &'a [JournalEntry], field: &str, value: &str) -> &'a JournalEntry {
    let found: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| e.get(field).as_deref() == Some(value))
        .collect();
    assert_eq!(found.len(), 1, "entries with {field}={value}");
    found[0]
}

#[test]
fn the_report_reaches_the_journal_as_structured_entries() {
    let journald = Journald::start();
    let journal = JournalFiles::with_entries(&export_entries(&week_from(14)));
    let pm = Postmaster::new();
    let by_id = format!("MESSAGE_ID={MESSAGE_ID}");

    let output = bin_in_journald(&journald)
        .env("TZ", "UTC")
        .args(pm.run_args(journal.dir()))
        .arg("--to-journal")
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout_of(&output), "", "the report went to stdout as well");

    let candidates = [
        "amazonses.com",
        "outlook.com",
        "example-isp.net",
        "smallshop.de",
    ];
    let entries = journald.wait_for_entries(&[&by_id], 1 + candidates.len());
    assert_eq!(entries.len(), 1 + candidates.len());
    let summary = one_with(&entries, "PGADVISOR_KIND", "summary");
    summary.assert_fields(&[
        (
            "MESSAGE",
            "postgrey-advisor: 411 entries read since the previous run; in the window 265 \
             greylisted, 4 candidates to review",
        ),
        ("PRIORITY", "5"),
        ("PGADVISOR_CANDIDATES", "4"),
        ("PGADVISOR_ENTRIES_READ", "411"),
        ("PGADVISOR_GREYLISTED", "265"),
        ("PGADVISOR_UNTRUSTED_SKIPPED", "0"),
        ("PGADVISOR_CURSOR_LOST", "0"),
    ]);
    let amazon = one_with(&entries, "PGADVISOR_DOMAIN", "amazonses.com");
    amazon.assert_fields(&[
        (
            "MESSAGE",
            "postgrey-advisor: amazonses.com: whitelist, 84 greylisted, suggest \
             smtp-out.eu-west-1.amazonses.com",
        ),
        ("PRIORITY", "5"),
        ("PGADVISOR_KIND", "candidate"),
        ("PGADVISOR_NEW", "84"),
        ("PGADVISOR_GREYLISTED", "84"),
        ("PGADVISOR_RETRIED_FROM_OTHER_NET", "56"),
        ("PGADVISOR_PASSED_AFTER_DELAY", "28"),
        ("PGADVISOR_STATUS", "candidate"),
        ("PGADVISOR_VERDICT", "whitelist"),
        ("PGADVISOR_SUGGESTION", "smtp-out.eu-west-1.amazonses.com"),
    ]);
    let outlook = one_with(&entries, "PGADVISOR_DOMAIN", "outlook.com");
    outlook.assert_fields(&[
        ("PGADVISOR_NEW", "42"),
        ("PGADVISOR_VERDICT", "whitelist"),
        ("PGADVISOR_SUGGESTION", "outbound.protection.outlook.com"),
    ]);
    let isp = one_with(&entries, "PGADVISOR_DOMAIN", "example-isp.net");
    isp.assert_fields(&[("PGADVISOR_NEW", "35"), ("PGADVISOR_VERDICT", "spam-like")]);
    assert!(!isp.has("PGADVISOR_SUGGESTION"));
    let shop = one_with(&entries, "PGADVISOR_DOMAIN", "smallshop.de");
    shop.assert_fields(&[("PGADVISOR_NEW", "21"), ("PGADVISOR_VERDICT", "review")]);
    for domain in candidates {
        assert!(
            entries
                .iter()
                .any(|e| e.get("PGADVISOR_DOMAIN").as_deref() == Some(domain))
        );
    }

    // A run started the way systemd starts the unit (stdout is a journal stream, JOURNAL_STREAM
    // set) writes the same entries without --to-journal, and prints nothing on the stream.
    let mut cmd = journald.command_with_journal_socket(bin_path());
    cmd.env("TZ", "UTC")
        .args(pm.run_args(journal.dir()))
        .stdin(Stdio::null());
    journald.attach_as_unit(&mut cmd, "postgrey-advisor", "postgrey-advisor.service");
    let status = cmd.status().unwrap();
    drop(cmd);
    assert!(status.success(), "{status}");
    let entries = journald.wait_for_entries(&[&by_id], 2 * (1 + candidates.len()));
    let summaries: Vec<&JournalEntry> = entries
        .iter()
        .filter(|e| e.get("PGADVISOR_KIND").as_deref() == Some("summary"))
        .collect();
    assert_eq!(summaries.len(), 2);
    summaries[1].assert_fields(&[
        (
            "MESSAGE",
            "postgrey-advisor: 0 entries read since the previous run; in the window 265 \
             greylisted, 4 candidates to review",
        ),
        ("PGADVISOR_ENTRIES_READ", "0"),
        ("PGADVISOR_CANDIDATES", "4"),
    ]);
    let printed = journald.entries(&["SYSLOG_IDENTIFIER=postgrey-advisor", "_TRANSPORT=stdout"]);
    assert!(
        printed.is_empty(),
        "run printed on its journal stream: {:?}",
        printed
            .iter()
            .map(JournalEntry::message)
            .collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// The digest mail through a real Postfix.

/// This host's name as the digest names it.
fn host_name() -> String {
    let output = common::run_ok(Command::new("hostname").arg("--fqdn"));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Headers (unfolded) and the body of a delivered message.
struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(text: &str) -> Self {
        let (head, raw_body) = text.split_once("\n\n").expect("a header/body separator");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a continuation after a header");
                last.1.push_str(line);
            } else {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header line: {line:?}"));
                headers.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
        let encoding = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|(_, v)| v.to_ascii_lowercase());
        let body = match encoding.as_deref() {
            Some("quoted-printable") => String::from_utf8(
                quoted_printable::decode(
                    // local(8) stores lines with LF; the encoding is defined on CRLF lines.
                    raw_body.replace('\n', "\r\n"),
                    quoted_printable::ParseMode::Strict,
                )
                .unwrap(),
            )
            .unwrap(),
            Some("7bit" | "8bit") | None => raw_body.to_owned(),
            Some(other) => panic!("unexpected transfer encoding {other}"),
        };
        Mail {
            headers,
            body: body.replace("\r\n", "\n"),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let all: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(all.len() <= 1, "{name} appears {} times", all.len());
        all.first().copied()
    }
}

/// Lines that try to smuggle headers into the digest through postgrey's log.
fn hostile_entries(at_s: i64) -> Vec<ExportEntry> {
    [
        "action=greylist, reason=new, client_name=mx.evil.example\r\nBcc: victim@example.net, client_address=198.51.100.66, sender=a@evil.example, recipient=bob@example.org",
        "action=greylist, reason=new, client_name=mx.evil.example\nX-Injected: yes, client_address=198.51.100.67, sender=a@evil.example, recipient=bob@example.org",
        "action=greylist, reason=new, client_name=mx\x1b[2J\x07\x0b.evil.example, client_address=198.51.100.68, sender=a@evil.example, recipient=bob@example.org",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| ExportEntry::postgrey(&rfc3339(at_s + i as i64), m))
    .collect()
}

#[test]
fn the_digest_is_mailed_through_postfix_and_mailed_again_after_a_failure() {
    let mut postfix = Postfix::start();
    let week = week_from(14);
    let mut entries = export_entries(&week);
    entries.extend(hostile_entries(week[0].at_s + 3600));
    entries.sort_by_key(ExportEntry::realtime_us);
    let journal = JournalFiles::with_entries(&entries);
    let pm = Postmaster::new();
    let mail = [
        "--mail",
        "root",
        "--smtp",
        "127.0.0.1:25",
        "--mail-when",
        "always",
    ];

    // Postfix is down: the run counts the week, saves it, and fails for want of delivery.
    postfix.stop();
    let output = pm.command(journal.dir()).args(mail).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with(
            "postgrey-advisor: the digest to root was not delivered; the next run mails these \
             findings again: SMTP delivery to 127.0.0.1:25 failed"
        ),
        "{stderr}"
    );
    let summary = pm.summary_json();
    assert_eq!(summary["entries_read"], 414);
    assert_eq!(summary["totals"]["malformed"], 10);
    assert_eq!(pm.state_json()["last_mailed_us"], Value::Null);

    // Postfix is back: the next run reads nothing new and mails the week's findings.
    postfix.start_again();
    pm.run_ok(journal.dir(), &mail);
    assert_eq!(pm.summary_json()["entries_read"], 0);
    assert!(pm.state_json()["last_mailed_us"].is_i64());
    let messages = postfix.wait_for_messages("root", 1);
    assert_eq!(messages.len(), 1);
    let raw = &messages[0];
    let digest = Mail::parse(raw);
    let host = host_name();
    assert_eq!(
        digest.header("From"),
        Some(format!("postgrey-advisor@{host}").as_str())
    );
    assert_eq!(digest.header("To"), Some("root@localhost"));
    assert_eq!(
        digest.header("Subject"),
        Some(format!("postgrey-advisor on {host}: 4 new candidates to review").as_str())
    );
    // Postfix offers 8BITMIME: the text travels as written, readable without decoding.
    assert_eq!(
        digest.header("Content-Transfer-Encoding"),
        Some("8bit"),
        "{raw}\n{}",
        postfix.maillog()
    );
    assert!(raw.contains("per day |███████|\n"), "{raw}");
    assert_eq!(digest.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(
        digest.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(digest.header("MIME-Version"), Some("1.0"));
    let date = digest.header("Date").expect("a Date header");
    jiff::fmt::rfc2822::parse(date).unwrap_or_else(|e| panic!("Date {date:?}: {e}"));
    let message_id = digest.header("Message-ID").expect("a Message-ID header");
    assert!(
        message_id.starts_with('<') && message_id.ends_with('>') && message_id.contains('@'),
        "{message_id}"
    );
    // Nothing from the hostile log lines made it into the message, let alone its header.
    for name in ["Bcc", "X-Injected"] {
        assert_eq!(digest.header(name), None, "{raw}");
    }
    assert!(!raw.contains("victim") && !raw.contains("evil"), "{raw}");
    assert!(
        !postfix.maillog().contains("victim"),
        "{}",
        postfix.maillog()
    );

    let body = &digest.body;
    for expected in [
        "Senders that need a decision (4):\n\namazonses.com  [whitelist]\n  84 greylisted, 56 \
         retried from another network, 28 passed after delay, median\n    wait 3h\n  12 hosts, \
         12 addresses, 3 networks, e.g. a0-1.smtp-out.eu-west-1.amazonses.com\n  per day \
         |███████|\n",
        "Ready to paste into /etc/postgrey/whitelist_clients.local:\n\n",
        "#   network, 28 passed after delay, median wait 3h\nsmtp-out.eu-west-1.amazonses.com\n",
        "#   network, 21 passed after delay, median wait 2h\noutbound.protection.outlook.com\n",
        "Other senders:\n      42  bulk.co.uk                               ignored\n      20  \
         mcsv.net                                 whitelisted\n",
        "example-isp.net  [spam-like]\n",
        "smallshop.de  [review]\n",
    ] {
        assert!(body.contains(expected), "no {expected:?} in:\n{body}");
    }
    for line in body.lines() {
        assert!(
            line.chars().count() <= 80,
            "line wider than 80 columns: {line:?}"
        );
        assert!(
            !line.chars().any(|c| c.is_control()),
            "control character in {line:?}"
        );
    }

    assert!(body.contains("This is the first digest.\n"), "{body}");

    // The next digest lists the same candidates as a reminder, not as news.
    pm.run_ok(journal.dir(), &mail);
    let messages = postfix.wait_for_messages("root", 2);
    let second = Mail::parse(&messages[1]);
    assert_eq!(
        second.header("Subject"),
        Some(format!("postgrey-advisor on {host}: 4 candidates still unreviewed").as_str())
    );
    let body = &second.body;
    assert!(
        body.contains("\nThe previous digest was delivered "),
        "{body}"
    );
    assert!(
        body.contains(
            "\n\nStill unreviewed, listed in an earlier digest (4):\n  amazonses.com \
                       [whitelist] 84 greylisted, listed since "
        ),
        "{body}"
    );
    assert!(!body.contains("New since the previous digest"), "{body}");

    // --sendmail pipes the same message to Postfix's sendmail instead.
    let (variable, config) = postfix.sendmail_env();
    let output = pm
        .command(journal.dir())
        .args([
            "--mail",
            "root",
            "--mail-when",
            "always",
            "--sendmail",
            "/usr/sbin/sendmail",
        ])
        .env(variable, config)
        .output()
        .unwrap();
    assert_success(&output);
    let messages = postfix.wait_for_messages("root", 3);
    let third = Mail::parse(&messages[2]);
    assert_eq!(third.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(third.header("To"), Some("root@localhost"));
    assert_eq!(
        third.header("Subject"),
        Some(format!("postgrey-advisor on {host}: 4 candidates still unreviewed").as_str())
    );
    // Nothing but ASCII in this one, in lines of up to 80 columns: as written.
    assert_eq!(third.header("Content-Transfer-Encoding"), Some("7bit"));
    assert!(
        messages[2].contains("\n-- \npostgrey-advisor "),
        "{}",
        messages[2]
    );

    // A server without 8BITMIME gets quoted-printable, which decodes to the same text. (A
    // fresh state: the first digest again, with its sparklines.)
    postfix.set("smtpd_discard_ehlo_keywords = 8bitmime");
    let mut fresh = mail.to_vec();
    fresh.push("--reset-state");
    pm.run_ok(journal.dir(), &fresh);
    let messages = postfix.wait_for_messages("root", 4);
    let fourth = Mail::parse(&messages[3]);
    assert_eq!(
        fourth.header("Content-Transfer-Encoding"),
        Some("quoted-printable")
    );
    assert!(
        messages[3].contains(
            "  per day |=E2=96=88=E2=96=88=E2=96=88=E2=96=88=E2=96=88=E2=96=88=E2=96=88|\n"
        ),
        "{}",
        messages[3]
    );
    assert!(
        fourth.body.contains(
            "amazonses.com  [whitelist]\n  84 greylisted, 56 retried from another network, 28 \
             passed after delay, median\n    wait 3h\n  12 hosts, 12 addresses, 3 networks, e.g. \
             a0-1.smtp-out.eu-west-1.amazonses.com\n  per day |███████|\n"
        ),
        "{}",
        fourth.body
    );
}

// ---------------------------------------------------------------------------------------------
// Prometheus textfile metrics.

#[test]
fn prometheus_metrics_pass_promtool() {
    let journal = JournalFiles::with_entries(&export_entries(&week_from(14)));
    let pm = Postmaster::new();
    let prom = pm.dir.path().join("postgrey_advisor.prom");
    pm.run_ok(journal.dir(), &["--prometheus", prom.to_str().unwrap()]);
    let text = fs::read_to_string(&prom).unwrap();
    for line in [
        "postgrey_advisor_greylisted_total{domain=\"amazonses.com\",status=\"candidate\"} 84\n",
        "postgrey_advisor_greylisted_total{domain=\"outlook.com\",status=\"candidate\"} 42\n",
        "postgrey_advisor_greylisted_total{domain=\"bulk.co.uk\",status=\"ignored\"} 42\n",
        "# TYPE postgrey_advisor_greylisted_total untyped\n",
        "# TYPE postgrey_advisor_entries_read_total untyped\n",
        "postgrey_advisor_unreviewed_groups 4\n",
        "postgrey_advisor_window_greylisted 265\n",
        "postgrey_advisor_entries_read_total 411\n",
        "postgrey_advisor_delay_seconds_total{domain=\"amazonses.com\",status=\"candidate\"} 302400\n",
        "postgrey_advisor_delay_seconds_total{domain=\"bulk.co.uk\",status=\"ignored\"} 113400\n",
        "postgrey_advisor_window_delay_seconds 574560\n",
        "postgrey_advisor_window_spared_delay_seconds 453600\n",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool (Debian package prometheus): {e}"));
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "promtool check metrics ({}):\n{}{}\non:\n{text}",
        checked.status,
        stdout_of(&checked),
        stderr_of(&checked)
    );
}

/// `run` over a text log with this postmaster's files: `--window`, `--max-state-size`, JSON.
fn run_file(pm: &Postmaster, log: &Path, window: &str, max_state_size: &str) -> Value {
    let output = bin()
        .env("TZ", "UTC")
        .arg("run")
        .arg("--file")
        .arg(log)
        .arg("--state")
        .arg(pm.state())
        .arg("--whitelist-clients")
        .arg(&pm.whitelist)
        .arg("--ignore-file")
        .arg(&pm.ignore)
        .args(["--initial-since", "@0", "--format", "json"])
        .args(["--window", window, "--max-state-size", max_state_size])
        .output()
        .unwrap();
    assert_success(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn notes_of(report: &Value) -> Vec<String> {
    serde_json::from_value(report["notes"].clone()).unwrap()
}

/// The groups of a report by name (domain or network).
fn groups_by_name(report: &Value) -> std::collections::BTreeMap<String, Value> {
    let named = report["groups"].as_array().unwrap().iter();
    let unresolved = report["unresolved"].as_array().unwrap().iter();
    named
        .chain(unresolved)
        .map(|g| {
            let name = g["domain"].as_str().or(g["network"].as_str()).unwrap();
            (name.to_owned(), g.clone())
        })
        .collect()
}

/// Issue 4: the state file stays within `--max-state-size`; what it gives up to fit is said,
/// and never a count of the days it keeps.
#[test]
fn a_state_over_its_size_limit_keeps_the_counts_and_says_what_it_gave_up() {
    let pm = Postmaster::new();
    let log = pm.dir.path().join("mail.log");
    fs::write(&log, common::traffic::syslog_text(&week_from(14))).unwrap();
    // Syslog stamps have no year: it comes from the file's modification time. The kernel
    // stamps that with the real clock, which is not the test's under `faketime`.
    fs::File::options()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()))
        .unwrap();
    let state_size = || fs::metadata(pm.state()).unwrap().len();

    let whole = run_file(&pm, &log, "30d", "10MB");
    assert_week(&whole, 411);
    assert!(state_size() > 11_000, "{}", state_size());
    assert!(!notes_of(&whole).iter().any(|n| n.contains("state file")));

    // A window of 3 days leaves the whole week before it: at 5 kB, its days keep their
    // counts, the distinct counts they had and one client each, and quiet groups too small to
    // become candidates are folded.
    fs::remove_file(pm.state()).unwrap();
    let limited = run_file(&pm, &log, "3d", "5000B");
    assert!(state_size() <= 5000, "{}", state_size());
    assert_eq!(
        notes_of(&limited).last().unwrap(),
        "the state file was reduced from 12.0 kB to 4.9 kB to stay within --max-state-size \
         5.0 kB: days before the window keep their counts and one example client, 9 groups with 7 \
         greylistings (at most 1 each) were folded into the totals"
    );

    // The same state read over 30 days (nothing new): the counts and the advice of the
    // whole week; distinct counts are the most one day had.
    let again = run_file(&pm, &log, "30d", "5000B");
    assert_eq!(again["totals"], whole["totals"]);
    let (before, after) = (groups_by_name(&whole), groups_by_name(&again));
    let exact = [
        "new",
        "early_retry",
        "greylisted",
        "passed_after_delay",
        "passed_whitelisted",
        "retried_from_other_net",
        "median_delay_s",
        "max_delay_s",
        "first_seen",
        "last_seen",
        "daily_greylisted",
        "status",
        "verdict",
        "suggestion",
    ];
    for (name, group) in &after {
        for field in exact {
            assert_eq!(group[field], before[name][field], "{name} {field}");
        }
    }
    let distinct = |g: &Value| {
        let n = |f: &str| g[f].as_u64().unwrap();
        (n("distinct_ips"), n("distinct_nets"), n("distinct_hosts"))
    };
    let expected = [
        ("amazonses.com", (12, 3, 12)),
        ("outlook.com", (6, 2, 6)),
        ("bulk.co.uk", (6, 2, 2)),
        ("example-isp.net", (7, 1, 7)),
        ("smallshop.de", (1, 1, 1)),
        ("mcsv.net", (10, 7, 10)),
        ("192.0.2.0/24", (7, 1, 0)),
    ];
    for (name, counts) in expected {
        assert_eq!(distinct(&after[name]), counts, "{name}");
        assert_eq!(after[name]["capped"], true, "{name}");
    }
    // Too small to be candidates: the seven one-off EC2 hosts and the two groups that were
    // never greylisted were folded.
    let folded: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(
        folded,
        [
            "awl.example",
            "ec2-3-80-1-0.compute-1.amazonaws.com",
            "ec2-3-80-1-1.compute-1.amazonaws.com",
            "ec2-3-80-1-2.compute-1.amazonaws.com",
            "ec2-3-80-1-3.compute-1.amazonaws.com",
            "ec2-3-80-1-4.compute-1.amazonaws.com",
            "ec2-3-80-1-5.compute-1.amazonaws.com",
            "ec2-3-80-1-6.compute-1.amazonaws.com",
            "example.net",
        ]
    );
    assert!(
        notes_of(&again).contains(
            &"7 greylistings of small groups (at most 1 each) were folded to keep the state file \
          within its size limit; they are in the totals but under no group"
                .to_owned()
        )
    );

    // At 6 kB with the week inside the window, the least greylisted groups go, whole.
    fs::remove_file(pm.state()).unwrap();
    let folded = run_file(&pm, &log, "30d", "6000B");
    assert!(state_size() <= 6000, "{}", state_size());
    assert_eq!(
        notes_of(&folded)[notes_of(&folded).len() - 2..],
        [
            "97 greylistings of small groups (at most 35 each) were folded to keep the state \
             file within its size limit; they are in the totals but under no group",
            "the state file was reduced from 12.0 kB to 5.2 kB to stay within --max-state-size \
             6.0 kB: 13 groups with 97 greylistings (at most 35 each) were folded into the totals",
        ]
    );
    let kept = groups_by_name(&folded);
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        ["amazonses.com", "bulk.co.uk", "outlook.com"]
    );
    for (name, group) in &kept {
        assert_eq!(group, &before[name], "{name}");
    }
    assert_eq!(folded["totals"], whole["totals"]);
    let in_groups: u64 = kept
        .values()
        .map(|g| g["greylisted"].as_u64().unwrap())
        .sum();
    assert_eq!(
        in_groups + 97,
        whole["totals"]["greylisted"].as_u64().unwrap()
    );

    // A limit below what the totals of the window need: every group folded, the run saved
    // all the same, and the report says so.
    fs::remove_file(pm.state()).unwrap();
    let tiny = run_file(&pm, &log, "30d", "500B");
    assert_eq!(
        notes_of(&tiny).last().unwrap(),
        "the state file takes 1.5 kB, more than --max-state-size 500 B: the totals and journal \
         positions of the window alone need that much"
    );
    assert!(state_size() > 1000, "{}", state_size());
    assert!(groups_by_name(&tiny).is_empty());
    assert_eq!(tiny["totals"], whole["totals"]);
}
