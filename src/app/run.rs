//! `run`, the timer job: lock → load state → read the journal after the saved cursors → fold
//! into the day buckets → save cursors and counts in one atomic replace → report to the journal
//! (or stdout) → Prometheus metrics → summary file → digest mail.
//!
//! The journal is read per machine, each after a cursor of its own (see `source::journal`):
//! a directory gathered from several hosts receives one host's entries later than another's
//! newer ones. A host that appears after the first run is read back to `--keep` (none of its
//! entries was counted yet); a host whose entries vanished is noted while it was recent, and
//! forgotten after `--keep`. Text files (`--file`) have no cursor and resume after the newest
//! entry counted.
//!
//! The digest covers the report's window and reaches back to the day of the last *delivered*
//! digest: a failed delivery leaves `last_mailed` where it was, exits non-zero, and the next run
//! mails the findings again. Candidates a delivered digest already listed are kept in the state,
//! so that the next digest tells new candidates from ones still unreviewed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use jiff::Timestamp;

use super::inputs::{AdviceInputs, Days, parse_span, parse_time, scan};
use super::report::write_report;
use crate::atomic;
use crate::cli::{MailWhen, RunArgs};
use crate::render;
use crate::render::journal::RunFacts;
use crate::report::Report;
use crate::source::journal::{MachineRead, Resume, Start};
use crate::state::{self, MachinePosition, State};
use crate::tally::{Compaction, Limit, MICROS_PER_DAY, PAIR_MEMORY_US, day_of};

/// File name of the summary, beside the state file.
pub const SUMMARY_NAME: &str = "summary.json";

const MICROS_PER_SECOND: i64 = 1_000_000;

/// How far back a state at its size limit remembers greylisted pairs: a sender whose servers
/// retry from other networks does so within hours (Postfix backs off to 4000 s at most).
const PAIRS_UNDER_PRESSURE_US: i64 = 4 * 3_600 * MICROS_PER_SECOND;

fn span_us(span: Duration) -> i64 {
    i64::try_from(span.as_micros()).unwrap_or(i64::MAX)
}

/// The summary file that belongs to a state file.
pub fn summary_path(state: &Path) -> PathBuf {
    state
        .parent()
        .map(|dir| dir.join(SUMMARY_NAME))
        .unwrap_or_else(|| PathBuf::from(SUMMARY_NAME))
}

