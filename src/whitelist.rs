//! postgrey's `whitelist_clients` files, read and matched exactly as postgrey 1.37 does
//! (`read_clients_whitelists` and the whitelist loops of `smtpd_access_policy`).
//!
//! Each line loses everything from its first `#` on — even inside a regex — and its surrounding
//! white space. What is left is read in postgrey's order:
//! - `/re/` with no white space inside: a Perl regex, matched case-insensitively and *unanchored*
//!   against the client name (see `perl_regex` for what carries over to the `regex` crate);
//! - `a.b.c.d`, optionally `/n`: an IPv4 address or network (an octet with a leading zero is
//!   octal, as NetAddr::IP reads it; host bits are ignored);
//! - `a.b.c`: `a.b.c.0/24`;
//! - `a.b`: `a.b.0.0/24` — postgrey's comment says /16, its code says /24, and the code decides;
//! - anything with two colons: an IPv6 address or network;
//! - any other word: a host name that matches itself and every name below it, at a label
//!   boundary, case-insensitively (`sendgrid.net` covers `o1.sendgrid.net`, not
//!   `evilsendgrid.net`);
//! - anything else (white space inside): postgrey warns and skips the line.
//!
//! Addresses postgrey cannot read (`300.1.1.1`, `/33`) are skipped silently by postgrey; they are
//! reported here as [`Problem`]s, like regexes that postgrey-advisor cannot evaluate.
//!
//! A client is covered when its name matches a name or regex entry, or its address lies in a
//! network. postgrey compares addresses as 128-bit numbers with IPv4 at `::a.b.c.d`, so `::/96`
//! covers every IPv4 client and `::ffff:a.b.c.d` none. A client without reverse DNS is matched
//! under the name postfix gives it, `unknown`.
//!
//! The ignore list (`/etc/postgrey-advisor/ignore`) lives here too: one domain per line, `#`
//! comments, the format of the classic Nagios plugin, whose own file is read as well.

mod audit;
mod perl_regex;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use ipnet::IpNet;
use regex::Regex;

pub use audit::{Finding, audit, audit_files};

/// The whitelist Debian's postgrey package installs.
pub const DEFAULT_WHITELIST: &str = "/etc/postgrey/whitelist_clients";
/// The site's own additions; postgrey reads it when present.
pub const DEFAULT_WHITELIST_LOCAL: &str = crate::cli::DEFAULT_WHITELIST_LOCAL;
/// The client name postfix passes for a client without (verified) reverse DNS.
pub const UNKNOWN_CLIENT_NAME: &str = "unknown";

/// The files postgrey reads when it is given no `--whitelist-clients`.
pub fn default_paths() -> Vec<PathBuf> {
    vec![
        PathBuf::from(DEFAULT_WHITELIST),
        PathBuf::from(DEFAULT_WHITELIST_LOCAL),
    ]
}

/// The entries of one or more `whitelist_clients` files, in postgrey's order.
#[derive(Debug, Clone, Default)]
pub struct Whitelist {
    rules: Vec<Rule>,
    problems: Vec<Problem>,
}

/// One entry and where it was written.
#[derive(Debug, Clone)]
pub struct Rule {
    pub file: String,
    pub line: usize,
    /// The entry as written, without comment and surrounding white space.
    pub entry: String,
    pub kind: RuleKind,
    /// The date of the `# added by postgrey-advisor on DATE` comment heading the block the
    /// entry is in (`accept` writes one above what it appends; a blank line ends the block).
    pub added_on: Option<jiff::civil::Date>,
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    /// A host name (lowercased): matches itself and every name below it.
    Name(String),
    /// `/re/`, compiled case-insensitively and unanchored.
    Regex(Regex),
    /// A regex postgrey uses but postgrey-advisor cannot evaluate; it matches nothing here (a
    /// [`Problem`] says so).
    Unevaluable,
    Network(Network),
}

/// An address or network as postgrey compares it: a 128-bit number, IPv4 at `::a.b.c.d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    /// The address as written (host bits included).
    pub address: IpAddr,
    /// The prefix length within the address's own family (0–32 for IPv4).
    pub prefix: u8,
}

/// A line postgrey skips, or that postgrey-advisor cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// postgrey skips the line (with a warning, or silently).
    Skipped,
    /// postgrey uses the line; postgrey-advisor cannot tell what it matches.
    Unevaluable,
    /// postgrey stops with an error when it reads the line.
    Fatal,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A domain given on the command line that must not go into a whitelist or ignore file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a usable domain: {reason}")]
pub struct InvalidDomain {
    pub input: String,
    pub reason: String,
}

/// Reads the text of one `whitelist_clients` file; `origin` names it in rules and problems.
/// How the comment `accept` heads its blocks with begins (see `edit::dated_comment`).
pub const ADDED_ON_PREFIX: &str = "# added by postgrey-advisor on ";

