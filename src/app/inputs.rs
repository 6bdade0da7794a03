//! What `report`, `run` and `check` share: option values parsed into times and spans, the
//! source the flags name (journal or text) scanned into a tally with progress on a terminal,
//! and the whitelist, ignore list and Public Suffix List advice is measured against.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::advice::{Context, Thresholds};
use crate::cli::{AdviceArgs, ShowArgs, SourceArgs, WhitelistFiles};
use crate::error::Failure;
use crate::group::Grouper;
use crate::postgrey::Settings;
use crate::report::{Reading, Report, assemble};
use crate::source::journal::{self, JournalSpec, Location, MachineRead, Start, Trust};
use crate::source::{Consumer, Entry, Window, journal_files, text};
use crate::tally::{Day, MICROS_PER_DAY, Prepared, Tally, day_of};
use crate::timespec;
use crate::whitelist::{self, Whitelist};

/// Parses a `--since`-style value; a usage error naming the flag and value.
pub fn parse_time(flag: &str, value: &str, now: Timestamp) -> anyhow::Result<i64> {
    timespec::parse_timestamp(value, now, &TimeZone::system())
        .map(|t| t.as_microsecond())
        .map_err(|e| Failure::Usage(format!("{flag}: {e}")).into())
}

/// Parses a time span flag (`7d`, `8w`); a usage error naming the flag and value.
pub fn parse_span(flag: &str, value: &str) -> anyhow::Result<Duration> {
    timespec::parse_span(value).map_err(|e| Failure::Usage(format!("{flag}: {e}")).into())
}

/// The grouper the flags ask for.
pub fn grouper(source: &SourceArgs) -> anyhow::Result<Grouper> {
    match &source.psl {
        Some(path) => Grouper::from_list_file(path),
        None => Ok(Grouper::builtin()),
    }
}

/// What a scan saw, beyond the tally.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    pub entries: u64,
    /// Some machine's saved cursor no longer exists (see [`MachineRead::cursor_lost`]).
    pub cursor_lost: bool,
    /// Realtime of the newest entry read (µs).
    pub last_realtime_us: Option<i64>,
    /// A journal read after saved cursors ([`Start::AfterCursors`]): how each machine's pass
    /// ended. Empty otherwise.
    pub machines: BTreeMap<String, MachineRead>,
    /// Lines or entries of postgrey's that could not be used, one sentence each, for the
    /// report's notes (they are counted nowhere else).
    pub notes: Vec<String>,
    /// What was read, for the report to state.
    pub reading: Reading,
}

/// The first bytes of every journal file (systemd's journal-file format).
const JOURNAL_MAGIC: &[u8; 8] = b"LPKSHHRH";

/// Whether the file at `path` starts like a journal file; `None` when it cannot be read (the
/// source says why when it tries) or is no regular file (a FIFO must not lose its first bytes).
fn is_journal_file(path: &std::path::Path) -> Option<bool> {
    use std::io::Read as _;
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut head = [0u8; 8];
    let mut file = std::fs::File::open(path).ok()?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    Some(filled == head.len() && &head == JOURNAL_MAGIC)
}