/// The most of a serialised tally a run keeps in memory to save it as it was measured: a
/// state of hundreds of megabytes is serialised twice rather than held twice.
const KEPT_TEXT_MAX: usize = 64 << 20;

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let now = Timestamp::now();
    let now_us = now.as_microsecond();
    let keep_us = span_us(parse_span("--keep", &args.keep)?);
    let window_us = span_us(parse_span("--window", &args.window)?);
    let initial_since_us = parse_time("--initial-since", &args.initial_since, now)?;
    let inputs = AdviceInputs::load(&args.advice, &args.source)?;
    if args.to_journal {
        require_journal_socket()?;
    }

    let _lock = state::lock(&args.state, Duration::from_secs(args.lock_timeout))?;
    // Under the run lock no other run writes these files: what a killed run left can go.
    for path in [args.state.clone(), summary_path(&args.state)] {
        atomic::remove_stale_temporaries(&path)?;
    }
    let mut state = if args.reset_state {
        State::fresh()
    } else {
        state::load(&args.state)?
    };

    // Before the first run nothing was counted since --initial-since; later, a host never seen
    // has none of its entries counted, so it is read as far back as the state keeps anything.
    let new_host_since_us = if state.machines.is_empty() {
        initial_since_us
    } else {
        now_us.saturating_sub(keep_us)
    };
    let previous_run_us = state.last_run_us;
    let mut host_notes = Vec::new();
    let start = resume_from(&state, !args.source.files.is_empty(), new_host_since_us);
    let known: Vec<String> = state.machines.keys().cloned().collect();
    let network = inputs.grouper.network();
    if state.tally.network != network {
        if !state.tally.groups.is_empty() {
            host_notes.push(format!(
                "postgrey's networks changed from {} to {} since the state was saved: the days \
                 before this run keep the retries from another network counted under the old \
                 ones, and unresolved clients stay under their old networks until those days age out",
                state.tally.network.describe(),
                network.describe()
            ));
        }
        state.tally.adopt_network(network);
    }
    let outcome = scan(&args.source, start, None, &inputs.grouper, &mut state.tally)?;
    for (machine, read) in &outcome.machines {
        let is_new_host = !machine.is_empty() && !known.is_empty() && !known.contains(machine);
        if is_new_host && read.last_realtime_us.is_some() {
            host_notes.push(format!(
                "journal entries of a new host (machine id {machine}) were read back to --keep {}",
                args.keep
            ));
        }
        advance(&mut state.machines, machine, read);
    }
    if args.source.files.is_empty() {
        let recent_us = now_us.saturating_sub(window_us);
        for (machine, position) in &state.machines {
            let vanished = !machine.is_empty() && !outcome.machines.contains_key(machine);
            if vanished && position.last_entry_us >= recent_us {
                host_notes.push(format!(
                    "no journal files of host (machine id {machine}) are left; its entries since {} are missing",
                    render::rfc3339(position.last_entry_us)
                ));
            }
        }
    }
    // A host silent for longer than the state keeps anything has nothing left to resume.
    let forget_before_us = now_us.saturating_sub(keep_us);
    state
        .machines
        .retain(|_, position| position.last_entry_us >= forget_before_us);
    state.last_entry_us = state.last_entry_us.max(outcome.last_realtime_us);
    state
        .tally
        .prune(day_of(now_us - keep_us), now_us - PAIR_MEMORY_US);
    state.last_run_us = Some(now_us);
    let window = Days::rolling(now_us, window_us);
    let (limit, besides_tally) = state_limit(&state, args, now_us, window_us, keep_us);
    // The tally is measured by its stored form first (the text is kept for the save when it
    // is at most `KEPT_TEXT_MAX`; a bigger tally is measured again by `compact`, without its
    // text in memory), and reported only once it is within the limit: a report of a tally
    // about to be compacted would be made again, and beside the tally it is the run's peak of
    // memory.
    let (compaction, serialised) =
        match state::serialise_tally_within(&state.tally, limit.max_bytes.min(KEPT_TEXT_MAX))? {
            Some(serialised) => (
                state.tally.compact_measured(&limit, serialised.bytes()),
                Some(serialised),
            ),
            None => (state.tally.compact(&limit), None),
        };
    let compaction = Compaction {
        bytes_before: compaction.bytes_before.saturating_add(besides_tally),
        bytes_after: compaction.bytes_after.saturating_add(besides_tally),
        ..compaction
    };
    state::test_pause("POSTGREY_ADVISOR_TEST_PAUSE_BEFORE_SAVE_MS");
    state::test_gate("POSTGREY_ADVISOR_TEST_GATE_BEFORE_SAVE");
    // The state is saved while the report is made from it (a save is mostly waiting for the
    // disk); the serialised tally is gone before the summary and the report are written.
    let (mut report, saved) = std::thread::scope(|scope| {
        let saving = scope.spawn(|| match serialised {
            Some(tally) => state::save_serialised(&args.state, &state, &tally),
            None => state::save(&args.state, &state),
        });
        let report = inputs.report(&state.tally, window, &args.show);
        match saving.join() {
            Ok(saved) => (report, saved),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    saved?;
    let facts = RunFacts {
        entries_read: outcome.entries,
        cursor_lost: outcome.cursor_lost,
    };
    report.since_us = Some(window.since_us());
    report.until_us = Some(now_us);
    report.notes.extend(outcome.notes.iter().cloned());
    report.reading = Some(crate::report::Reading {
        previous_run_us,
        ..outcome.reading.clone()
    });
    report.notes.extend(host_notes);
    report.notes.extend(compaction_note(&compaction, args));
    if outcome.cursor_lost {
        report.notes.push(String::from(
            "the saved journal cursor no longer exists (journal rotated or vacuumed); reading resumed \
             from the time of the last entry counted, and entries logged in between may have been lost",
        ));
    }
    // The summary and the printed report are made from the report alone, each as big as the
    // other: written on two cores at once, now that the state they describe is saved.
    std::thread::scope(|scope| {
        let summary = scope.spawn(|| write_summary(&args.state, &report, &facts, now_us));
        let printed = print_report(args, &report, &facts).and_then(|()| {
            let Some(path) = prometheus_path(args) else {
                return Ok(());
            };
            let metrics = render::prometheus::RunMetrics {
                last_run_unix_s: now_us as f64 / MICROS_PER_SECOND as f64,
                entries_read: outcome.entries,
                duration_s: started.elapsed().as_secs_f64(),
            };
            let text = render::prometheus::render(&report, &metrics, args.prometheus_top);
            atomic::replace(&path, text.as_bytes(), 0o644)
        });
        let summary = match summary.join() {
            Ok(summary) => summary,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        printed.and(summary)
    })?;

    if let Some(to) = &args.mail {
        mail_digest(args, to, &inputs, &mut state, now_us, window_us)?;
    }
    // Everything is written: the process ends here, and the system takes its memory back at
    // once, where freeing the tally's and the report's hundreds of thousands of small
    // allocations one by one took a tenth of a run that read little.
    std::mem::forget(report);
    std::mem::forget(state);
    Ok(())
}

/// What `--max-state-size` leaves to the tally, and what the rest of the state takes. The days
/// the summary and an undelivered digest are made of keep their detail longest.
fn state_limit(
    state: &State,
    args: &RunArgs,
    now_us: i64,
    window_us: i64,
    keep_us: i64,
) -> (Limit, usize) {
    let mut detail_from_us = now_us.saturating_sub(window_us);
    if let (Some(_), Some(last_mailed_us)) = (&args.mail, state.last_mailed_us) {
        detail_from_us = detail_from_us.min(last_mailed_us);
    }
    let detail_from_us = detail_from_us.max(now_us.saturating_sub(keep_us));
    let besides_tally = state::size_without_tally(state);
    let limit = Limit {
        max_bytes: usize::try_from(args.max_state_size.as_u64())
            .unwrap_or(usize::MAX)
            .saturating_sub(besides_tally),
        detail_from: day_of(detail_from_us),
        min_count: args.advice.min_count,
        quiet_before_us: now_us.saturating_sub(MICROS_PER_DAY),
        pairs_from_us: now_us.saturating_sub(PAIRS_UNDER_PRESSURE_US),
    };
    (limit, besides_tally)
}

/// What the report must say about a compaction, if anything: folding is noted by the report
/// itself for the days it touched, trimming by the caps it set.
fn compaction_note(done: &Compaction, args: &RunArgs) -> Option<String> {
    let size = |bytes: usize| bytesize::ByteSize::b(bytes as u64).display().si();
    let limit = args.max_state_size.display().si();
    if done.bytes_after as u64 > args.max_state_size.as_u64() {
        return Some(format!(
            "the state file takes {}, more than --max-state-size {limit}: the totals and journal \
             positions of the window alone need that much",
            size(done.bytes_after)
        ));
    }
    done.changed().then(|| {
        format!(
            "the state file was reduced from {} to {} to stay within --max-state-size {limit}: {}",
            size(done.bytes_before),
            size(done.bytes_after),
            compaction_steps(done).join(", ")
        )
    })
}

fn compaction_steps(done: &Compaction) -> Vec<String> {
    let mut steps = Vec::new();
    if done.coarse_days {
        steps.push(String::from(
            "days before the window keep their counts and one example client",
        ));
    }
    if let Some(first_kept) = done.dropped_before {
        steps.push(format!(
            "days before {} were dropped (shorter than --keep)",
            render::json::date_of(first_kept)
        ));
    }
    if done.trimmed_days {
        steps.push(String::from(
            "days in the window keep fewer hosts, addresses and delays",
        ));
    }
    if done.forgotten_pairs > 0 {
        steps.push(format!(
            "{} sender/recipient pairs greylisted more than {} hours ago were forgotten (a retry \
             from another network after that counts as new)",
            done.forgotten_pairs,
            PAIRS_UNDER_PRESSURE_US / (3_600 * MICROS_PER_SECOND)
        ));
    }
    if done.folded_groups > 0 {
        steps.push(format!(
            "{} groups with {} greylistings (at most {} each) were folded into the totals",
            done.folded_groups, done.folded_greylisted, done.largest_folded
        ));
    }
    steps
}

/// Where this run starts reading: text files after the newest entry counted, the journal after
/// each machine's saved position; a host never read starts at `new_host_since_us`.
fn resume_from(state: &State, text_files: bool, new_host_since_us: i64) -> Start {
    if text_files {
        return Start::Time(Some(
            state
                .last_entry_us
                .map_or(new_host_since_us, |last_us| last_us.saturating_add(1)),
        ));
    }
    let machines = state
        .machines
        .iter()
        .map(|(machine, position)| {
            let resume = Resume {
                cursor: position.cursor.clone(),
                // Strictly after the last entry read.
                fallback_since_us: position.last_entry_us.saturating_add(1),
            };
            (machine.clone(), resume)
        })
        .collect();
    Start::AfterCursors {
        machines,
        default_since_us: Some(new_host_since_us),
    }
}

/// Moves `machine`'s saved position to where its pass ended. A lost cursor is never tried
/// again: its time takes over until the machine's next entry.
fn advance(positions: &mut BTreeMap<String, MachinePosition>, machine: &str, read: &MachineRead) {
    match (&read.last_cursor, read.last_realtime_us) {
        (Some(cursor), Some(last_entry_us)) => {
            let position = MachinePosition {
                cursor: Some(cursor.clone()),
                last_entry_us,
            };
            positions.insert(machine.to_owned(), position);
        }
        _ if read.cursor_lost => {
            if let Some(position) = positions.get_mut(machine) {
                position.cursor = None;
            }
        }
        _ => {}
    }
}

/// True when stdout is the journal stream systemd connected (sd_journal_stream_fd(3)):
/// `JOURNAL_STREAM` names its device and inode, and a child that inherited the variable but not
/// the stream must not be fooled.
/// Where sd_journal_send writes. libsystemd reports success when nothing listens there, so
/// `--to-journal` looks first rather than report nothing and exit 0.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

fn require_journal_socket() -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let listening = std::fs::metadata(JOURNAL_SOCKET).is_ok_and(|m| m.file_type().is_socket());
    if listening {
        Ok(())
    } else {
        Err(anyhow!(
            "--to-journal: no journald listens at {JOURNAL_SOCKET}, so the report could not be \
             written (without --to-journal it is printed)"
        ))
    }
}

fn stdout_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream
        .to_str()
        .and_then(|s| s.split_once(':'))
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
    else {
        return false;
    };
    io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

fn prometheus_path(args: &RunArgs) -> Option<PathBuf> {
    args.prometheus.clone().or_else(|| {
        args.textfile_dir
            .as_ref()
            .map(|d| d.join("postgrey_advisor.prom"))
    })
}

/// `summary.json`: the report's JSON contract over the rolling window plus run metadata,
/// world-readable so monitoring needs no journal access.
fn write_summary(
    state_path: &Path,
    report: &Report,
    facts: &RunFacts,
    now_us: i64,
) -> anyhow::Result<()> {
    let run = render::json::RunFields {
        last_run_us: now_us,
        entries_read: facts.entries_read,
        cursor_lost: facts.cursor_lost,
    };
    // Written straight into the file: a big summary is never whole in memory beside the
    // report it is made from.
    let path = summary_path(state_path);
    let write = |out: &mut dyn Write| render::json::summary(report, &run, out);
    atomic::replace_with(&path, 0o644, write)
}

/// The report, to the journal or to stdout.
fn print_report(args: &RunArgs, report: &Report, facts: &RunFacts) -> anyhow::Result<()> {
    if args.to_journal || stdout_is_the_journal() {
        for fields in render::journal::entries(report, facts) {
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            systemd::journal::send(&refs).context("cannot write the report to the journal")?;
        }
    } else {
        let mut out = io::stdout().lock();
        let printed = write_report(report, args.format, &mut out).and_then(|()| out.flush());
        match printed {
            // Nobody reads the table (`| head`): the metrics and the mail still matter.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            other => other.context("cannot print the report")?,
        }
    }
    Ok(())
}

fn mail_digest(
    args: &RunArgs,
    to: &str,
    inputs: &AdviceInputs,
    state: &mut State,
    now_us: i64,
    window_us: i64,
) -> anyhow::Result<()> {
    let mut days = Days::rolling(now_us, window_us);
    if let Some(last_mailed_us) = state.last_mailed_us {
        days.first = days.first.min(Days::between(last_mailed_us, now_us).first);
    }
    let mut digest = inputs.report(&state.tally, days, &args.show);
    digest.since_us = Some(days.since_us());
    digest.until_us = Some(now_us);
    let has_candidates = digest.unreviewed().next().is_some();
    if args.mail_when == MailWhen::Candidates && !has_candidates {
        return Ok(());
    }
    let host = crate::mail::host_name();
    let previous = render::digest::Previous {
        delivered_us: state.last_mailed_us,
        listed: Some(&state.digest_listed),
    };
    let lines: Vec<(String, String)> = digest
        .suggestion_lines()
        .map(|(f, line)| (line, format!("{}: {}", f.key, f.advice.reason)))
        .collect();
    let message = crate::mail::Digest {
        from: args.mail_from.clone(),
        to: to.to_owned(),
        subject: render::digest::subject(&host, &digest, &previous),
        body: render::digest::body(&host, &digest, &previous, &lines),
    };
    let delivery = match &args.sendmail {
        Some(program) => crate::mail::Transport::Sendmail(program.clone()),
        None => crate::mail::Transport::Smtp(args.smtp.clone()),
    };
    crate::mail::send(&message, &delivery).map_err(|e| {
        anyhow!(e).context(format!(
            "the digest to {to} was not delivered; the next run mails these findings again"
        ))
    })?;
    // Listed from now on: the candidates of this digest, each since it was first listed.
    let listed = digest
        .unreviewed()
        .map(|f| {
            let key = f.key.to_string();
            let since = state.digest_listed.get(&key).copied().unwrap_or(now_us);
            (key, since)
        })
        .collect();
    state.digest_listed = listed;
    state.last_mailed_us = Some(now_us);
    state::save(&args.state, state)
}