pub fn parse(text: &str, origin: &str) -> Whitelist {
    let mut list = Whitelist::default();
    let mut added_on = None;
    for (index, raw) in text.split('\n').enumerate() {
        if raw.trim_matches(is_perl_space).is_empty() {
            added_on = None;
        }
        if let Some(date) = raw
            .trim_matches(is_perl_space)
            .strip_prefix(ADDED_ON_PREFIX)
        {
            added_on = date.trim().parse().ok();
        }
        let Some(entry) = entry_of(raw) else {
            continue;
        };
        let line = index + 1;
        let (kind, trouble) = read_entry(entry);
        if let Some(kind) = kind {
            list.rules.push(Rule {
                file: origin.to_string(),
                line,
                entry: entry.to_string(),
                kind,
                added_on,
            });
        }
        if let Some((kind, message)) = trouble {
            list.problems.push(Problem {
                file: origin.to_string(),
                line,
                kind,
                message,
            });
        }
    }
    list
}

/// Reads whitelist files in order (callers pass [`default_paths`] when no file is named; no
/// paths, no entries). As in postgrey, a missing file whose name ends in `.local` is fine; any
/// other missing file is an error naming it.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Whitelist> {
    let mut list = Whitelist::default();
    for path in paths {
        if let Some(text) = read_file(path)? {
            list.extend(parse(&text, &path.display().to_string()));
        }
    }
    Ok(list)
}

/// The text of a whitelist file; `None` for a missing `.local` file (postgrey's rule). Bytes that
/// are not UTF-8 (a Latin-1 comment) are replaced, as they can never match a client name anyway.
pub fn read_file(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path.as_os_str().as_encoded_bytes().ends_with(b".local") =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read whitelist {}", path.display())),
    }
}

impl Whitelist {
    /// Appends another file's entries after these, as postgrey reads its files in order.
    pub fn extend(&mut self, other: Whitelist) {
        self.rules.extend(other.rules);
        self.problems.extend(other.problems);
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Lines postgrey skips or postgrey-advisor cannot evaluate, in file order.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether postgrey passes a client with this name (`unknown` for no reverse DNS).
    pub fn covers_name(&self, name: &str) -> bool {
        self.rules.iter().any(|r| r.matches_name(name))
    }

    pub fn covers_address(&self, address: IpAddr) -> bool {
        self.rules.iter().any(|r| r.matches_address(address))
    }

    /// Whether postgrey passes the client: by name (`None` = no reverse DNS, which postfix
    /// calls `unknown`) or by address.
    pub fn covers(&self, name: Option<&str>, address: Option<IpAddr>) -> bool {
        self.covering_rule(name, address).is_some()
    }

    /// The entry that lets the client pass, the one postgrey would log against: names are tried
    /// before addresses, each in file order.
    pub fn covering_rule(&self, name: Option<&str>, address: Option<IpAddr>) -> Option<&Rule> {
        let name = name.unwrap_or(UNKNOWN_CLIENT_NAME);
        self.rules
            .iter()
            .find(|r| r.matches_name(name))
            .or_else(|| {
                let address = address?;
                self.rules.iter().find(|r| r.matches_address(address))
            })
    }

    /// The earliest entry written by `accept` (dated) that lets one of `clients` pass, by name
    /// or by address: the line whose effect the report follows.
    pub fn accepted_rule_for<N: AsRef<str>>(
        &self,
        clients: &[(Option<N>, IpAddr)],
    ) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| r.added_on.is_some())
            .filter(|r| {
                clients.iter().any(|(name, address)| {
                    r.matches_name(name.as_ref().map_or(UNKNOWN_CLIENT_NAME, AsRef::as_ref))
                        || r.matches_address(*address)
                })
            })
            .min_by_key(|r| r.added_on)
    }

    /// An entry that covers `domain` and every name below it, as far as that can be told
    /// exactly: a plain name at or above it, or the anchored regex `accept --regex` writes.
    pub fn rule_covering_domain(&self, domain: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| match &r.kind {
            RuleKind::Name(entry) => name_is_within(domain, entry),
            RuleKind::Regex(_) => parent_domains(domain)
                .any(|p| r.entry.eq_ignore_ascii_case(&suggestion_line(p, true))),
            RuleKind::Unevaluable | RuleKind::Network(_) => false,
        })
    }
}

impl Rule {
    /// `file:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    pub fn matches_name(&self, name: &str) -> bool {
        match &self.kind {
            RuleKind::Name(entry) => name_is_within(name, entry),
            RuleKind::Regex(regex) => regex.is_match(name),
            RuleKind::Unevaluable | RuleKind::Network(_) => false,
        }
    }

    pub fn matches_address(&self, address: IpAddr) -> bool {
        match &self.kind {
            RuleKind::Network(network) => network.contains(address),
            _ => false,
        }
    }
}

impl Network {
    /// The prefix length in postgrey's 128-bit view.
    pub fn prefix_128(&self) -> u8 {
        match self.address {
            IpAddr::V4(_) => self.prefix + 96,
            IpAddr::V6(_) => self.prefix,
        }
    }

