//! `postgrey-advisor audit`: entries of `whitelist_clients` files that do not do what they seem
//! to. Each finding names `file:line`.
//!
//! Checked: lines postgrey skips or dies on; regexes that let text be glued in front of their
//! first label or after their end (postgrey matches them anywhere in the name; a leading `\.`, also
//! after `.*`, is a label boundary and safe — such a regex only gets a note that it leaves out the
//! domain itself), that have an unescaped `.`, or that match every client or every client without
//! reverse DNS; names that can never match a host name (`*.example.com`, `.example.com`,
//! a dotted netmask); names that are public suffixes; the two-octet form, which postgrey makes a
//! /24 and not the /16 its comment promises; octal octets; host bits; networks that reach into
//! IPv4 through postgrey's `::a.b.c.d` view, or never match because they are IPv4-mapped; and
//! entries repeated or already covered by another entry, also across files.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use regex_syntax::ast::Ast;

use super::{
    Network, Rule, RuleKind, Whitelist, as_u128, mask_128, name_is_within, parse, perl_regex,
    shown_entry,
};

mod anchors;

use anchors::Anchor;

/// Something in a whitelist file worth a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub message: String,
    /// Worth knowing but not wrong (a safe regex that leaves out the domain itself): no reason
    /// to fail.
    pub note: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = if self.note { "note: " } else { "" };
        write!(f, "{}:{}: {note}{}", self.file, self.line, self.message)
    }
}

/// What the checks of one entry say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lint {
    Finding(String),
    Note(String),
}

/// Audits one file's text; `file` names it in the findings.
pub fn audit(text: &str, file: &str) -> Vec<Finding> {
    audit_files(&[(file, text)])
}

/// Audits files read in this order (as postgrey reads them), so duplicates across files are
/// found too. Findings come in file order, then line order.
pub fn audit_files(files: &[(&str, &str)]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut all = Whitelist::default();
    for (file, text) in files {
        let list = parse(text, file);
        findings.extend(list.problems().iter().map(|p| Finding {
            file: p.file.clone(),
            line: p.line,
            message: p.message.clone(),
            note: false,
        }));
        let raw_lines: Vec<&str> = text.split('\n').collect();
        for rule in list.rules() {
            let raw = raw_lines.get(rule.line - 1).copied().unwrap_or("");
            findings.extend(lint(rule, raw).into_iter().map(|lint| match lint {
                Lint::Finding(message) => finding(rule, message),
                Lint::Note(message) => Finding {
                    note: true,
                    ..finding(rule, message)
                },
            }));
        }
        all.extend(list);
    }
    findings.extend(repeated(all.rules()));
    let order: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (*f, i))
        .collect();
    findings.sort_by_key(|f| (order.get(f.file.as_str()).copied(), f.line));
    findings
}

fn finding(rule: &Rule, message: String) -> Finding {
    Finding {
        file: rule.file.clone(),
        line: rule.line,
        message,
        note: false,
    }
}

fn lint(rule: &Rule, raw_line: &str) -> Vec<Lint> {
    match &rule.kind {
        RuleKind::Regex(regex) => lint_regex(&rule.entry, regex),
        RuleKind::Name(name) => lint_name(&rule.entry, name, raw_line)
            .into_iter()
            .map(Lint::Finding)
            .collect(),
        RuleKind::Network(network) => lint_network(&rule.entry, network)
            .into_iter()
            .map(Lint::Finding)
            .collect(),
        RuleKind::Unevaluable => Vec::new(),
    }
}

