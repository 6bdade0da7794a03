//! `--format counts`: the classic `grep | sort | uniq -c | sort -nr` one-liner, done right —
//! `new` greylistings per registrable domain, most first, ties by name — followed by the
//! group's status and verdict (`-` for none), so `awk '{print $1, $2}'` still gives the
//! classic two columns.

use std::io::{self, Write};

use crate::report::Report;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for finding in &report.groups {
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