    /// The network with its host bits cleared, for display.
    pub fn network(&self) -> IpNet {
        // The prefix was checked against the family when the entry was read.
        IpNet::new(self.address, self.prefix)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(self.address))
    }

    /// Whether postgrey (NetAddr::IP `within`) sees `client` inside this network.
    pub fn contains(&self, client: IpAddr) -> bool {
        let mask = mask_128(self.prefix_128());
        as_u128(client) & mask == as_u128(self.address) & mask
    }

    /// Whether every address of `other` is inside this network.
    pub fn contains_network(&self, other: &Network) -> bool {
        self.prefix_128() <= other.prefix_128() && self.contains(other.address)
    }
}

pub(crate) fn as_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub(crate) fn mask_128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - u32::from(p.min(128))),
    }
}

/// postgrey's `(?:^|\.)\Qentry\E$` with `/i`: `name` is `entry` or ends in `.entry`.
pub fn name_is_within(name: &str, entry: &str) -> bool {
    let (name, entry) = (name.as_bytes(), entry.as_bytes());
    let Some(start) = name.len().checked_sub(entry.len()) else {
        return false;
    };
    name[start..].eq_ignore_ascii_case(entry) && (start == 0 || name[start - 1] == b'.')
}

/// `a.b.c`, `b.c`, `c`.
fn parent_domains(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::once(domain).chain(domain.match_indices('.').map(|(i, _)| &domain[i + 1..]))
}

/// Perl's `\s` on bytes.
fn is_perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

/// postgrey's `s/#.*$//; s/^\s+//; s/\s+$//; next if $_ eq ''`.
fn entry_of(raw: &str) -> Option<&str> {
    let uncommented = raw.find('#').map_or(raw, |i| &raw[..i]);
    let entry = uncommented.trim_matches(is_perl_space);
    (!entry.is_empty()).then_some(entry)
}

type Trouble = (ProblemKind, String);

/// postgrey's if/elsif chain for one entry.
fn read_entry(entry: &str) -> (Option<RuleKind>, Option<Trouble>) {
    if let Some(pattern) = regex_body(entry) {
        return read_regex(pattern);
    }
    if let Some(form) = ipv4_form(entry) {
        return match read_ipv4(&form) {
            Ok(network) => (Some(RuleKind::Network(network)), None),
            Err(why) => (None, Some((ProblemKind::Skipped, skipped_silently(&why)))),
        };
    }
    if entry.matches(':').count() >= 2 {
        return match read_ipv6(entry) {
            Ok(network) => (Some(RuleKind::Network(network)), None),
            Err(why) => {
                let why = format!("it has two colons, so postgrey reads it as IPv6, but {why}");
                (None, Some((ProblemKind::Skipped, skipped_silently(&why))))
            }
        };
    }
    if !entry.contains(is_perl_space) {
        return (Some(RuleKind::Name(entry.to_ascii_lowercase())), None);
    }
    let message = "postgrey skips this line with the warning \"doesn't look like a hostname\": \
                   it has white space inside and is neither a /regex/ nor an address";
    (None, Some((ProblemKind::Skipped, message.to_string())))
}

fn skipped_silently(why: &str) -> String {
    format!("postgrey skips this line without a warning: {why}")
}

/// postgrey's `^\/(\S+)\/$`.
fn regex_body(entry: &str) -> Option<&str> {
    let body = entry.strip_prefix('/')?.strip_suffix('/')?;
    (!body.is_empty() && !body.contains(is_perl_space)).then_some(body)
}

fn read_regex(pattern: &str) -> (Option<RuleKind>, Option<Trouble>) {
    use perl_regex::Refusal;
    match perl_regex::compile(pattern) {
        Ok(regex) => (Some(RuleKind::Regex(regex)), None),
        Err(Refusal::InvalidInPerl(what)) => {
            let message = format!(
                "perl cannot compile this regex ({what}): postgrey stops with an error when it \
                 reads this file"
            );
            (None, Some((ProblemKind::Fatal, message)))
        }
        Err(Refusal::PerlOnly(what)) => {
            let message = format!(
                "this regex uses {what}, which postgrey-advisor cannot evaluate: postgrey uses \
                 the line, postgrey-advisor treats it as matching nothing"
            );
            (
                Some(RuleKind::Unevaluable),
                Some((ProblemKind::Unevaluable, message)),
            )
        }
        Err(Refusal::Untranslatable(why)) => {
            let message = format!(
                "postgrey-advisor cannot evaluate this regex (the regex crate says: {why}): \
                 postgrey may use the line, postgrey-advisor treats it as matching nothing"
            );
            (
                Some(RuleKind::Unevaluable),
                Some((ProblemKind::Unevaluable, message)),
            )
        }
    }
}

