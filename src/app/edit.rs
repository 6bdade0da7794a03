//! `postgrey-advisor accept` and `ignore`: append domains to `whitelist_clients.local` or to the
//! ignore file (see `crate::edit` for how the file is kept safe), refusing what is already there.
//! For `accept` that is a domain an entry already covers, in the file or in postgrey's main
//! whitelist beside it (`whitelist_clients` for `whitelist_clients.local`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::{AcceptArgs, IgnoreArgs};
use crate::edit::{self, Change};
use crate::error::Failure;
use crate::whitelist;

/// postgrey rereads its whitelists on SIGHUP, which is what `reload` sends.
const RELOAD_HINT: &str = "postgrey rereads its whitelists on SIGHUP: systemctl reload postgrey";

pub fn accept(args: &AcceptArgs) -> anyhow::Result<()> {
    let domains = normalized(&args.domains)?;
    let path = &args.whitelist_local;
    let mut existing = main_whitelist_beside(path)?;
    let added = append_new(path, args.dry_run, |before| {
        let text = before.map(String::from_utf8_lossy).unwrap_or_default();
        existing.extend(whitelist::parse(&text, &path.display().to_string()));
        let mut lines = Vec::new();
        for (index, domain) in domains.iter().enumerate() {
            if let Some(rule) = existing.rule_covering_domain(domain) {
                note_skipped(
                    domain,
                    &format!(
                        "already covered by {} at {}",
                        whitelist::shown_entry(&rule.entry),
                        rule.location()
                    ),
                );
            } else if let Some(earlier) = covered_by_earlier(&domains[..index], domain) {
                note_skipped(
                    domain,
                    &format!("already covered by {earlier}, given before it"),
                );
            } else {
                lines.push(whitelist::suggestion_line(domain, args.regex));
            }
        }
        lines
    })?;
    if !args.dry_run && added {
        println!("{RELOAD_HINT}");
    }
    Ok(())
}

pub fn ignore(args: &IgnoreArgs) -> anyhow::Result<()> {
    let domains = normalized(&args.domains)?;
    let path = &args.ignore_file;
    append_new(path, args.dry_run, |before| {
        let text = before.map(String::from_utf8_lossy).unwrap_or_default();
        let existing = whitelist::parse_ignore_list(&text);
        let mut lines: Vec<String> = Vec::new();
        for domain in &domains {
            if existing.contains(domain) {
                note_skipped(domain, &format!("already in {}", path.display()));
            } else if lines.contains(domain) {
                note_skipped(domain, "given twice");
            } else {
                lines.push(domain.clone());
            }
        }
        lines
    })?;
    Ok(())
}

/// Reads the file, asks `new_lines` what to add, and appends it under a dated comment (or shows
/// the diff). Returns whether anything was written; nothing to add is an error.
fn append_new(
    path: &Path,
    dry_run: bool,
    new_lines: impl FnOnce(Option<&[u8]>) -> Vec<String>,
) -> anyhow::Result<bool> {
    let _lock = if dry_run {
        None
    } else {
        Some(edit::lock_directory_of(path)?)
    };
    let before = edit::read_optional(path)?;
    let lines = new_lines(before.as_deref());
    if lines.is_empty() {
        bail!("nothing to add to {}", path.display());
    }
    let mut block = vec![edit::dated_comment(jiff::ZonedDateTime::now().date())];
    block.extend(lines.iter().cloned());
    let change = Change::append(path, before, &block);
    let mut out = std::io::stdout().lock();
    if dry_run {
        write!(out, "{}", change.diff()).context("cannot write to stdout")?;
        return Ok(false);
    }
    change.apply()?;
    writeln!(out, "added to {}:", path.display()).context("cannot write to stdout")?;
    for line in &lines {
        writeln!(out, "  {line}").context("cannot write to stdout")?;
    }
    Ok(true)
}

/// The main whitelist postgrey reads before `X.local`: `X`, if it exists.
fn main_whitelist_beside(local: &Path) -> anyhow::Result<whitelist::Whitelist> {
    let Some(main) = local.to_str().and_then(|l| l.strip_suffix(".local")) else {
        return Ok(whitelist::Whitelist::default());
    };
    Ok(match edit::read_optional(Path::new(main))? {
        Some(bytes) => whitelist::parse(&String::from_utf8_lossy(&bytes), main),
        None => whitelist::Whitelist::default(),
    })
}

fn normalized(domains: &[String]) -> anyhow::Result<Vec<String>> {
    domains
        .iter()
        .map(|d| whitelist::normalize_domain(d).map_err(|e| Failure::Usage(e.to_string()).into()))
        .collect()
}

fn covered_by_earlier<'a>(earlier: &'a [String], domain: &str) -> Option<&'a str> {
    earlier
        .iter()
        .find(|e| domain == e.as_str() || domain.ends_with(&format!(".{e}")))
        .map(String::as_str)
}

fn note_skipped(domain: &str, why: &str) {
    eprintln!("postgrey-advisor: not adding {domain}: {why}");
}