fn lint_regex(entry: &str, regex: &regex::Regex) -> Vec<Lint> {
    let e = shown_entry(entry);
    if regex.is_match("") {
        return vec![Lint::Finding(format!(
            "regex {e} matches every client name"
        ))];
    }
    let mut found = Vec::new();
    // The entry compiled, so it translates and parses again.
    let parsed = entry
        .strip_prefix('/')
        .and_then(|e| e.strip_suffix('/'))
        .and_then(|body| perl_regex::translate(body).ok())
        .and_then(|rust| perl_regex::parse(&rust).ok().map(|ast| (rust, ast)));
    if let Some((rust, ast)) = &parsed {
        let (start, end) = (anchors::start(ast), anchors::end(ast));
        let unanchored = Anchor::Glued {
            after_anchor: false,
        };
        if start == unanchored && end == unanchored {
            found.push(Lint::Finding(format!(
                "regex {e} is not anchored: postgrey matches it anywhere in the client name, so \
                 it also matches names with anything before and after it; write /^…$/ or \
                 /(^|\\.)…$/"
            )));
        } else {
            found.extend(start_message(&e, start, rust));
            found.extend(end_message(&e, end));
        }
        let dots = bare_dots(ast);
        if dots > 0 {
            let count = if dots == 1 {
                "an unescaped \".\"".to_string()
            } else {
                format!("{dots} unescaped \".\"")
            };
            found.push(Lint::Finding(format!(
                "regex {e} has {count}, which matches any character, not only a dot; write \\."
            )));
        }
    }
    if regex.is_match(super::UNKNOWN_CLIENT_NAME) {
        found.push(Lint::Finding(format!(
            "regex {e} matches \"unknown\", the name postfix gives every client without reverse \
             DNS"
        )));
    }
    // A note is for regexes that are right: next to a finding it would only confuse.
    if found.iter().any(|l| matches!(l, Lint::Finding(_))) {
        found.retain(|l| matches!(l, Lint::Finding(_)));
    }
    found
}

fn start_message(e: &str, start: Anchor, rust: &str) -> Option<Lint> {
    match start {
        Anchor::Safe => None,
        Anchor::Glued {
            after_anchor: false,
        } => Some(Lint::Finding(format!(
            "regex {e} is not anchored at the start: it also matches names with anything in \
             front, such as \"evil\" glued to the first label; start it with ^ or (^|\\.)"
        ))),
        Anchor::Glued { after_anchor: true } => Some(Lint::Finding(format!(
            "regex {e} is not anchored at the start: its wildcard also matches text glued to the \
             first label, such as \"evil\" in front of it; follow the wildcard with \\. or \
             start with (^|\\.)"
        ))),
        // Safe: the dot is a label boundary. Only the domain itself is left out.
        Anchor::BelowOnly { rest } => Some(Lint::Note(
            match rust.get(rest..).and_then(literal_domain) {
                Some(domain) => format!(
                    "regex {e} matches the names below {domain}, not {domain} itself; \
                     /(^|\\.){}$/ or the plain entry {domain} covers both",
                    domain.replace('.', "\\.")
                ),
                None => format!(
                    "regex {e} matches only names with a label in front of the part after its \
                     leading \\.; start it with (^|\\.) to cover that part itself too"
                ),
            },
        )),
    }
}

fn end_message(e: &str, end: Anchor) -> Option<Lint> {
    match end {
        Anchor::Glued {
            after_anchor: false,
        } => Some(Lint::Finding(format!(
            "regex {e} is not anchored at the end: it also matches names that go on after \
             it, such as ones ending in .attacker.example; end it with $"
        ))),
        Anchor::Glued { after_anchor: true } => Some(Lint::Finding(format!(
            "regex {e} is not anchored at the end: its wildcard also matches names that go on \
             after the domain, such as ones ending in .attacker.example; end it with the domain \
             and $"
        ))),
        Anchor::Safe | Anchor::BelowOnly { .. } => None,
    }
}

