//! `--format table` (default): aligned columns for a terminal, colour only on a TTY and never
//! with `NO_COLOR`, then the ready-to-paste whitelist lines.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table, presets};

use crate::advice::{Verdict, human_duration};
use crate::escape::printable;
use crate::report::{Finding, Report};

/// Whether to colour: a terminal, and the user did not ask for no colour (no-color.org).
pub fn colour_wanted(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn verdict_cell(finding: &Finding, colour: bool) -> Cell {
    let text = finding.advice.verdict.map_or("-", |v| v.as_str());
    let cell = Cell::new(text);
    match (colour, finding.advice.verdict) {
        (true, Some(Verdict::Whitelist)) => cell.fg(Color::Green),
        (true, Some(Verdict::SpamLike)) => cell.fg(Color::Red),
        (true, Some(Verdict::Review)) => cell.fg(Color::Yellow),
        _ => cell,
    }
}

fn section(
    title: &str,
    findings: Vec<&Finding>,
    colour: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if !colour {
        table.force_no_tty();
    }
    table.set_header(vec![
        title,
        "NEW",
        "EARLY",
        "ELSEWHERE",
        "PASSED",
        "MEDIAN",
        "IPS",
        "NETS",
        "HOSTS",
        "STATUS",
        "VERDICT",
    ]);
    for f in findings {
        let e = &f.evidence;
        table.add_row(vec![
            Cell::new(printable(&f.key.to_string())),
            Cell::new(e.new),
            Cell::new(e.early_retry),
            Cell::new(e.retried_from_other_net),
            Cell::new(e.passed_after_delay),
            Cell::new(e.median_delay_s.map_or("-".to_owned(), human_duration)),
            Cell::new(e.distinct_ips),
            Cell::new(e.distinct_nets),
            Cell::new(e.distinct_hosts),
            Cell::new(f.advice.status.as_str()),
            verdict_cell(f, colour),
        ]);
    }
    for index in 1..=8 {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub fn write(report: &Report, colour: bool, out: &mut dyn Write) -> io::Result<()> {
    let t = &report.totals;
    writeln!(
        out,
        "{} postgrey lines, {} greylisted, {} untrusted skipped, {} malformed",
        t.postgrey_lines, t.greylisted, t.untrusted_skipped, t.malformed
    )?;
    let groups: Vec<&Finding> = report.shown(&report.groups).collect();
    let hidden = report.groups.len() - groups.len();
    writeln!(out)?;
    if groups.is_empty() {
        writeln!(
            out,
            "No sender group was greylisted {} times or more.",
            report.min_count
        )?;
    } else {
        section("GROUP", groups, colour, out)?;
    }
    let unresolved: Vec<&Finding> = report.shown(&report.unresolved).collect();
    let hidden_unresolved = report.unresolved.len() - unresolved.len();
    if !unresolved.is_empty() {
        writeln!(out)?;
        section("UNRESOLVED", unresolved, colour, out)?;
    }
    if hidden + hidden_unresolved > 0 {
        writeln!(
            out,
            "\n{} more groups greylisted fewer than {} times (--all shows them).",
            hidden + hidden_unresolved,
            report.min_count
        )?;
    }
    let mut reasons = report
        .shown(&report.groups)
        .filter(|f| !f.advice.reason.is_empty())
        .peekable();
    if reasons.peek().is_some() {
        writeln!(out, "\nWhy:")?;
        for f in reasons {
            writeln!(
                out,
                "  {}: {}",
                printable(&f.key.to_string()),
                printable(&f.advice.reason)
            )?;
        }
    }
    let mut suggestions = report.suggestion_lines().peekable();
    if suggestions.peek().is_some() {
        writeln!(
            out,
            "\nSuggested for /etc/postgrey/whitelist_clients.local:"
        )?;
        for (f, line) in suggestions {
            writeln!(out, "  {}    # {}", line, printable(&f.key.to_string()))?;
        }
    }
    for note in &report.notes {
        writeln!(out, "\nNote: {}", printable(note))?;
    }
    Ok(())
}