/// Which of postgrey's IPv4 patterns an entry matches.
enum Ipv4Form<'a> {
    /// `\d{1,3}` ×4, optional `/\d{1,2}`.
    Full([&'a str; 4], Option<&'a str>),
    /// `\d{1,3}` ×3 or ×2: postgrey makes both a /24.
    Partial(Vec<&'a str>),
}

fn ipv4_form(entry: &str) -> Option<Ipv4Form<'_>> {
    let is_digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let (address, mask) = match entry.split_once('/') {
        Some((address, mask)) => (address, Some(mask)),
        None => (entry, None),
    };
    let parts: Vec<&str> = address.split('.').collect();
    if !parts.iter().all(|p| is_digits(p, 3)) {
        return None;
    }
    match (parts.as_slice(), mask) {
        ([a, b, c, d], mask) if mask.is_none_or(|m| is_digits(m, 2)) => {
            Some(Ipv4Form::Full([a, b, c, d], mask))
        }
        ([_, _] | [_, _, _], None) => Some(Ipv4Form::Partial(parts)),
        _ => None,
    }
}

/// An octet as NetAddr::IP reads it: a leading zero makes it octal.
fn read_octet(text: &str) -> Result<u8, String> {
    let value = if text.len() > 1 && text.starts_with('0') {
        u32::from_str_radix(text, 8).map_err(|_| {
            format!("{text} has a leading zero, so it is octal, and it is not an octal number")
        })?
    } else {
        text.parse::<u32>()
            .map_err(|_| format!("{text} is not a number"))?
    };
    u8::try_from(value).map_err(|_| format!("{text} is larger than 255"))
}

fn read_ipv4(form: &Ipv4Form<'_>) -> Result<Network, String> {
    let (texts, prefix): (&[&str], u8) = match form {
        Ipv4Form::Full(octets, mask) => {
            let prefix = match mask {
                None => 32,
                Some(m) => m
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(|| format!("the netmask /{m} is larger than 32"))?,
            };
            (octets, prefix)
        }
        Ipv4Form::Partial(octets) => (octets, 24),
    };
    let mut octets = [0u8; 4];
    for (slot, text) in octets.iter_mut().zip(texts) {
        *slot = read_octet(text)?;
    }
    Ok(Network {
        address: IpAddr::V4(Ipv4Addr::from(octets)),
        prefix,
    })
}

/// The IPv6 spellings NetAddr::IP reads: `addr`, `addr/len`, `addr/mask`, optionally in `[]`.
fn read_ipv6(entry: &str) -> Result<Network, String> {
    let inner = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    let (address, mask) = match inner.split_once('/') {
        Some((address, mask)) => (address, Some(mask)),
        None => (inner, None),
    };
    let address: Ipv6Addr = address
        .parse()
        .map_err(|_| "it is not an IPv6 address".to_string())?;
    let prefix = match mask {
        None => 128,
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => m
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 128)
            .ok_or_else(|| format!("the netmask /{m} is larger than 128"))?,
        Some(m) => {
            let bits = m
                .parse::<Ipv6Addr>()
                .map(u128::from)
                .map_err(|_| format!("/{m} is not a netmask"))?;
            let ones = bits.leading_ones();
            if bits.checked_shl(ones).unwrap_or(0) != 0 {
                return Err(format!("the netmask /{m} is not contiguous"));
            }
            u8::try_from(ones).map_err(|_| format!("/{m} is not a netmask"))?
        }
    };
    Ok(Network {
        address: IpAddr::V6(address),
        prefix,
    })
}

/// The whitelist line for a suffix: the plain name (postgrey matches it at label boundaries), or
/// with `regex` the anchored, fully escaped `/(^|\.)suffix$/`.
pub fn suggestion_line(suffix: &str, regex: bool) -> String {
    if !regex {
        return suffix.to_string();
    }
    let mut line = String::from("/(^|\\.)");
    for c in suffix.chars() {
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            line.push('\\');
        }
        line.push(c);
    }
    line.push_str("$/");
    line
}

/// Checks a domain given for `accept` or `ignore` and returns it lowercased, without a final dot.
/// Refused: anything that is not a host name, an all-numeric name (postgrey would read `10.1` as
/// a network), and public suffixes (they would cover every host under them).
pub fn normalize_domain(input: &str) -> Result<String, InvalidDomain> {
    let invalid = |reason: &str| InvalidDomain {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let domain = input
        .strip_suffix('.')
        .unwrap_or(input)
        .to_ascii_lowercase();
    if domain.is_empty() {
        return Err(invalid("it is empty"));
    }
    if !domain.is_ascii() {
        return Err(invalid(
            "write an internationalised name in its ASCII (xn--) form",
        ));
    }
    if let Some(c) = domain
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(invalid(&format!(
            "{c:?} does not occur in host names (only letters, digits, '-', '_' and '.')"
        )));
    }
    if domain.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(invalid("it has an empty label"));
        }
        if label.len() > 63 {
            return Err(invalid("it has a label longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with '-'"));
        }
    }
    if domain.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid(
            "it is all digits, which postgrey reads as an address, not a name",
        ));
    }
    if psl::domain(domain.as_bytes()).is_none() {
        return Err(invalid(
            "it is a public suffix (or a single label): it would cover every host under it",
        ));
    }
    Ok(domain)
}