/// The domain a pattern's tail spells out literally (`amazonses\.com$` → `amazonses.com`).
fn literal_domain(tail: &str) -> Option<String> {
    let body = tail
        .strip_suffix('$')
        .or_else(|| tail.strip_suffix("\\z"))?;
    let mut domain = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next() == Some('.') => domain.push('.'),
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => {
                domain.push(c.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    (!domain.is_empty()).then_some(domain)
}

/// Dots that stand for one character; `.*`, `.+`, `.?`, `.{n}` are meant as wildcards.
fn bare_dots(ast: &Ast) -> usize {
    match ast {
        Ast::Dot(_) => 1,
        Ast::Repetition(r) if matches!(*r.ast, Ast::Dot(_)) => 0,
        Ast::Repetition(r) => bare_dots(&r.ast),
        Ast::Group(g) => bare_dots(&g.ast),
        Ast::Alternation(a) => a.asts.iter().map(bare_dots).sum(),
        Ast::Concat(c) => c.asts.iter().map(bare_dots).sum(),
        _ => 0,
    }
}

fn lint_name(entry: &str, name: &str, raw_line: &str) -> Option<String> {
    let e = shown_entry(entry);
    if let Some(why) = never_a_host_name(entry, raw_line) {
        return Some(format!("{e} never matches a host name: {why}"));
    }
    if name == super::UNKNOWN_CLIENT_NAME {
        return Some(format!(
            "{e} matches every client without reverse DNS: postfix names them \"unknown\""
        ));
    }
    if psl::domain(name.as_bytes()).is_none() {
        let known = psl::suffix(name.as_bytes()).is_some_and(|s| s.is_known());
        return Some(if known {
            format!("{e} is a public suffix: it whitelists every host under it")
        } else {
            format!("{e} is a single label: it whitelists every host name ending in .{e}")
        });
    }
    None
}

fn is_dotted_quad(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why postgrey's `(?:^|\.)\Qentry\E$` can never match a name postfix passes (postfix passes
/// only verified names of letters, digits, `-`, `_` and dots, never all-numeric).
fn never_a_host_name(entry: &str, raw_line: &str) -> Option<String> {
    if entry.starts_with('/') {
        let cut = if raw_line.contains('#') {
            " (a \"#\" starts a comment, even inside a regex)"
        } else {
            ""
        };
        return Some(format!(
            "it starts with \"/\" but does not end with one{cut}, so postgrey reads it as a \
             host name"
        ));
    }
    if let Some((address, mask)) = entry.split_once('/') {
        if is_dotted_quad(address) && is_dotted_quad(mask) {
            return Some(
                "postgrey reads a netmask in dotted form as part of a host name; write \
                 a.b.c.d/len"
                    .to_string(),
            );
        }
        if is_dotted_quad(address) {
            return Some(format!(
                "postgrey reads \"/{}\" as part of a host name (a netmask has one or two \
                 digits)",
                shown_entry(mask)
            ));
        }
    }
    if entry.contains('*') {
        let plain = entry.trim_start_matches(['*', '.']);
        return Some(format!(
            "\"*\" is no wildcard here, postgrey compares the entry literally; {} alone \
             covers every name below it",
            shown_entry(plain)
        ));
    }
    if let Some(c) = entry
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!("{c:?} does not occur in host names"));
    }
    if let Some(plain) = entry.strip_prefix('.') {
        return Some(format!(
            "postgrey adds the label boundary itself; write {}, which covers every name below \
             it too",
            shown_entry(plain)
        ));
    }
    if entry.ends_with('.') {
        return Some("postfix passes client names without the final dot".to_string());
    }
    if entry.split('.').any(str::is_empty) {
        return Some("it has an empty label".to_string());
    }
    if entry.split('.').any(|l| l.len() > 63) {
        return Some("it has a label longer than 63 characters".to_string());
    }
    if entry.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some(
            "it looks like an address, but postgrey reads it as a host name, and postfix never \
             passes an all-numeric client name"
                .to_string(),
        );
    }
    None
}

fn lint_network(entry: &str, network: &Network) -> Vec<String> {
    let e = shown_entry(entry);
    let net = network.network();
    let mut found = Vec::new();
    let is_ipv4_text = !entry.contains(':');
    let address = entry.split('/').next().unwrap_or(entry);
    if is_ipv4_text && address.split('.').count() == 2 {
        found.push(format!(
            "{e} is read as {net}: postgrey makes two octets a /24, not the /16 its comment \
             promises; write {net} to keep that, or {}.0.0/16 for the /16",
            address
        ));
    }
    if is_ipv4_text
        && address
            .split('.')
            .any(|o| o.len() > 1 && o.starts_with('0'))
    {
        found.push(format!(
            "{e} has an octet with a leading zero, which postgrey reads as octal: this is {}",
            if network.prefix == 32 {
                network.address.to_string()
            } else {
                net.to_string()
            }
        ));
    }
    if entry.contains('/') && net.addr() != network.address {
        found.push(format!(
            "{e} has host bits set: postgrey whitelists all of {net}"
        ));
    }
    match network.address {
        IpAddr::V4(_) if network.prefix == 0 => {
            found.push(format!("{e} whitelists every IPv4 client"));
        }
        IpAddr::V4(_) => {}
        IpAddr::V6(_) => {
            let prefix = network.prefix_128();
            let bits = as_u128(network.address);
            let ipv4_space = !(u128::from(u32::MAX));
            if bits & mask_128(prefix) & ipv4_space == 0 {
                if prefix <= 96 {
                    found.push(format!(
                        "{e} also whitelists every IPv4 client: postgrey compares an IPv4 \
                         address a.b.c.d as ::a.b.c.d"
                    ));
                } else {
                    let v4 = std::net::Ipv4Addr::from((bits & u128::from(u32::MAX)) as u32);
                    let clients = ipnet::Ipv4Net::new(v4, prefix - 96)
                        .map(|n| n.trunc().to_string())
                        .unwrap_or_else(|_| v4.to_string());
                    found.push(format!(
                        "{e} also whitelists the IPv4 clients {clients}: postgrey compares an \
                         IPv4 address a.b.c.d as ::a.b.c.d"
                    ));
                }
            } else if prefix >= 96 && bits >> 32 == 0xffff {
                let v4 = std::net::Ipv4Addr::from((bits & u128::from(u32::MAX)) as u32);
                let written = if prefix == 128 {
                    v4.to_string()
                } else {
                    format!("{v4}/{}", prefix - 96)
                };
                found.push(format!(
                    "{e} never matches: postfix passes an IPv4 client as a.b.c.d, which postgrey \
                     compares as ::a.b.c.d, not ::ffff:a.b.c.d; write {written}"
                ));
            }
        }
    }
    found
}

