//! `report` and `whitelist`: read a source over a window, tally, advise, render. Never touches
//! the timer job's state. Also the pieces `run` and `check` share: building the source from
//! the flags, scanning it with progress, loading whitelist and ignore files.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Failure;
use crate::advice::{Context, Thresholds};
use crate::cli::{AdviceArgs, Format, Generate, ReportArgs, ShowArgs, SourceArgs};
use crate::group::Grouper;
use crate::render;
use crate::report::{Report, assemble};
use crate::source::journal::{self, JournalSpec, Location, Start, Trust};
use crate::source::{Entry, Window, text};
use crate::tally::{Tally, day_of};
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
    pub cursor_lost: bool,
    pub last_cursor: Option<String>,
    pub last_realtime_us: Option<i64>,
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
/// journal from `start` (a cursor only means something to the journal; text files resume by
/// time).
pub fn scan(
    source: &SourceArgs,
    start: Start,
    until_us: Option<i64>,
    grouper: &Grouper,
    tally: &mut Tally,
) -> anyhow::Result<ScanOutcome> {
    let mut progress = Progress::new();
    let mut last_realtime_us = None;
    let mut on_entry = |entry: Entry| -> anyhow::Result<()> {
        progress.tick();
        last_realtime_us = Some(entry.realtime_us);
        tally.ingest(grouper, &entry);
        Ok(())
    };
    if !source.files.is_empty() {
        let since_us = match start {
            Start::Time(since) => since,
            // Resume strictly after the last entry counted.
            Start::AfterCursor {
                fallback_since_us, ..
            } => Some(fallback_since_us),
        };
        let spec = text::TextSpec {
            paths: source.files.clone(),
            identifier: source.identifier.clone(),
            year: source.year,
        };
        let window = Window { since_us, until_us };
        let summary = text::read(&spec, window, &mut on_entry)?;
        return Ok(ScanOutcome {
            entries: summary.entries,
            cursor_lost: false,
            last_cursor: None,
            last_realtime_us,
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
    let summary = journal::read(&spec, start, until_us, &mut on_entry)?;
    Ok(ScanOutcome {
        entries: summary.entries,
        cursor_lost: summary.cursor_lost,
        last_cursor: summary.last_cursor,
        last_realtime_us: summary.last_realtime_us,
    })
}

/// The whitelist files in force: the flags' files, or Debian's two (missing ones skipped,
/// with a note).
pub fn load_whitelist(files: &[PathBuf], notes: &mut Vec<String>) -> anyhow::Result<Whitelist> {
    if !files.is_empty() {
        return whitelist::load(files);
    }
    let defaults = whitelist::default_paths();
    let present: Vec<PathBuf> = defaults.iter().filter(|p| p.exists()).cloned().collect();
    if let Some(main) = defaults.first().filter(|p| !p.exists()) {
        notes.push(format!(
            "{} not found: statuses assume nothing is whitelisted (--whitelist-clients names the files)",
            main.display()
        ));
    }
    whitelist::load(&present)
}

/// Everything advice needs, loaded from the files the flags name.
pub struct AdviceInputs {
    pub whitelist: Whitelist,
    pub ignored: Vec<String>,
    pub grouper: Grouper,
    pub thresholds: Thresholds,
    pub notes: Vec<String>,
}

impl AdviceInputs {
    pub fn load(advice: &AdviceArgs, source: &SourceArgs) -> anyhow::Result<Self> {
        let mut notes = Vec::new();
        let whitelist = load_whitelist(&advice.whitelist.paths, &mut notes)?;
        let ignored = whitelist::load_ignore(&advice.ignore_file)?;
        Ok(AdviceInputs {
            whitelist,
            ignored,
            grouper: grouper(source)?,
            thresholds: Thresholds {
                min_count: advice.min_count,
                ..Thresholds::default()
            },
            notes,
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

    /// The report over the days `[first, last]` of `tally`, with these inputs' notes.
    pub fn report(&self, tally: &Tally, first: i64, last: i64, show: &ShowArgs) -> Report {
        let mut report = assemble(tally, first, last, &self.context());
        report.show_all = show.all;
        report.suggest_regex = show.regex;
        report.notes.extend(self.notes.iter().cloned());
        report
    }
}

/// Scans the window the flags give and builds the report.
fn build(args: &ReportArgs) -> anyhow::Result<Report> {
    let now = Timestamp::now();
    let since_us = args
        .window
        .since
        .as_deref()
        .map(|s| parse_time("--since", s, now))
        .transpose()?;
    let until_us = args
        .window
        .until
        .as_deref()
        .map(|s| parse_time("--until", s, now))
        .transpose()?;
    let inputs = AdviceInputs::load(&args.advice, &args.source)?;
    let mut tally = Tally::default();
    scan(
        &args.source,
        Start::Time(since_us),
        until_us,
        &inputs.grouper,
        &mut tally,
    )?;
    let (first, last) = tally.span().unwrap_or((day_of(0), day_of(0)));
    let mut report = inputs.report(&tally, first, last, &args.show);
    report.since_us = since_us;
    report.until_us = until_us;
    Ok(report)
}

fn write_report(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => render::table::write(
            report,
            render::table::colour_wanted(io::stdout().is_terminal()),
            out,
        ),
        Format::Json => render::json::write(report, out),
        Format::Counts => render::counts::write(report, out),
    }
}

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let report = build(args)?;
    let mut out = io::stdout().lock();
    write_report(&report, args.format, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Suggested whitelist lines, each after a `# why` comment, ready to paste.
pub fn whitelist(args: &ReportArgs) -> anyhow::Result<()> {
    let report = build(args)?;
    let mut out = io::stdout().lock();
    for (finding, line) in report.suggestion_lines() {
        writeln!(
            out,
            "# {}: {}",
            crate::escape::printable(&finding.key.to_string()),
            crate::escape::printable(&finding.advice.reason)
        )?;
        // Built from validated host names only: written as is, so a regex keeps its backslashes.
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// Man page or shell completions on stdout, for packaging.
pub fn generate(what: Generate) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut command = crate::cli::Cli::command();
    let mut out = io::stdout().lock();
    let shell = match what {
        Generate::Man => {
            return clap_mangen::Man::new(command)
                .render(&mut out)
                .context("cannot write the man page");
        }
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "postgrey-advisor", &mut out);
    Ok(())
}
