//! `postgrey-advisor accept` and `ignore`: append domains to `whitelist_clients.local` or to the
//! ignore file (see `crate::edit` for how the file is kept safe), skipping what is already there.
//! For `accept` that is a domain an entry already covers, in the file or in postgrey's main
//! whitelist beside it (`whitelist_clients` for `whitelist_clients.local`). Already there is
//! success (exit 0, said on stderr), so scripts can repeat a command.
//!
//! `ignore` takes what the postmaster sees: a host name pasted from the log stands for its
//! group (the registrable domain the report shows), an address or network for the /24 (/64)
//! block unresolved clients are reported by.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ipnet::IpNet;

use crate::cli::{AcceptArgs, IgnoreArgs};
use crate::edit::{self, Change};
use crate::error::Failure;
use crate::event::ClientName;
use crate::group::{GroupKey, Grouper};
use crate::postgrey::Settings;
use crate::whitelist;

/// postgrey rereads its whitelists on SIGHUP; Debian 12's unit has no reload for it.
fn reload_hint() -> String {
    format!(
        "postgrey rereads its whitelists on SIGHUP: {} (or accept --reload)",
        crate::reload::SYSTEMD_COMMAND
    )
}

pub fn accept(args: &AcceptArgs) -> anyhow::Result<()> {
    let mut regex = vec![args.regex; args.domains.len()];
    let mut given = Vec::new();
    for (index, input) in args.domains.iter().enumerate() {
        // A line `whitelist --regex` suggested, pasted: its name, written as a regex again.
        match name_of_suggested_regex(input) {
            Some(name) => {
                regex[index] = true;
                given.push(name);
            }
            None => given.push(input.clone()),
        }
    }
    let domains = normalized(&given)?;
    let path = &args.whitelist_local;
    let settings = crate::postgrey::load(args.postgrey_config.as_deref())?;
    let mut existing = main_whitelist_beside(path)?;
    // When postgrey's options name its whitelist files, what it reads besides the file
    // written to covers domains as well, and a file it does not read would change nothing.
    let named = settings.whitelist_clients != Settings::default().whitelist_clients;
    let beside = path.to_str().and_then(|l| l.strip_suffix(".local"));
    let others = settings
        .whitelist_clients
        .iter()
        .filter(|p| named && *p != path && p.to_str() != beside);
    for other in others {
        if let Some(bytes) = edit::read_optional(other)? {
            existing.extend(whitelist::parse(
                &String::from_utf8_lossy(&bytes),
                &other.display().to_string(),
            ));
        }
    }
    if named && !settings.whitelist_clients.contains(path) {
        eprintln!(
            "postgrey-advisor: warning: postgrey does not read {} (it reads {}{}): name one of those with --whitelist-local",
            path.display(),
            settings
                .whitelist_clients
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            settings
                .config
                .as_ref()
                .map(|c| format!(", as its options in {} say", c.display()))
                .unwrap_or_default()
        );
    }
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
                lines.push(whitelist::suggestion_line(domain, regex[index]));
            }
        }
        lines
    })?;
    if !args.dry_run && added {
        if args.reload {
            let done = crate::reload::reload(&settings).with_context(|| {
                format!(
                    "{} was changed, but postgrey was not told to reread it",
                    path.display()
                )
            })?;
            println!("{done}");
        } else {
            println!("{}", reload_hint());
        }
    }
    Ok(())
}

pub fn ignore(args: &IgnoreArgs) -> anyhow::Result<()> {
    let settings = crate::postgrey::load(args.postgrey_config.as_deref())?;
    let grouper = Grouper::builtin().with_network(settings.network());
    let mut entries = Vec::new();
    for input in &args.domains {
        let (entry, widened) = ignore_entry(input, &grouper)?;
        if let Some(why) = widened {
            println!("{input}: ignoring {entry}, {why}");
        }
        entries.push(entry);
    }
    let path = &args.ignore_file;
    append_new(path, args.dry_run, |before| {
        let text = before.map(String::from_utf8_lossy).unwrap_or_default();
        let existing = whitelist::parse_ignore_list(&text);
        let mut lines: Vec<String> = Vec::new();
        for domain in &entries {
            if let Some(there) = existing.iter().find(|e| covers(e, domain)) {
                let how = if there == domain {
                    String::from("already")
                } else {
                    format!("already covered by {there}")
                };
                note_skipped(domain, &format!("{how} in {}", path.display()));
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

/// Whether the ignore entry `entry` covers `wanted` (the same, or a domain above it).
fn covers(entry: &str, wanted: &str) -> bool {
    entry == wanted
        || (wanted.parse::<IpNet>().is_err()
            && wanted
                .strip_suffix(entry)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The ignore file entry for what the postmaster typed, and why it is wider when it is: the
/// group of a host name, the reported block of an address or network.
fn ignore_entry(input: &str, grouper: &Grouper) -> anyhow::Result<(String, Option<String>)> {
    let usage = |message: String| -> anyhow::Error { Failure::Usage(message).into() };
    let network = grouper.network();
    let (v4, v6) = (network.ipv4_prefix, network.ipv6_prefix);
    if let Ok(address) = input.parse::<std::net::IpAddr>() {
        let block = grouper.network_of(address);
        return Ok((
            block.to_string(),
            Some(format!(
                "the block unresolved clients are reported by (/{v4} for IPv4, /{v6} for IPv6)"
            )),
        ));
    }
    if let Ok(net) = input.parse::<IpNet>() {
        let block = grouper.network_of(net.network());
        if net.prefix_len() != block.prefix_len() {
            let each = if net.network().is_ipv4() { v4 } else { v6 };
            return Err(usage(format!(
                "{input}: unresolved clients are reported by /{v4} (IPv4) and /{v6} (IPv6) blocks, \
                 and the ignore file matches those: ignore {block} (or each /{each} of a wider network)"
            )));
        }
        let widened = (block != net).then(|| String::from("its network address"));
        return Ok((block.to_string(), widened));
    }
    let domain = whitelist::normalize_domain(input).map_err(|e| usage(e.to_string()))?;
    let group = match grouper.key(Some(&ClientName::Host(domain.clone())), None) {
        Some(GroupKey::Domain(group)) => group,
        _ => domain.clone(),
    };
    if group == domain {
        return Ok((domain, None));
    }
    Ok((
        group.clone(),
        Some(format!(
            "the group (registrable domain) it belongs to: every host of {group} is ignored"
        )),
    ))
}

/// The name in a line `whitelist --regex` suggests (`/(^|\.)mx\.example\.com$/`), or `None`
/// for anything else (an ordinary name, or a regex of another shape).
fn name_of_suggested_regex(line: &str) -> Option<String> {
    let inner = line.strip_prefix("/(^|\\.)")?.strip_suffix("$/")?;
    let mut name = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next().filter(|c| !c.is_ascii_alphanumeric())?),
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => name.push(c),
            _ => return None,
        }
    }
    Some(name)
}

/// Reads the file, asks `new_lines` what to add, and appends it under a dated comment (or shows
/// the diff). Returns whether anything was written; nothing to add (all already there) is no
/// error.
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
        println!("nothing to add to {}: already there", path.display());
        return Ok(false);
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