/// Entries repeated, or covered by a broader entry, anywhere in the files.
fn repeated(rules: &[Rule]) -> Vec<Finding> {
    let mut found = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if let Some(first) = rules[..index].iter().find(|o| same(o, rule)) {
            found.push(finding(
                rule,
                format!(
                    "{} repeats {} at {}",
                    shown_entry(&rule.entry),
                    shown_entry(&first.entry),
                    first.location()
                ),
            ));
            continue;
        }
        if let Some(broader) = rules.iter().find(|o| strictly_covers(o, rule)) {
            found.push(finding(
                rule,
                format!(
                    "{} is already covered by {} at {}",
                    shown_entry(&rule.entry),
                    shown_entry(&broader.entry),
                    broader.location()
                ),
            ));
        }
    }
    found
}

fn same(a: &Rule, b: &Rule) -> bool {
    match (&a.kind, &b.kind) {
        (RuleKind::Name(x), RuleKind::Name(y)) => x == y,
        (RuleKind::Regex(_), RuleKind::Regex(_))
        | (RuleKind::Unevaluable, RuleKind::Unevaluable) => a.entry == b.entry,
        (RuleKind::Network(x), RuleKind::Network(y)) => {
            x.contains_network(y) && y.contains_network(x)
        }
        _ => false,
    }
}

