//! `postgrey-advisor audit`: prints the findings in the whitelist files as `file:line: message`.
//! Exit 0 without findings and 1 with (for CI of configuration repositories); a file that cannot
//! be read is 66 (EX_NOINPUT), so a broken check is never mistaken for findings. Notes
//! (`file:line: note: …`) are printed too, and do not change the exit status.
//!
//! Findings in the whitelist postgrey ships (a dpkg conffile) cannot be fixed in place without
//! dpkg asking at every upgrade: the fix, an entry that does what the broken one meant, belongs
//! in the `.local` file postgrey reads after it. The audit says so.

use std::io::Write;

use anyhow::Context;

use crate::cli::AuditArgs;
use crate::whitelist;

pub const EXIT_FINDINGS: i32 = 1;
/// sysexits' EX_NOINPUT: an input file did not exist or was not readable.
pub const EXIT_UNREADABLE: i32 = 66;

/// The first line of the whitelist_clients postgrey ships (and Debian installs as a conffile).
const SHIPPED_HEADER: &str = "# postgrey whitelist for mail client hostnames";

fn is_shipped_list(text: &str) -> bool {
    text.lines()
        .next()
        .is_some_and(|l| l.trim_end() == SHIPPED_HEADER)
        && text.contains("# postgrey version:")
}

/// The `.local` file postgrey reads after `file`: beside it when it has the usual name.
fn local_beside(file: &str) -> String {
    if file.ends_with("whitelist_clients") {
        format!("{file}.local")
    } else {
        String::from(crate::cli::DEFAULT_WHITELIST_LOCAL)
    }
}

pub fn audit(args: &AuditArgs) -> anyhow::Result<i32> {
    let settings = super::inputs::postgrey_settings(&args.whitelist)?;
    let (paths, _) = super::inputs::whitelist_paths(&args.whitelist, &settings);
    let mut files = Vec::new();
    for path in &paths {
        match whitelist::read_file(path) {
            Ok(Some(text)) => files.push((path.display().to_string(), text)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("postgrey-advisor: {e:#}");
                return Ok(EXIT_UNREADABLE);
            }
        }
    }
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let findings = whitelist::audit_files(&borrowed);
    let mut out = std::io::stdout().lock();
    for finding in &findings {
        // A finding quotes the file's text, which may hold anything; its regexes are meant to
        // be copied back, backslashes and all.
        let shown = crate::escape::with_hidden_shown(&finding.to_string());
        writeln!(out, "{shown}").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    for (file, text) in &files {
        if is_shipped_list(text) && findings.iter().any(|f| &f.file == file && !f.note) {
            eprintln!(
                "postgrey-advisor: {file} is the list postgrey ships (a conffile): leave it as it \
                 is and put entries that fix these findings in {}, which postgrey reads \
                 after it",
                local_beside(file)
            );
        }
    }
    Ok(if findings.iter().all(|f| f.note) {
        0
    } else {
        EXIT_FINDINGS
    })
}
