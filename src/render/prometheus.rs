//! node_exporter textfile-collector metrics (Prometheus text exposition format 0.0.4).
//! Only the top groups get a labelled series, so the label set stays bounded however many
//! spam sources appear.

use std::fmt::Write;

use crate::report::{Finding, Report};

/// Escapes a label value: backslash, double quote and line feed, per the exposition format.
/// Other control characters cannot occur in a group name, but are dropped to be sure.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

pub struct RunMetrics {
    pub last_run_unix_s: f64,
    pub entries_read: u64,
    pub duration_s: f64,
}

/// A labelled metric of the top groups: name, help, value.
type PerGroup = (&'static str, &'static str, fn(&Finding) -> u64);

pub fn render(report: &Report, run: &RunMetrics, top: usize) -> String {
    let mut out = String::new();
    let mut top_groups: Vec<_> = report
        .groups
        .iter()
        .chain(report.unresolved.iter())
        .collect();
    top_groups.sort_by(|a, b| {
        b.evidence
            .greylisted()
            .cmp(&a.evidence.greylisted())
            .then_with(|| a.key.cmp(&b.key))
    });
    // The most greylisted groups, each with a series per metric.
    let per_group: [PerGroup; 2] = [
        (
            "postgrey_advisor_greylisted_total",
            "Greylistings in the summary window, per sender group (top groups only).",
            |f| f.evidence.greylisted(),
        ),
        (
            "postgrey_advisor_delay_seconds_total",
            "Delay of the mails that passed after greylisting in the summary window, per sender group (top groups only).",
            |f| f.evidence.delay_total_s,
        ),
    ];
    for (name, help, value) in per_group {
        let _ = writeln!(out, "# HELP {name} {help}");
        // `_total` names a counter, but these values are per window and per run and go down as
        // well: `untyped` claims no type, so neither `rate()` nor promtool's lint misreads them.
        let _ = writeln!(out, "# TYPE {name} untyped");
        for f in top_groups.iter().take(top) {
            let _ = writeln!(
                out,
                "{name}{{domain=\"{}\",status=\"{}\"}} {}",
                label_value(&f.key.to_string()),
                f.advice.status,
                value(f)
            );
        }
    }
    let unreviewed = report.unreviewed().count();
    let singles: [(&str, &str, &str, String); 7] = [
        (
            "postgrey_advisor_unreviewed_groups",
            "gauge",
            "Sender groups with a verdict that are neither whitelisted nor ignored.",
            unreviewed.to_string(),
        ),
        (
            "postgrey_advisor_window_greylisted",
            "gauge",
            "All greylistings in the summary window.",
            report.totals.greylisted.to_string(),
        ),
        (
            "postgrey_advisor_window_delay_seconds",
            "gauge",
            "Delay of all mails that passed after greylisting in the summary window.",
            report.totals.delay_total_s.to_string(),
        ),
        (
            "postgrey_advisor_window_spared_delay_seconds",
            "gauge",
            "The part of it the suggested whitelist lines would have spared.",
            report.spared_delay_s().to_string(),
        ),
        (
            "postgrey_advisor_last_run_timestamp_seconds",
            "gauge",
            "When the last run finished.",
            format!("{:.3}", run.last_run_unix_s),
        ),
        (
            "postgrey_advisor_entries_read_total",
            "untyped",
            "Journal entries the last run read.",
            run.entries_read.to_string(),
        ),
        (
            "postgrey_advisor_run_duration_seconds",
            "gauge",
            "How long the last run took.",
            format!("{:.3}", run.duration_s),
        ),
    ];
    for (name, kind, help, value) in singles {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd\x07"), "a\\\"b\\\\c\\nd");
    }
}