/// The ignore file: one domain per line, `#` comments, blank lines; lowercased, without a final
/// dot, in file order.
pub fn parse_ignore_list(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| {
            line.find('#')
                .map_or(line, |i| &line[..i])
                .split_whitespace()
        })
        .map(|d| d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// Reads the ignore file. The default file may be missing (nothing ignored yet); a missing file
/// given explicitly is an error naming it.
pub fn load_ignore(path: &Path) -> anyhow::Result<Vec<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_ignore_list(&String::from_utf8_lossy(&bytes))),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(crate::cli::DEFAULT_IGNORE) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read ignore file {}", path.display())),
    }
}

/// Reads the classic `check_postgrey_whitelist` plugin's ignore file (one domain per line), which
/// postmasters coming from that plugin keep where it is. None when there is none to read: an empty
/// path, or the default file missing. A missing file given explicitly is an error naming it.
pub fn load_legacy_ignore(path: &Path) -> anyhow::Result<Option<Vec<String>>> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(parse_ignore_list(&String::from_utf8_lossy(&bytes)))),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && path == Path::new(crate::cli::DEFAULT_LEGACY_IGNORE) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot read the classic plugin's ignore file {} (--legacy-ignore-file)",
                path.display()
            )
        }),
    }
}

/// An entry shown in a message: control characters escaped, so a file cannot drive the terminal.
pub fn shown_entry(entry: &str) -> String {
    entry
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_accept_appended_carry_their_date_up_to_a_blank_line() {
        let list = parse(
            "old.example\n\
             # added by postgrey-advisor on 2026-11-28\n\
             a.example\n\
             # a note of the postmaster's\n\
             b.example\n\
             \n\
             c.example\n\
             # added by postgrey-advisor on 2026-12-01\n\
             d.example\n",
            "wl",
        );
        let dates: Vec<(&str, Option<String>)> = list
            .rules()
            .iter()
            .map(|r| (r.entry.as_str(), r.added_on.map(|d| d.to_string())))
            .collect();
        let day = |d: &str| Some(d.to_owned());
        assert_eq!(
            dates,
            [
                ("old.example", None),
                ("a.example", day("2026-11-28")),
                ("b.example", day("2026-11-28")),
                ("c.example", None),
                ("d.example", day("2026-12-01")),
            ]
        );
    }

    const DEBIAN: &str = include_str!("../tests/fixtures/whitelist/whitelist_clients.debian-1.37");

    fn list(text: &str) -> Whitelist {
        let list = parse(text, "test");
        let problems = list.problems().to_vec();
        assert_eq!(problems, Vec::new(), "unexpected problems");
        list
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn problems(text: &str) -> Vec<(usize, ProblemKind, String)> {
        parse(text, "f")
            .problems()
            .iter()
            .map(|p| (p.line, p.kind, p.message.clone()))
            .collect()
    }

    #[test]
    fn comments_and_blank_lines() {
        let l = list("# a comment\n\n   \t\nexample.com # trailing comment\n  \r\n");
        assert_eq!(l.len(), 1);
        assert_eq!(l.rules()[0].entry, "example.com");
        assert_eq!(l.rules()[0].line, 4);
        assert!(l.covers_name("example.com"));
    }

    #[test]
    fn a_hash_inside_a_regex_starts_a_comment() {
        // postgrey cuts at the `#`, leaving `/^mail` — a name that never matches.
        let l = list("/^mail#1\\.example\\.com$/\n");
        assert_eq!(l.rules()[0].entry, "/^mail");
        assert!(matches!(l.rules()[0].kind, RuleKind::Name(_)));
        assert!(!l.covers_name("mail#1.example.com"));
        assert!(!l.covers_name("mail1.example.com"));
    }

    #[test]
    fn plain_name_covers_itself_and_subdomains_at_a_label_boundary() {
        let l = list("sendgrid.net\n");
        assert!(l.covers_name("sendgrid.net"));
        assert!(l.covers_name("o1.sendgrid.net"));
        assert!(l.covers_name("a.b.sendgrid.net"));
        assert!(!l.covers_name("evilsendgrid.net"));
        assert!(!l.covers_name("sendgrid.net.evil.example"));
        assert!(!l.covers_name("endgrid.net"));
        assert!(!l.covers_name("net"));
    }

    #[test]
    fn names_match_case_insensitively() {
        let l = list("SendGrid.NET\n/^MAIL\\d+\\.Example\\.com$/\n");
        assert!(l.covers_name("O1.sendgrid.net"));
        assert!(l.covers_name("o1.SENDGRID.net"));
        assert!(l.covers_name("mail7.EXAMPLE.COM"));
    }

    #[test]
    fn regexes_are_unanchored() {
        let l = list("/mail\\.example/\n");
        assert!(l.covers_name("mail.example.com"));
        assert!(l.covers_name("evilmail.example.attacker.net"));
        assert!(!l.covers_name("mailXexample.com"));
    }

    #[test]
    fn a_regex_needs_a_body_and_no_white_space() {
        // `//` is not a regex for postgrey: it becomes a name that never matches.
        let l = list("//\n");
        assert!(matches!(l.rules()[0].kind, RuleKind::Name(_)));
        assert_eq!(
            problems("/foo bar/\n"),
            vec![(
                1,
                ProblemKind::Skipped,
                "postgrey skips this line with the warning \"doesn't look like a hostname\": it \
                 has white space inside and is neither a /regex/ nor an address"
                    .to_string()
            )]
        );
    }

    #[test]
    fn ipv4_addresses_and_networks() {
        let l = list("192.0.2.7\n198.51.100.0/24\n10.1.2.3/8\n");
        assert!(l.covers_address(ip("192.0.2.7")));
        assert!(!l.covers_address(ip("192.0.2.8")));
        assert!(l.covers_address(ip("198.51.100.255")));
        assert!(!l.covers_address(ip("198.51.101.0")));
        // Host bits are ignored: the whole /8.
        assert!(l.covers_address(ip("10.200.0.1")));
    }

    #[test]
    fn three_octets_are_a_slash_24() {
        let l = list("195.235.39\n");
        assert_eq!(
            l.rules()[0].kind_network().map(|n| n.network().to_string()),
            Some("195.235.39.0/24".into())
        );
        assert!(l.covers_address(ip("195.235.39.200")));
        assert!(!l.covers_address(ip("195.235.40.1")));
    }

    #[test]
    fn two_octets_are_a_slash_24_too_as_in_postgrey() {
        let l = list("10.1\n");
        assert_eq!(
            l.rules()[0].kind_network().map(|n| n.network().to_string()),
            Some("10.1.0.0/24".into())
        );
        assert!(l.covers_address(ip("10.1.0.77")));
        assert!(
            !l.covers_address(ip("10.1.1.77")),
            "not the /16 postgrey's comment promises"
        );
    }

    #[test]
    fn octets_with_a_leading_zero_are_octal() {
        let l = list("010.1.1.1\n010.1.2\n");
        assert!(l.covers_address(ip("8.1.1.1")));
        assert!(!l.covers_address(ip("10.1.1.1")));
        assert!(l.covers_address(ip("8.1.2.9")));
    }

    #[test]
    fn addresses_postgrey_cannot_read_are_skipped_silently() {
        let l = parse(
            "300.1.1.1\n1.2.3.4/33\n08.1.1.1\n2001:db8::/129\nfe80::1%eth0\n",
            "f",
        );
        assert!(l.is_empty());
        let got = problems("300.1.1.1\n1.2.3.4/33\n08.1.1.1\n2001:db8::/129\nfe80::1%eth0\n");
        let skipped = |why: &str| format!("postgrey skips this line without a warning: {why}");
        assert_eq!(
            got,
            vec![
                (1, ProblemKind::Skipped, skipped("300 is larger than 255")),
                (
                    2,
                    ProblemKind::Skipped,
                    skipped("the netmask /33 is larger than 32")
                ),
                (
                    3,
                    ProblemKind::Skipped,
                    skipped("08 has a leading zero, so it is octal, and it is not an octal number")
                ),
                (
                    4,
                    ProblemKind::Skipped,
                    skipped(
                        "it has two colons, so postgrey reads it as IPv6, but the netmask /129 is \
                         larger than 128"
                    )
                ),
                (
                    5,
                    ProblemKind::Skipped,
                    skipped(
                        "it has two colons, so postgrey reads it as IPv6, but it is not an IPv6 address"
                    )
                ),
            ]
        );
    }

    #[test]
    fn a_dotted_netmask_is_read_as_a_name() {
        let l = list("192.0.2.0/255.255.255.0\n");
        assert!(matches!(l.rules()[0].kind, RuleKind::Name(_)));
        assert!(!l.covers_address(ip("192.0.2.1")));
    }

    #[test]
    fn ipv6_networks_and_masks() {
        let l = list("2a01:4180:4051:0800::/64\n2001:db8::1\n");
        assert!(l.covers_address(ip("2a01:4180:4051:800::25")));
        assert!(l.covers_address(ip("2a01:4180:4051:800:ffff:ffff:ffff:ffff")));
        assert!(!l.covers_address(ip("2a01:4180:4051:801::25")));
        assert!(l.covers_address(ip("2001:db8::1")));
        assert!(!l.covers_address(ip("2001:db8::2")));
        // Brackets and a netmask in IPv6 form, as NetAddr::IP reads them.
        let l = list("[2001:db8:2::/48]\n2001:db8:3::/ffff:ffff:ffff::\n");
        assert!(l.covers_address(ip("2001:db8:2:9::1")));
        assert!(l.covers_address(ip("2001:db8:3:9::1")));
        assert!(!l.covers_address(ip("2001:db8:4::1")));
    }

    #[test]
    fn postgrey_compares_ipv4_as_ipv4_compatible_ipv6() {
        let l = list("::/96\n");
        assert!(l.covers_address(ip("203.0.113.9")));
        assert!(!l.covers_address(ip("2001:db8::1")));
        let l = list("::ffff:203.0.113.9\n");
        assert!(!l.covers_address(ip("203.0.113.9")));
        let l = list("0.0.0.0/0\n");
        assert!(!l.covers_address(ip("2001:db8::1")));
        assert!(l.covers_address(ip("::5")));
    }

    #[test]
    fn cidr_only_coverage_needs_the_address() {
        // Mailchimp's mail servers are whitelisted by address only.
        let l =
            list("205.201.128.0/20\n198.2.128.0/18\n148.105.0.0/16\nsystemalerts.mailchimp.com\n");
        let name = "mail140-7.suw21.mcdlv.net";
        assert!(!l.covers_name(name));
        assert!(!l.covers(Some(name), None));
        assert!(l.covers(Some(name), Some(ip("205.201.140.7"))));
        assert!(l.covers(Some(name), Some(ip("198.2.170.1"))));
        assert!(!l.covers(Some(name), Some(ip("198.2.192.1"))));
        let rule = l
            .covering_rule(Some(name), Some(ip("148.105.8.1")))
            .expect("covered");
        assert_eq!((rule.entry.as_str(), rule.line), ("148.105.0.0/16", 3));
    }

    #[test]
    fn names_are_tried_before_addresses() {
        let l = list("192.0.2.0/24\nexample.com\n");
        let rule = l
            .covering_rule(Some("mx.example.com"), Some(ip("192.0.2.1")))
            .expect("covered");
        assert_eq!(rule.entry, "example.com");
    }

    #[test]
    fn clients_without_reverse_dns_are_named_unknown() {
        let l = list("/^unk/\n");
        assert!(l.covers(None, None));
        assert!(!list("example.com\n").covers(None, None));
    }

    #[test]
    fn a_regex_the_regex_crate_cannot_compile_is_kept_and_reported() {
        let l = parse("/(?<=foo)bar/\n", "wl");
        let problems = l.problems().to_vec();
        assert_eq!(l.len(), 1);
        assert!(matches!(l.rules()[0].kind, RuleKind::Unevaluable));
        assert!(!l.covers_name("foobar.example"));
        assert_eq!(
            problems,
            vec![Problem {
                file: "wl".into(),
                line: 1,
                kind: ProblemKind::Unevaluable,
                message: "this regex uses a lookahead or lookbehind, which postgrey-advisor \
                          cannot evaluate: postgrey uses the line, postgrey-advisor treats it as \
                          matching nothing"
                    .into()
            }]
        );
        assert_eq!(
            problems[0].to_string(),
            format!("wl:1: {}", problems[0].message)
        );
    }

    #[test]
    fn a_regex_perl_cannot_compile_stops_postgrey() {
        let l = parse("/^mail(\\d+\\.example\\.com$/\n", "wl");
        let problems = l.problems().to_vec();
        assert!(l.is_empty());
        assert_eq!(
            problems[0].message,
            "perl cannot compile this regex (an unclosed group): postgrey stops with an error \
             when it reads this file"
        );
        assert_eq!(problems[0].kind, ProblemKind::Fatal);
    }

    #[test]
    fn white_space_inside_is_skipped_with_a_warning() {
        let got = problems("example.com other.example\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, ProblemKind::Skipped);
    }

    #[test]
    fn the_shipped_debian_list_reads_completely() {
        let l = parse(DEBIAN, "whitelist_clients");
        let problems = l.problems().to_vec();
        assert_eq!(problems, Vec::new());
        let count = |f: fn(&RuleKind) -> bool| l.rules().iter().filter(|r| f(&r.kind)).count();
        assert_eq!(l.len(), 164);
        assert_eq!(count(|k| matches!(k, RuleKind::Regex(_))), 34);
        assert_eq!(count(|k| matches!(k, RuleKind::Name(_))), 104);
        assert_eq!(count(|k| matches!(k, RuleKind::Network(_))), 26);
        assert!(l.covers_name("a8-12.smtp-out.amazonses.com"));
        assert!(l.covers_name("mail-db5eur01on2040.outbound.protection.outlook.com"));
        assert!(l.covers_name("smtp12.orange.fr"));
        assert!(!l.covers_name("smtp.orange.fr"));
        assert!(l.covers_name("postfix3-g20.free.fr"));
        assert!(l.covers_name("ms-smtp-01.nyroc.rr.com"));
        assert!(l.covers(Some("unknown"), Some(ip("195.235.39.4"))));
        assert!(l.covers(None, Some(ip("2a01:4180:4050:400::9"))));
        assert!(!l.covers(None, Some(ip("2a01:4180:4050:401::9"))));
    }

    #[test]
    fn load_reads_exactly_the_given_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join("whitelist_clients");
        std::fs::write(&main, "example.com\n").expect("write");
        let local = dir.path().join("whitelist_clients.local");
        let l = load(&[main.clone(), local.clone()]).expect("a missing .local is fine");
        assert_eq!(l.len(), 1);
        assert!(load(&[]).expect("nothing to read").is_empty());
        let err = load(&[local, dir.path().join("other")]).expect_err("missing");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "cannot read whitelist {}: No such file or directory (os error 2)",
                dir.path().join("other").display()
            )
        );
    }

    #[test]
    fn extend_keeps_file_order() {
        let mut l = parse("a.example\n", "one");
        l.extend(parse("\nb.example\n", "two"));
        let at: Vec<String> = l.rules().iter().map(Rule::location).collect();
        assert_eq!(at, ["one:1", "two:2"]);
    }

    #[test]
    fn suggestion_lines() {
        assert_eq!(
            suggestion_line("outbound.protection.outlook.com", false),
            "outbound.protection.outlook.com"
        );
        assert_eq!(
            suggestion_line("outbound.protection.outlook.com", true),
            "/(^|\\.)outbound\\.protection\\.outlook\\.com$/"
        );
        let line = suggestion_line("mail-out.ovh.net", true);
        assert_eq!(line, "/(^|\\.)mail-out\\.ovh\\.net$/");
        let l = list(&format!("{line}\n"));
        assert!(l.covers_name("mail-out.ovh.net"));
        assert!(l.covers_name("a.mail-out.ovh.net"));
        assert!(!l.covers_name("evilmail-out.ovh.net"));
        assert!(!l.covers_name("mail-outXovh.net"));
    }

    #[test]
    fn rule_covering_domain() {
        let l = list("example.com\n/(^|\\.)mail\\.example\\.org$/\n/example\\.net/\n");
        assert_eq!(
            l.rule_covering_domain("example.com").map(|r| r.line),
            Some(1)
        );
        assert_eq!(
            l.rule_covering_domain("mx.example.com").map(|r| r.line),
            Some(1)
        );
        assert_eq!(
            l.rule_covering_domain("a.mail.example.org").map(|r| r.line),
            Some(2)
        );
        assert_eq!(l.rule_covering_domain("example.org").map(|r| r.line), None);
        // An arbitrary regex is not known to cover everything below a name.
        assert_eq!(l.rule_covering_domain("example.net").map(|r| r.line), None);
    }

    #[test]
    fn domains_for_accept_and_ignore() {
        assert_eq!(
            normalize_domain("Outbound.Protection.Outlook.COM."),
            Ok("outbound.protection.outlook.com".into())
        );
        let reason = |d: &str| normalize_domain(d).map_err(|e| e.reason);
        assert_eq!(
            reason("co.uk"),
            Err(
                "it is a public suffix (or a single label): it would cover every host under it"
                    .into()
            )
        );
        assert_eq!(
            reason("localhost"),
            Err(
                "it is a public suffix (or a single label): it would cover every host under it"
                    .into()
            )
        );
        assert_eq!(
            reason("10.1"),
            Err("it is all digits, which postgrey reads as an address, not a name".into())
        );
        assert_eq!(
            reason("*.example.com"),
            Err("'*' does not occur in host names (only letters, digits, '-', '_' and '.')".into())
        );
        assert_eq!(
            reason("a..example.com"),
            Err("it has an empty label".into())
        );
        assert_eq!(reason(".example.com"), Err("it has an empty label".into()));
        assert_eq!(
            reason("-a.example.com"),
            Err("a label starts or ends with '-'".into())
        );
        assert_eq!(
            reason("bücher.de"),
            Err("write an internationalised name in its ASCII (xn--) form".into())
        );
        assert_eq!(reason(""), Err("it is empty".into()));
        assert_eq!(
            normalize_domain("a b.com").map_err(|e| e.to_string()),
            Err("\"a b.com\" is not a usable domain: ' ' does not occur in host names (only letters, digits, '-', '_' and '.')".into())
        );
    }

    #[test]
    fn ignore_list_format() {
        let text = "# domains never to propose\nasianet.co.th\n\nExample.COM.  # spam\n  foo.example bar.example\n#x.example\n";
        assert_eq!(
            parse_ignore_list(text),
            ["asianet.co.th", "example.com", "foo.example", "bar.example"]
        );
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(shown_entry("a\u{1b}[31mb"), "a\\u{1b}[31mb");
    }

    impl Rule {
        fn kind_network(&self) -> Option<Network> {
            match self.kind {
                RuleKind::Network(n) => Some(n),
                _ => None,
            }
        }
    }
}
