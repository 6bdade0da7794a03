//! `report` and `whitelist`: read a source over a window, tally, advise, render. Never touches
//! the timer job's state.

use std::io::{self, IsTerminal, Write};

use anyhow::Context as _;
use jiff::Timestamp;

use super::inputs::{AdviceInputs, Days, parse_time, scan};
use crate::cli::{Format, Generate, ReportArgs};
use crate::render;
use crate::report::Report;
use crate::source::journal::Start;
use crate::tally::Tally;

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
    let outcome = scan(
        &args.source,
        Start::Time(since_us),
        until_us,
        &inputs.grouper,
        &mut tally,
    )?;
    // The scan already kept to the window: report every day it saw.
    let (first, last) = tally.span().unwrap_or((0, 0));
    let mut report = inputs.report(&tally, Days { first, last }, &args.show);
    report.notes.extend(outcome.notes);
    report.since_us = since_us;
    report.until_us = until_us;
    // A week's tally is hundreds of thousands of small allocations, and freeing them one by one
    // took a tenth of a report: the process ends soon after, and the system takes them back.
    std::mem::forget(tally);
    Ok(report)
}

/// The report in the format asked for.
pub fn write_report(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
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
    // Like the tally in `build`: left to the end of the process.
    std::mem::forget(report);
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
