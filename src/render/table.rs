//! `--format table` (default): what was read and over which window, aligned columns that fit
//! 80 columns (the terminal's width when wider), a legend, why each verdict, and the
//! ready-to-paste whitelist lines. Colour only on a TTY and never with `NO_COLOR`.
//!
//! A group name too long for its column gets a line of its own, its figures on the next: names
//! are never cut, since they are pasted into whitelists and ignore files.

use std::io::{self, Write};

use crate::advice::{Status, Verdict, human_duration};
use crate::escape::printable;
use crate::render::local_time;
use crate::report::{Finding, Report};

/// The narrowest width a table is laid out for.
pub const MIN_WIDTH: usize = 80;

/// Whether to colour: a terminal, and the user did not ask for no colour (no-color.org).
pub fn colour_wanted(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The width to lay out for: the terminal's on a terminal, else `COLUMNS`; never below
/// [`MIN_WIDTH`].
pub fn width_wanted(is_terminal: bool) -> usize {
    let terminal = is_terminal
        .then(|| terminal_size::terminal_size_of(io::stdout()))
        .flatten()
        .map(|(w, _)| usize::from(w.0));
    let columns = || {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
    };
    terminal
        .or_else(columns)
        .unwrap_or(MIN_WIDTH)
        .max(MIN_WIDTH)
}

const HEADERS: [&str; 10] = [
    "",
    "NEW",
    "EARLY",
    "ELSEWHERE",
    "PASSED",
    "MEDIAN",
    "IPS",
    "NETS",
    "HOSTS",
    "VERDICT",
];

const LEGEND: &str = "NEW: greylisted the first time. EARLY: retried before the delay was \
    over. ELSEWHERE: the same mail retried from another network (what multi-server senders do). \
    PASSED: passed after the delay. MEDIAN: wait before passing. IPS, NETS, HOSTS: distinct \
    addresses, networks and names. VERDICT: the advice on an undecided group; whitelisted or \
    ignored once decided; partly/ when some of its clients are whitelisted already.";

/// The VERDICT cell: the decision once made, else the advice.
fn verdict_text(finding: &Finding) -> String {
    let verdict = finding.advice.verdict.map_or("-", |v| v.as_str());
    match finding.advice.status {
        Status::Whitelisted | Status::Ignored => finding.advice.status.as_str().to_owned(),
        Status::PartlyWhitelisted => format!("partly/{verdict}"),
        Status::Candidate => verdict.to_owned(),
    }
}

fn colour_of(finding: &Finding) -> Option<&'static str> {
    match finding.advice.verdict {
        Some(Verdict::Whitelist) => Some("\x1b[32m"),
        Some(Verdict::SpamLike) => Some("\x1b[31m"),
        Some(Verdict::Review) => Some("\x1b[33m"),
        None => None,
    }
}

/// The cells of one row after the name.
fn figures(finding: &Finding) -> [String; 9] {
    let e = &finding.evidence;
    [
        e.new.to_string(),
        e.early_retry.to_string(),
        e.retried_from_other_net.to_string(),
        e.passed_after_delay.to_string(),
        e.median_delay_s.map_or("-".to_owned(), human_duration),
        e.distinct_ips.to_string(),
        e.distinct_nets.to_string(),
        e.distinct_hosts.to_string(),
        verdict_text(finding),
    ]
}

/// One table (groups or unresolved networks) laid out within `width`.
fn section(
    title: &str,
    findings: &[&Finding],
    colour: bool,
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rows: Vec<(String, [String; 9], Option<&str>)> = findings
        .iter()
        .map(|f| (printable(&f.key.to_string()), figures(f), colour_of(f)))
        .collect();
    let mut widths = [0usize; 10];
    for (i, header) in HEADERS.iter().enumerate() {
        widths[i] = header.len();
    }
    widths[0] = title.len();
    for (name, cells, _) in &rows {
        widths[0] = widths[0].max(name.chars().count());
        for (i, cell) in cells.iter().enumerate() {
            widths[i + 1] = widths[i + 1].max(cell.chars().count());
        }
    }
    let figures_width: usize = widths[1..].iter().sum();
    // Two spaces between columns when the longest name fits that way, else one; names that
    // still do not fit get a line of their own.
    let gap = if widths[0] + figures_width + 2 * 9 <= width {
        2
    } else {
        1
    };
    let name_width = widths[0].min(width.saturating_sub(figures_width + gap * 9));
    let line = |name: &str, cells: &[String], colour: Option<&str>| -> String {
        let mut text = format!("{name:<name_width$}");
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(&" ".repeat(gap));
            let w = widths[i + 1];
            if i == cells.len() - 1 {
                match colour {
                    Some(code) => text.push_str(&format!("{code}{cell}\x1b[0m")),
                    None => text.push_str(cell),
                }
            } else {
                text.push_str(&format!("{cell:>w$}"));
            }
        }
        text.trim_end().to_owned()
    };
    let headers: Vec<String> = HEADERS[1..].iter().map(|h| (*h).to_owned()).collect();
    writeln!(out, "{}", line(title, &headers, None))?;
    for (name, cells, code) in &rows {
        let code = if colour { *code } else { None };
        if name.chars().count() > name_width {
            writeln!(out, "{name}")?;
            writeln!(out, "{}", line("", cells, code))?;
        } else {
            writeln!(out, "{}", line(name, cells, code))?;
        }
    }
    Ok(())
}