fn strictly_covers(broader: &Rule, rule: &Rule) -> bool {
    match (&broader.kind, &rule.kind) {
        (RuleKind::Name(b), RuleKind::Name(r)) => b != r && name_is_within(r, b),
        (RuleKind::Regex(_), RuleKind::Name(r)) => {
            let single = Whitelist {
                rules: vec![broader.clone()],
                problems: Vec::new(),
            };
            single.rule_covering_domain(r).is_some()
        }
        (RuleKind::Network(b), RuleKind::Network(r)) => {
            b.prefix_128() < r.prefix_128() && b.contains_network(r)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str =
        include_str!("../../tests/fixtures/whitelist/whitelist_clients.debian-1.37");

    fn messages(text: &str) -> Vec<String> {
        audit(text, "wl")
            .into_iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn a_clean_file_has_no_findings() {
        let text = "# ok\nexample.com\n/^mail\\d+\\.example\\.net$/\n/(^|\\.)example\\.org$/\n\
                    192.0.2.0/24\n2001:db8::/32\n";
        assert_eq!(messages(text), Vec::<String>::new());
    }

    #[test]
    fn unanchored_regexes() {
        assert_eq!(
            messages(
                "/mail\\.example\\.com/\n/^mx\\.example\\.com/\n/mx\\.example\\.net$/\n/\\.example\\.org$/\n"
            ),
            [
                "wl:1: regex /mail\\.example\\.com/ is not anchored: postgrey matches it anywhere \
                 in the client name, so it also matches names with anything before and after it; \
                 write /^…$/ or /(^|\\.)…$/",
                "wl:2: regex /^mx\\.example\\.com/ is not anchored at the end: it also matches \
                 names that go on after it, such as ones ending in .attacker.example; end it \
                 with $",
                "wl:3: regex /mx\\.example\\.net$/ is not anchored at the start: it also matches \
                 names with anything in front, such as \"evil\" glued to the first label; start \
                 it with ^ or (^|\\.)",
                // A leading dot is a label boundary: safe, only the domain itself is left out.
                "wl:4: note: regex /\\.example\\.org$/ matches the names below example.org, not \
                 example.org itself; /(^|\\.)example\\.org$/ or the plain entry example.org \
                 covers both",
            ]
        );
    }

    #[test]
    fn wildcards_that_glue_text_to_the_first_label_or_after_the_last() {
        assert_eq!(
            messages("/^.*example\\.com$/\n/^example\\.net.*$/\n/\\bexample\\.org$/\n"),
            [
                "wl:1: regex /^.*example\\.com$/ is not anchored at the start: its wildcard also \
                 matches text glued to the first label, such as \"evil\" in front of it; follow \
                 the wildcard with \\. or start with (^|\\.)",
                "wl:2: regex /^example\\.net.*$/ is not anchored at the end: its wildcard also \
                 matches names that go on after the domain, such as ones ending in \
                 .attacker.example; end it with the domain and $",
                // "-" is a word boundary: evil-example.org matches.
                "wl:3: regex /\\bexample\\.org$/ is not anchored at the start: it also matches \
                 names with anything in front, such as \"evil\" glued to the first label; start \
                 it with ^ or (^|\\.)",
            ]
        );
    }

    #[test]
    fn unescaped_dots() {
        assert_eq!(
            messages(
                "/^smtp\\d+.citigroup.com$/\n/^mx.*\\.example\\.com$/\n/^.*?.server.example.de$/\n"
            ),
            [
                "wl:1: regex /^smtp\\d+.citigroup.com$/ has 2 unescaped \".\", which matches any \
                 character, not only a dot; write \\.",
                "wl:3: regex /^.*?.server.example.de$/ has 3 unescaped \".\", which matches any \
                 character, not only a dot; write \\.",
            ]
        );
    }

    #[test]
    fn regexes_matching_everyone_or_unknown() {
        assert_eq!(
            messages("/.*/\n/^u/\n"),
            [
                "wl:1: regex /.*/ matches every client name",
                "wl:2: regex /^u/ is not anchored at the end: it also matches names that go on \
                 after it, such as ones ending in .attacker.example; end it with $",
                "wl:2: regex /^u/ matches \"unknown\", the name postfix gives every client \
                 without reverse DNS",
            ]
        );
    }

    #[test]
    fn names_that_never_match() {
        assert_eq!(
            messages(
                "*.example.com\n.example.net\nexample.org.\n192.0.2.0/255.255.255.0\n\
                 192.0.2.0/100\n/^mail#1$/\nmail@example.com\n1.2.3.4.5\n"
            ),
            [
                "wl:1: *.example.com never matches a host name: \"*\" is no wildcard here, \
                 postgrey compares the entry literally; example.com alone covers every name \
                 below it",
                "wl:2: .example.net never matches a host name: postgrey adds the label boundary \
                 itself; write example.net, which covers every name below it too",
                "wl:3: example.org. never matches a host name: postfix passes client names \
                 without the final dot",
                "wl:4: 192.0.2.0/255.255.255.0 never matches a host name: postgrey reads a \
                 netmask in dotted form as part of a host name; write a.b.c.d/len",
                "wl:5: 192.0.2.0/100 never matches a host name: postgrey reads \"/100\" as part \
                 of a host name (a netmask has one or two digits)",
                "wl:6: /^mail never matches a host name: it starts with \"/\" but does not end \
                 with one (a \"#\" starts a comment, even inside a regex), so postgrey reads it \
                 as a host name",
                "wl:7: mail@example.com never matches a host name: '@' does not occur in host \
                 names",
                "wl:8: 1.2.3.4.5 never matches a host name: it looks like an address, but \
                 postgrey reads it as a host name, and postfix never passes an all-numeric \
                 client name",
            ]
        );
    }

    #[test]
    fn names_that_match_too_much() {
        assert_eq!(
            messages("unknown\nco.uk\nlocaldomain\n"),
            [
                "wl:1: unknown matches every client without reverse DNS: postfix names them \
                 \"unknown\"",
                "wl:2: co.uk is a public suffix: it whitelists every host under it",
                "wl:3: localdomain is a single label: it whitelists every host name ending in \
                 .localdomain",
            ]
        );
    }

    #[test]
    fn surprising_networks() {
        // One file each: together they would also cover one another.
        let cases = [
            (
                "10.1",
                "wl:1: 10.1 is read as 10.1.0.0/24: postgrey makes two octets a /24, not the /16 \
                 its comment promises; write 10.1.0.0/24 to keep that, or 10.1.0.0/16 for the /16",
            ),
            (
                "010.1.1.1",
                "wl:1: 010.1.1.1 has an octet with a leading zero, which postgrey reads as octal: \
                 this is 8.1.1.1",
            ),
            (
                "10.1.2.3/8",
                "wl:1: 10.1.2.3/8 has host bits set: postgrey whitelists all of 10.0.0.0/8",
            ),
            ("0.0.0.0/0", "wl:1: 0.0.0.0/0 whitelists every IPv4 client"),
            (
                "::/0",
                "wl:1: ::/0 also whitelists every IPv4 client: postgrey compares an IPv4 address \
                 a.b.c.d as ::a.b.c.d",
            ),
            (
                "::192.0.2.0/120",
                "wl:1: ::192.0.2.0/120 also whitelists the IPv4 clients 192.0.2.0/24: postgrey \
                 compares an IPv4 address a.b.c.d as ::a.b.c.d",
            ),
            (
                "::ffff:192.0.2.1",
                "wl:1: ::ffff:192.0.2.1 never matches: postfix passes an IPv4 client as a.b.c.d, \
                 which postgrey compares as ::a.b.c.d, not ::ffff:a.b.c.d; write 192.0.2.1",
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(messages(&format!("{entry}\n")), [expected]);
        }
    }

    #[test]
    fn lines_postgrey_skips_or_dies_on() {
        assert_eq!(
            messages("300.1.1.1\nfoo bar\n/a(/\n/(?<=a)b/\n"),
            [
                "wl:1: postgrey skips this line without a warning: 300 is larger than 255",
                "wl:2: postgrey skips this line with the warning \"doesn't look like a \
                 hostname\": it has white space inside and is neither a /regex/ nor an address",
                "wl:3: perl cannot compile this regex (an unclosed group): postgrey stops with \
                 an error when it reads this file",
                "wl:4: this regex uses a lookahead or lookbehind, which postgrey-advisor cannot \
                 evaluate: postgrey uses the line, postgrey-advisor treats it as matching nothing",
            ]
        );
    }

    #[test]
    fn duplicates_and_covered_entries_also_across_files() {
        let main = "example.com\nmx.example.com\n192.0.2.0/24\n/(^|\\.)example\\.net$/\n";
        let local = "Example.COM\n192.0.2.9\n192.0.2.0/24\nmail.example.net\n";
        let got: Vec<String> = audit_files(&[("main", main), ("local", local)])
            .into_iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            got,
            [
                "main:2: mx.example.com is already covered by example.com at main:1",
                "local:1: Example.COM repeats example.com at main:1",
                "local:2: 192.0.2.9 is already covered by 192.0.2.0/24 at main:3",
                "local:3: 192.0.2.0/24 repeats 192.0.2.0/24 at main:3",
                "local:4: mail.example.net is already covered by /(^|\\.)example\\.net$/ at main:4",
            ]
        );
    }

    #[test]
    fn the_shipped_debian_list() {
        let got: Vec<String> = audit(DEBIAN, "whitelist_clients")
            .into_iter()
            .map(|f| f.to_string())
            .collect();
        let dots = |line: usize, re: &str, n: usize| {
            format!(
                "whitelist_clients:{line}: regex {re} has {n} unescaped \".\", which matches any \
                 character, not only a dot; write \\."
            )
        };
        assert_eq!(
            got,
            [
                dots(136, "/^odk.fdv.uni-lj.si$/", 3),
                dots(144, "/^mta[12].siol.net$/", 2),
                dots(164, "/^smtp\\d+.citigroup.com$/", 2),
                dots(194, "/^.*?.server.arvato-systems.de$/", 3),
                dots(
                    196,
                    "/^(?:mail|fallback-mx)\\d+.atl.registeredsite.com$/",
                    3
                ),
            ]
        );
    }
}
