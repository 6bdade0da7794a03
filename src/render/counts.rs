//! `--format counts`: the classic `grep | sort | uniq -c | sort -nr` one-liner, done right —
//! `new` greylistings per registrable domain, most first, ties by name.

use std::io::{self, Write};

use crate::report::Report;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for finding in &report.groups {
        writeln!(
            out,
            "{:>7} {}",
            finding.evidence.new,
            crate::escape::printable(&finding.key.to_string())
        )?;
    }
    Ok(())
}