/// `text` wrapped to `width`, every line after the first indented further.
fn wrapped(text: &str, first: &str, rest: &str, width: usize) -> String {
    let options = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(false);
    textwrap::fill(text, options)
}

/// The window in words, in local time.
fn window_words(report: &Report) -> String {
    match (report.since_us, report.until_us) {
        (None, None) => String::from("Window: all data the source holds."),
        (Some(since), None) => format!("Window: from {} on.", local_time(since)),
        (None, Some(until)) => format!("Window: until {}.", local_time(until)),
        (Some(since), Some(until)) => {
            format!("Window: {} to {}.", local_time(since), local_time(until))
        }
    }
}

/// The table laid out for `width` columns (at least [`MIN_WIDTH`]).
pub fn write_within(
    report: &Report,
    colour: bool,
    width: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let width = width.max(MIN_WIDTH);
    if let Some(headline) = report.headline() {
        writeln!(out, "{}\n", wrapped(&headline, "", "  ", width))?;
    }
    writeln!(out, "{}", wrapped(&window_words(report), "", "  ", width))?;
    if let Some(read) = report.read_words(local_time) {
        writeln!(out, "{}", wrapped(&printable(&read), "", "  ", width))?;
    }
    let t = &report.totals;
    writeln!(
        out,
        "{} postgrey lines, {} greylisted, {} untrusted skipped, {} malformed",
        t.postgrey_lines, t.greylisted, t.untrusted_skipped, t.malformed
    )?;
    if let Some(settings) = report.settings_words() {
        writeln!(out, "{}", wrapped(&printable(&settings), "", "  ", width))?;
    }
    let groups: Vec<&Finding> = report.shown(&report.groups).collect();
    let hidden = report.groups.len() - groups.len();
    let unresolved: Vec<&Finding> = report.shown(&report.unresolved).collect();
    let hidden_unresolved = report.unresolved.len() - unresolved.len();
    writeln!(out)?;
    if groups.is_empty() {
        let why = report.empty_words().unwrap_or_else(|| {
            format!(
                "No sender group was greylisted {} times or more.",
                report.min_count
            )
        });
        writeln!(out, "{}", wrapped(&printable(&why), "", "", width))?;
    } else {
        section("GROUP", &groups, colour, width, out)?;
    }
    if !unresolved.is_empty() {
        writeln!(out)?;
        section("UNRESOLVED", &unresolved, colour, width, out)?;
    }
    if hidden + hidden_unresolved > 0 {
        writeln!(
            out,
            "\n{} more groups greylisted fewer than {} times (--all shows them).",
            hidden + hidden_unresolved,
            report.min_count
        )?;
    }
    if !groups.is_empty() || !unresolved.is_empty() {
        writeln!(out, "\n{}", wrapped(LEGEND, "", "", width))?;
    }
    let mut reasons = groups
        .iter()
        .chain(unresolved.iter())
        .filter(|f| !f.advice.reason.is_empty())
        .peekable();
    if reasons.peek().is_some() {
        writeln!(out, "\nWhy:")?;
        for f in reasons {
            let text = format!(
                "{}: {}",
                printable(&f.key.to_string()),
                printable(&f.advice.reason)
            );
            writeln!(out, "{}", wrapped(&text, "  ", "      ", width))?;
        }
    }
    let mut suggestions = report.suggestion_lines().peekable();
    if suggestions.peek().is_some() {
        writeln!(
            out,
            "\nSuggested for /etc/postgrey/whitelist_clients.local (each after why):"
        )?;
        for (f, line) in suggestions {
            // The rule that fired, the part of the reason before its figures.
            let rule = f.advice.reason.split(':').next().unwrap_or_default();
            let comment = format!("# {}: {}", printable(&f.key.to_string()), printable(rule));
            writeln!(out, "{}", wrapped(&comment, "  ", "  #   ", width))?;
            writeln!(out, "  {line}")?;
        }
    }
    let accepted = report.accepted_words();
    if !accepted.is_empty() {
        writeln!(out, "\nAccepted lines at work:")?;
        for words in &accepted {
            writeln!(out, "{}", wrapped(&printable(words), "  ", "    ", width))?;
        }
    }
    if report.by_mx {
        super::by_mx::write(report, out)?;
    }
    for note in &report.notes {
        writeln!(
            out,
            "\n{}",
            wrapped(&printable(note), "Note: ", "  ", width)
        )?;
    }
    Ok(())
}
