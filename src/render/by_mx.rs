//! `report --by-mx`: after the main table, a table per MX host of the groups it greylisted.

use std::collections::BTreeSet;
use std::io::{self, Write};

use crate::escape::printable;
use crate::report::{Finding, Report};

/// One table per MX host: the groups shown in the main tables that it greylisted and how
/// often, most greylisted first (ties by name).
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let shown: Vec<&Finding> = report
        .shown(&report.groups)
        .chain(report.shown(&report.unresolved))
        .collect();
    let hosts: BTreeSet<&str> = if report.mx_hosts.is_empty() {
        shown
            .iter()
            .flat_map(|f| f.evidence.mx.iter().map(|(host, _)| host))
            .collect()
    } else {
        report.mx_hosts.iter().map(|h| h.host.as_str()).collect()
    };
    if hosts.is_empty() {
        return writeln!(out, "\nNo MX host was logged: --by-mx has nothing to show.");
    }
    for host in hosts {
        let totals = report.mx_hosts.iter().find(|h| h.host == host);
        let mut rows: Vec<(String, u64)> = shown
            .iter()
            .filter_map(|f| {
                let n = f.evidence.mx.get(host).filter(|&n| n > 0)?;
                Some((printable(&f.key.to_string()), n))
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let heading = match totals {
            Some(t) => format!(
                "MX {}: {} entries, {} greylisted",
                printable(host),
                t.entries,
                t.greylisted
            ),
            None => format!("MX {}", printable(host)),
        };
        writeln!(out, "\n{heading}")?;
        let name_width = rows
            .iter()
            .map(|(name, _)| name.chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        writeln!(out, "  {:<name_width$}  GREYLISTED", "GROUP")?;
        for (name, n) in rows {
            writeln!(out, "  {name:<name_width$}  {n:>10}")?;
        }
    }
    Ok(())
}
