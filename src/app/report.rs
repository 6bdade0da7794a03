//! `report` and `whitelist`: read a source over a window, tally, advise, render. Never touches
//! the timer job's state.

use std::io::{self, IsTerminal, Write};

use anyhow::Context as _;
use jiff::Timestamp;

use super::inputs::{AdviceInputs, Days, parse_time, scan};
use crate::cli::{
    Format, Generate, GenerateArgs, ReportArgs, ScanArgs, ShowArgs, WhitelistArgs, WhitelistFormat,
};
use crate::error::Failure;
use crate::render;
use crate::report::Report;
use crate::source::journal::Start;
use crate::tally::Tally;

/// Scans the window the flags give and builds the report.
fn build(scan_args: &ScanArgs, show: &ShowArgs) -> anyhow::Result<Report> {
    let ScanArgs {
        source,
        window,
        advice,
    } = scan_args;
    let now = Timestamp::now();
    let since_us = window
        .since
        .as_deref()
        .map(|s| parse_time("--since", s, now))
        .transpose()?;
    let until_us = window
        .until
        .as_deref()
        .map(|s| parse_time("--until", s, now))
        .transpose()?;
    if let (Some(since), Some(until)) = (since_us, until_us)
        && until <= since
    {
        return Err(Failure::Usage(format!(
            "--until {} ({}) is not after --since {} ({}): the window is empty",
            window.until.as_deref().unwrap_or_default(),
            render::rfc3339(until),
            window.since.as_deref().unwrap_or_default(),
            render::rfc3339(since),
        ))
        .into());
    }
    let inputs = AdviceInputs::load(advice, source)?;
    let mut tally = Tally::default();
    let outcome = scan(
        source,
        Start::Time(since_us),
        until_us,
        &inputs.grouper,
        &mut tally,
    )?;
    // The scan already kept to the window: report every day it saw.
    let (first, last) = tally.span().unwrap_or((0, 0));
    let mut report = inputs.report(&tally, Days { first, last }, show);
    report.notes.extend(outcome.notes);
    report.reading = Some(outcome.reading);
    report.since_us = since_us;
    report.until_us = until_us;
    // A week's tally is hundreds of thousands of small allocations, and freeing them one by one
    // took a tenth of a report: the process ends soon after, and the system takes them back.
    std::mem::forget(tally);
    Ok(report)
}

/// The report in the format asked for, through a buffer of its own: standard output is line
/// buffered, and every line of a table or of counts with `--all` was a write of its own.
pub fn write_report(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    match format {
        Format::Table => {
            let terminal = io::stdout().is_terminal();
            render::table::write_within(
                report,
                render::table::colour_wanted(terminal),
                render::table::width_wanted(terminal),
                &mut out,
            )
        }
        Format::Json => render::json::write(report, &mut out),
        Format::Counts => render::counts::write(report, &mut out),
    }?;
    out.flush()
}

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let mut report = build(&args.scan, &args.show)?;
    report.by_mx = args.by_mx;
    let mut out = io::stdout().lock();
    write_report(&report, args.format, &mut out)?;
    out.flush()?;
    // Like the tally in `build`: left to the end of the process.
    std::mem::forget(report);
    Ok(())
}

/// One suggestion of `whitelist --format json`.
#[derive(serde::Serialize)]
struct JsonSuggestion<'a> {
    group: String,
    line: &'a str,
    verdict: Option<&'static str>,
    status: &'static str,
    greylisted: u64,
    reason: &'a str,
}

/// Suggested whitelist lines, each after a `# why` comment, ready to paste.
pub fn whitelist(args: &WhitelistArgs) -> anyhow::Result<()> {
    let show = ShowArgs {
        all: false,
        regex: args.regex,
    };
    let report = build(&args.scan, &show)?;
    let mut out = io::stdout().lock();
    if args.format == WhitelistFormat::Json {
        let lines: Vec<(&crate::report::Finding, String)> = report.suggestion_lines().collect();
        let list: Vec<JsonSuggestion> = lines
            .iter()
            .map(|(f, line)| JsonSuggestion {
                group: f.key.to_string(),
                line,
                verdict: f.advice.verdict.map(|v| v.as_str()),
                status: f.advice.status.as_str(),
                greylisted: f.evidence.greylisted(),
                reason: &f.advice.reason,
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list).context("cannot write the suggestions")?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
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

/// Man pages or shell completions, for packaging.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let mut command = crate::cli::command();
    let mut out = io::stdout().lock();
    let shell = match args.what {
        Generate::Man => {
            return crate::man::render_main(&mut out).context("cannot write the man page");
        }
        Generate::ManPages => {
            let Some(dir) = &args.dir else {
                return Err(Failure::Usage(String::from("man-pages needs a directory")).into());
            };
            for name in crate::man::write_all(dir)? {
                writeln!(out, "{}", name.display())?;
            }
            return Ok(());
        }
        Generate::Bash => clap_complete::Shell::Bash,
        Generate::Zsh => clap_complete::Shell::Zsh,
        Generate::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut command, "postgrey-advisor", &mut out);
    Ok(())
}
