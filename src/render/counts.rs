//! `--format counts`: the classic `grep | sort | uniq -c | sort -nr` one-liner, done right —
//! `new` greylistings per registrable domain or unresolved network, most first, ties by name —
//! followed by the group's status and verdict (`-` for none), so `awk '{print $1, $2}'` still
//! gives the classic two columns. Like the table: groups below `--min-count` only with `--all`,
//! and never a group without a greylisting (one seen only passing).

use std::io::{self, Write};

use crate::report::{Finding, Report};

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut rows: Vec<&Finding> = report
        .shown(&report.groups)
        .chain(report.shown(&report.unresolved))
        .filter(|f| f.evidence.new > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.evidence
            .new
            .cmp(&a.evidence.new)
            .then_with(|| a.key.to_string().cmp(&b.key.to_string()))
    });
    for finding in rows {
        writeln!(
            out,
            "{:>7} {} {} {}",
            finding.evidence.new,
            crate::escape::printable(&finding.key.to_string()),
            finding.advice.status,
            finding.advice.verdict.map_or("-", |v| v.as_str())
        )?;
    }
    Ok(())
}