/// A journal file given to `--file`, or a text file to `--journal-file`: a usage error that
/// names the option to use, before a reader makes no sense of it.
fn check_file_kinds(source: &SourceArgs) -> anyhow::Result<()> {
    for path in source.files.iter().filter(|p| p.as_os_str() != "-") {
        if is_journal_file(path) == Some(true) {
            return Err(Failure::Usage(format!(
                "{} is a journal file, not a text log: read it with --journal-file {0}",
                path.display()
            ))
            .into());
        }
    }
    for path in &source.journal_file {
        if is_journal_file(path) == Some(false) {
            return Err(Failure::Usage(format!(
                "{} is not a journal file (a text log? read it with --file {0})",
                path.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// What the source flags name, for people.
fn source_words(source: &SourceArgs) -> String {
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !source.files.is_empty() {
        list(&source.files)
    } else if !source.journal_file.is_empty() {
        format!("journal file {}", list(&source.journal_file))
    } else if let Some(dir) = &source.journal_dir {
        format!("the journal in {}", dir.display())
    } else {
        String::from("the system journal")
    }
}

/// A spinner on stderr once a scan has taken more than a second, and only on a terminal.
struct Progress {
    started: Instant,
    bar: Option<ProgressBar>,
    enabled: bool,
    count: u64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: Instant::now(),
            bar: None,
            enabled: io::stderr().is_terminal(),
            count: 0,
        }
    }

    fn tick(&mut self) {
        self.count += 1;
        if !self.enabled || !self.count.is_multiple_of(4096) {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() > Duration::from_secs(1) {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} postgrey entries read", self.count));
            bar.tick();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reads the source the flags name into `tally`: text files when `--file` is given, else the
/// journal from `start`. A cursor only means something to the journal: text files given
/// [`Start::AfterCursors`] resume by time, after the newest of its fallback times.
pub fn scan(
    source: &SourceArgs,
    start: Start,
    until_us: Option<i64>,
    grouper: &Grouper,
    tally: &mut Tally,
) -> anyhow::Result<ScanOutcome> {
    check_file_kinds(source)?;
    let mut progress = Progress::new();
    let mut last_realtime_us = None;
    let mut first_realtime_us: Option<i64> = None;
    // Parsing and grouping on the source's reading thread, counting on this one.
    let prepare = |entry: &Entry<'_>, share| Prepared::of(grouper, entry, share);
    let mut counter = tally.counter();
    let mut count = |entry: Entry, prepared: &Prepared| -> anyhow::Result<()> {
        progress.tick();
        // Files may be given out of time order: resume after the newest entry counted.
        last_realtime_us = last_realtime_us.max(Some(entry.realtime_us));
        first_realtime_us =
            Some(first_realtime_us.map_or(entry.realtime_us, |f| f.min(entry.realtime_us)));
        counter.count(grouper, &entry, prepared);
        Ok(())
    };
    let consumer = Consumer {
        prepare: &prepare,
        count: &mut count,
    };
    let mut reading = Reading {
        source: source_words(source),
        identifier: source.identifier.clone(),
        ..Reading::default()
    };
    if !source.files.is_empty() {
        let since_us = match start {
            Start::Time(since) => since,
            // Text files have no cursors; `run` resumes them by time.
            Start::AfterCursors { .. } => {
                return Err(anyhow::anyhow!(
                    "text files cannot resume after journal cursors"
                ));
            }
        };
        let spec = text::TextSpec {
            paths: source.files.clone(),
            identifier: source.identifier.clone(),
            year: source.year,
        };
        let window = Window { since_us, until_us };
        let summary = text::read(&spec, window, consumer)?;
        let mut notes = Vec::new();
        if summary.bad_stamps > 0 {
            notes.push(format!(
                "{} {} lines had a time stamp that could not be read and were skipped",
                summary.bad_stamps, source.identifier
            ));
        }
        if summary.truncated_lines > 0 {
            notes.push(format!(
                "{} lines longer than {} KiB were cut there",
                summary.truncated_lines,
                text::MAX_LINE_BYTES / 1024
            ));
        }
        reading.lines = Some(summary.lines);
        reading.entries = summary.entries;
        reading.outside_window = Some(summary.outside_window);
        reading.first_us = first_realtime_us;
        reading.last_us = last_realtime_us;
        return Ok(ScanOutcome {
            entries: summary.entries,
            cursor_lost: false,
            last_realtime_us,
            machines: BTreeMap::new(),
            notes,
            reading,
        });
    }
    let location = if !source.journal_file.is_empty() {
        Location::Files(source.journal_file.clone())
    } else if let Some(dir) = &source.journal_dir {
        Location::Directory(dir.clone())
    } else {
        Location::System
    };
    let trust = Trust {
        unit: source.unit.clone(),
        uids: if source.trust_uids.is_empty() {
            Trust::default_uids()
        } else {
            source.trust_uids.clone()
        },
        any: source.trust_any,
    };
    let spec = JournalSpec {
        location,
        identifier: source.identifier.clone(),
        trust,
    };
    let summary = journal::read(&spec, start, until_us, consumer)?;
    let mut notes = Vec::new();
    if summary.without_message > 0 {
        notes.push(format!(
            "{} {} journal entries had no MESSAGE and were skipped",
            summary.without_message, source.identifier
        ));
    }
    notes.extend(journal_files::skipped_note(
        &spec.location.to_string(),
        &summary.skipped_files,
    ));
    reading.entries = summary.entries;
    reading.first_us = first_realtime_us;
    reading.last_us = last_realtime_us;
    Ok(ScanOutcome {
        entries: summary.entries,
        cursor_lost: summary.cursor_lost(),
        last_realtime_us: summary.last_realtime_us,
        machines: summary.machines,
        notes,
        reading,
    })
}

/// The settings of the postgrey being advised (`--postgrey-config`, else Debian's file when
/// it exists, else postgrey's defaults).
pub fn postgrey_settings(files: &WhitelistFiles) -> anyhow::Result<Settings> {
    crate::postgrey::load(files.postgrey_config.as_deref())
}

/// The whitelist files in force: the flags' files, else those postgrey reads (its
/// `--whitelist-clients`, or Debian's two).
pub fn whitelist_paths(files: &WhitelistFiles, settings: &Settings) -> (Vec<PathBuf>, bool) {
    if files.paths.is_empty() {
        (settings.whitelist_clients.clone(), false)
    } else {
        (files.paths.clone(), true)
    }
}

/// The whitelist files in force (see [`whitelist_paths`]) and the files read: postgrey's own
/// are skipped when missing, as postgrey skips them, with a note unless they are `.local`
/// files (postgrey does not warn about those either). Entries postgrey skips, or that cannot
/// be evaluated here (Perl-only regexes), become notes: a status computed without them must
/// say so.
fn load_whitelist_files(
    files: &WhitelistFiles,
    settings: &Settings,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Whitelist, Vec<PathBuf>)> {
    let (paths, explicit) = whitelist_paths(files, settings);
    let read = if explicit {
        paths
    } else {
        for missing in paths.iter().filter(|p| !p.exists()) {
            if missing.extension().is_some_and(|e| e == "local") {
                continue;
            }
            notes.push(format!(
                "{} not found: statuses assume nothing in it is whitelisted (--whitelist-clients names the files)",
                missing.display()
            ));
        }
        paths.into_iter().filter(|p| p.exists()).collect()
    };
    let whitelist = whitelist::load(&read)?;
    notes.extend(
        whitelist
            .problems()
            .iter()
            .map(|p| format!("whitelist {p}")),
    );
    Ok((whitelist, read))
}

/// Everything advice needs, loaded from the files the flags name.
pub struct AdviceInputs {
    pub whitelist: Whitelist,
    /// Our ignore file's domains, then the classic plugin's.
    pub ignored: Vec<String>,
    /// Says that the classic plugin's ignore file was read, and how much of it.
    pub legacy_ignore: Option<String>,
    pub grouper: Grouper,
    pub thresholds: Thresholds,
    pub notes: Vec<String>,
    /// The whitelist files read and the ignore file, for the report to name.
    pub whitelist_files: Vec<PathBuf>,
    pub ignore_file: PathBuf,
    /// The settings of the postgrey advised: what its networks are, which files it reads.
    pub postgrey: Settings,
}

impl AdviceInputs {
    pub fn load(advice: &AdviceArgs, source: &SourceArgs) -> anyhow::Result<Self> {
        let mut notes = Vec::new();
        let postgrey = postgrey_settings(&advice.whitelist)?;
        let (whitelist, whitelist_files) =
            load_whitelist_files(&advice.whitelist, &postgrey, &mut notes)?;
        let mut ignored = whitelist::load_ignore(&advice.ignore_file)?;
        let legacy_ignore = whitelist::load_legacy_ignore(
            &advice.legacy_ignore.legacy_ignore_file,
        )?
        .map(|legacy| {
            notes.extend(legacy_ignore_suffixes(
                &advice.legacy_ignore.legacy_ignore_file,
                &legacy,
            ));
            let note =
                legacy_ignore_note(&advice.legacy_ignore.legacy_ignore_file, &legacy, advice);
            ignored.extend(legacy);
            note
        });
        notes.extend(legacy_ignore.clone());
        Ok(AdviceInputs {
            whitelist,
            ignored,
            legacy_ignore,
            grouper: grouper(source)?.with_network(postgrey.network()),
            thresholds: Thresholds {
                min_count: advice.min_count,
                ..Thresholds::default()
            },
            notes,
            whitelist_files,
            ignore_file: advice.ignore_file.clone(),
            postgrey,
        })
    }

    pub fn context(&self) -> Context<'_> {
        Context {
            whitelist: &self.whitelist,
            ignored: &self.ignored,
            grouper: &self.grouper,
            thresholds: self.thresholds,
        }
    }

    /// The report over `days` of `tally`, with these inputs' notes.
    pub fn report(&self, tally: &Tally, days: Days, show: &ShowArgs) -> Report {
        let mut report = assemble(tally, days.first, days.last, &self.context());
        report.show_all = show.all;
        report.suggest_regex = show.regex;
        report.notes.extend(self.notes.iter().cloned());
        report.whitelist_files = self
            .whitelist_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        report.ignore_file = Some(self.ignore_file.display().to_string());
        report.postgrey = self.postgrey.clone();
        report
    }
}

/// Says that the classic plugin's ignore file is read besides ours, and where `ignore` writes.
fn legacy_ignore_note(path: &Path, domains: &[String], advice: &AdviceArgs) -> String {
    let count = match domains.len() {
        1 => "1 domain".to_string(),
        n => format!("{n} domains"),
    };
    format!(
        "also ignoring {count} from {}, the classic check_postgrey_whitelist plugin's ignore \
         file (`ignore` adds to {})",
        path.display(),
        advice.ignore_file.display()
    )
}

/// The classic recipe grouped client names by cutting a fixed number of labels, so its ignore
/// file may hold public suffixes (`co.uk`, `com.br`); each ignores every domain under it, here as
/// there.
fn legacy_ignore_suffixes(path: &Path, domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .filter(|d| {
            psl::domain(d.as_bytes()).is_none()
                && psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known())
        })
        .map(|d| {
            format!(
                "{}: {} is a public suffix: it ignores every domain under it",
                path.display(),
                whitelist::shown_entry(d)
            )
        })
        .collect()
}

/// Whole UTC days, the resolution of the timer job's day buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    pub first: Day,
    pub last: Day,
}

impl Days {
    /// A rolling window of `span_us` ending at `now_us`, as the day buckets can answer it: the
    /// last ⌈span / 1 day⌉ UTC days, today included (`7d` = today and the 6 days before).
    pub fn rolling(now_us: i64, span_us: i64) -> Days {
        // Ceiling division on non-negative spans.
        let days = (span_us.max(0).saturating_add(MICROS_PER_DAY - 1) / MICROS_PER_DAY).max(1);
        let last = day_of(now_us);
        Days {
            first: last.saturating_sub(days - 1),
            last,
        }
    }

    /// From the day of `since_us` to the day of `until_us`.
    pub fn between(since_us: i64, until_us: i64) -> Days {
        Days {
            first: day_of(since_us),
            last: day_of(until_us),
        }
    }

    /// The first instant the window covers: the start of its first day.
    pub fn since_us(&self) -> i64 {
        self.first.saturating_mul(MICROS_PER_DAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolling_window_is_whole_utc_days_ending_today() {
        let day = MICROS_PER_DAY;
        let now = 20_000 * day + 3 * 3_600_000_000; // 03:00 on day 20000
        assert_eq!(
            Days::rolling(now, 7 * day),
            Days {
                first: 19_994,
                last: 20_000
            }
        );
        assert_eq!(
            Days::rolling(now, 7 * day + 1),
            Days {
                first: 19_993,
                last: 20_000
            }
        );
        assert_eq!(
            Days::rolling(now, 1),
            Days {
                first: 20_000,
                last: 20_000
            }
        );
        assert_eq!(Days::rolling(now, i64::MAX).last, 20_000);
        assert_eq!(Days::rolling(now, 7 * day).since_us(), 19_994 * day);
    }
}
