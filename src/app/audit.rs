//! `postgrey-advisor audit`: prints the findings in the whitelist files as `file:line: message`;
//! exit 1 when there is any (for CI of configuration repositories), 0 when there is none. Notes
//! (`file:line: note: …`) are printed too, and do not change the exit status.

use std::io::Write;

use anyhow::Context;

use crate::cli::AuditArgs;
use crate::whitelist;

pub fn audit(args: &AuditArgs) -> anyhow::Result<i32> {
    let paths = if args.whitelist.paths.is_empty() {
        whitelist::default_paths()
    } else {
        args.whitelist.paths.clone()
    };
    let mut files = Vec::new();
    for path in &paths {
        if let Some(text) = whitelist::read_file(path)? {
            files.push((path.display().to_string(), text));
        }
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let findings = whitelist::audit_files(&borrowed);
    let mut out = std::io::stdout().lock();
    for finding in &findings {
        // A finding quotes the file's text, which may hold anything.
        let shown = crate::escape::printable(&finding.to_string());
        writeln!(out, "{shown}").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(if findings.iter().all(|f| f.note) {
        0
    } else {
        1
    })
}
