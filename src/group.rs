//! Grouping clients by the organisation that runs them.
//!
//! A named client belongs to its registrable domain according to the Public Suffix List,
//! private section included: `a1-2.smtp-out.eu-west-1.amazonses.com` → `amazonses.com`,
//! `mail.bulk.co.uk` → `bulk.co.uk`. A host that is itself a public suffix (every
//! `*.compute-1.amazonaws.com` name is one, because anyone can rent such a machine) forms a
//! group of its own: grouping it with its neighbours would lump strangers together.
//!
//! Names under a top-level domain the list does not know follow the list's implicit `*` rule,
//! as the official test vectors require: `smtp.lists.example` → `lists.example`.
//!
//! Clients logged as `client_name=unknown` have no name to trust, so they are grouped by
//! network: what postgrey treats as one client (IPv4 /24 and IPv6 /64 by default, its
//! `--ipv4cidr`, `--ipv6cidr` or `--lookup-by-host` when it runs with them). They are never
//! given a name.
//!
//! [`Grouper::key`] runs once per log line, so the lookup borrows where it can: the only
//! allocation for a well-formed lower-case name is the group name that is returned.

use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use ipnet::IpNet;
use psl::Psl;

use crate::event::ClientName;
use crate::hostname;
use crate::postgrey::Network;

/// The organisation a client belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// Registrable domain, lower-case (or the host name itself when it is a public suffix).
    Domain(String),
    /// Network of an unresolved client: IPv4 /24 or IPv6 /64, or postgrey's own prefixes.
    Network(IpNet),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Domain(d) => f.write_str(d),
            GroupKey::Network(n) => write!(f, "{n}"),
        }
    }
}

/// The network postgrey's defaults treat as one client: IPv4 /24, IPv6 /64. A site running
/// postgrey with other prefixes groups by [`Grouper::network_of`] instead.
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as the IPv4 address it carries;
/// otherwise every such client would share one /64.
pub fn network_of(address: IpAddr) -> IpNet {
    Network::default().of(address)
}

/// Why a Public Suffix List text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PslError {
    #[error("not UTF-8 (line {line})")]
    NotUtf8 { line: usize },
    #[error(
        "no rules after a `// ===BEGIN ICANN DOMAINS===` marker: not a Public Suffix List file"
    )]
    NoRules,
    #[error("{}rule {rule:?}: {reason}", line_prefix(*.line))]
    BadRule {
        /// 1-based; `None` when the rule text could not be found again in the list.
        line: Option<usize>,
        rule: String,
        reason: String,
    },
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

/// The list behind a [`Grouper`]. `psl_types::List` is generic over its label iterator and so
/// cannot be a trait object.
#[derive(Clone)]
enum SuffixList {
    /// Compiled into the `psl` crate: a recent list, private section included.
    Builtin,
    /// Read from a `public_suffix_list.dat` file (`--psl`).
    Loaded(Box<publicsuffix::List>),
}

/// Maps clients to groups with a Public Suffix List (built-in, or loaded with `--psl`), and
/// addresses to the networks postgrey keys its triplets by.
#[derive(Clone)]
pub struct Grouper {
    list: SuffixList,
    network: Network,
}

impl std::fmt::Debug for Grouper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = match self.list {
            SuffixList::Builtin => "built-in",
            SuffixList::Loaded(_) => "loaded",
        };
        f.debug_struct("Grouper").field("list", &list).finish()
    }
}

impl Default for Grouper {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Grouper {
    /// The list compiled into the binary.
    pub fn builtin() -> Self {
        Grouper {
            list: SuffixList::Builtin,
            network: Network::default(),
        }
    }

    /// The same list, with the networks of a postgrey run with other `--ipv4cidr`,
    /// `--ipv6cidr` or `--lookup-by-host`.
    pub fn with_network(self, network: Network) -> Self {
        Grouper { network, ..self }
    }

    /// How addresses are cut into networks.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The network postgrey keys a triplet from `address` by.
    pub fn network_of(&self, address: IpAddr) -> IpNet {
        self.network.of(address)
    }

    /// A list in the format of `public_suffix_list.dat`: rules count only after the
    /// `===BEGIN ICANN DOMAINS===` marker, as in the published file.
    pub fn from_list_text(text: &str) -> Result<Self, PslError> {
        let list: publicsuffix::List = text.parse().map_err(|e| describe(text, e))?;
        Ok(Grouper {
            list: SuffixList::Loaded(Box::new(list)),
            network: Network::default(),
        })
    }

    /// Reads a list file (`--psl FILE`), e.g. Debian's `/usr/share/publicsuffix/public_suffix_list.dat`.
    pub fn from_list_file(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read Public Suffix List {}", path.display()))?;
        std::str::from_utf8(&bytes)
            .map_err(|e| PslError::NotUtf8 {
                line: line_of_offset(&bytes, e.valid_up_to()),
            })
            .and_then(Self::from_list_text)
            .with_context(|| format!("Public Suffix List {}", path.display()))
    }

    /// The registrable domain of a host name (`mail.bulk.co.uk` → `bulk.co.uk`), lower-case.
    /// `None` when the host is itself a public suffix, or is not a host name at all (IP
    /// literal, empty label, characters no host name has).
    pub fn registrable_domain(&self, host: &str) -> Option<String> {
        let name = normalise(host)?;
        let start = self.registrable_start(&name)?;
        name.get(start..).map(str::to_owned)
    }

    /// Whether a name is a public suffix (`co.uk`, `ec2-3-80-1-2.compute-1.amazonaws.com`, or a
    /// lone unknown label). Such a name is not an organisation, so nothing about it can be
    /// whitelisted as one. `false` for anything that is not a host name.
    pub fn is_public_suffix(&self, name: &str) -> bool {
        normalise(name).is_some_and(|name| self.suffix_len(&name) == Some(name.len()))
    }

    /// The group of a client, or `None` when neither a usable name nor an address is known.
    ///
    /// A name that is not a valid host name is treated like `unknown`: the client is grouped
    /// by its network.
    pub fn key(
        &self,
        client_name: Option<&ClientName>,
        address: Option<IpAddr>,
    ) -> Option<GroupKey> {
        if let Some(ClientName::Host(host)) = client_name
            && let Some(name) = normalise(host)
        {
            return Some(GroupKey::Domain(self.group_name(name)));
        }
        address.map(|a| GroupKey::Network(self.network_of(a)))
    }

    /// [`Grouper::key`] of a client named in a log line: [`ClientName::from_log`] made its name,
    /// a valid host name in lower case already, which every line would otherwise check again.
    pub fn key_of_logged(
        &self,
        client_name: Option<&ClientName>,
        address: Option<IpAddr>,
    ) -> Option<GroupKey> {
        if let Some(ClientName::Host(host)) = client_name {
            debug_assert_eq!(normalise(host).as_deref(), Some(host.as_str()));
            return Some(GroupKey::Domain(self.group_name(Cow::Borrowed(host))));
        }
        address.map(|a| GroupKey::Network(self.network_of(a)))
    }

    /// The registrable domain of a normalised name, or the name itself when it has none.
    fn group_name(&self, name: Cow<'_, str>) -> String {
        let Some(start) = self.registrable_start(&name) else {
            return name.into_owned();
        };
        match name {
            Cow::Borrowed(s) => s.get(start..).unwrap_or(s).to_owned(),
            Cow::Owned(mut s) => {
                if s.is_char_boundary(start) {
                    s.drain(..start);
                }
                s
            }
        }
    }

    /// Byte offset of the registrable domain in a normalised name.
    fn registrable_start(&self, name: &str) -> Option<usize> {
        let domain = match &self.list {
            SuffixList::Builtin => psl::List.domain(name.as_bytes()),
            SuffixList::Loaded(list) => list.domain(name.as_bytes()),
        };
        domain.and_then(|d| name.len().checked_sub(d.as_bytes().len()))
    }

    /// Length in bytes of the public suffix at the end of a normalised name.
    fn suffix_len(&self, name: &str) -> Option<usize> {
        let suffix = match &self.list {
            SuffixList::Builtin => psl::List.suffix(name.as_bytes()),
            SuffixList::Loaded(list) => list.suffix(name.as_bytes()),
        };
        suffix.map(|s| s.as_bytes().len())
    }
}

/// The lower-case form of a host name without its trailing dot, or `None` when it is not a
/// host name. Borrows unless the name has upper-case letters.
///
/// Labels hold letters, digits, `-` (not first or last) and `_` (Postfix accepts it in the
/// names it logs). Non-ASCII letters are kept as they stand, because the list has U-labels
/// (`公司.cn`) besides A-labels (`xn--55qx5d.cn`). A name ending in an all-digit label is an
/// IPv4 literal or no name at all: no top-level domain is numeric.
fn normalise(host: &str) -> Option<Cow<'_, str>> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_ascii() {
        // Every name of a log line: checked in one pass over its bytes.
        let checked = hostname::check(name.as_bytes())?;
        return Some(if checked.has_upper {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        });
    }
    if name.len() > hostname::MAX_NAME_BYTES {
        return None;
    }
    let mut last_label = "";
    for label in name.split('.') {
        if !is_label(label) {
            return None;
        }
        last_label = label;
    }
    if last_label.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let lower = name.to_lowercase();
    if lower == name {
        Some(Cow::Borrowed(name))
    } else {
        Some(Cow::Owned(lower))
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= hostname::MAX_LABEL_BYTES
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || c == '-'
                || c == '_'
                || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
        })
}

/// Turns the `publicsuffix` crate's error into one that names the line of the bad rule.
fn describe(text: &str, error: publicsuffix::Error) -> PslError {
    let (rule, reason) = match error {
        publicsuffix::Error::EmptyLabel(rule) => (rule, "empty label".to_owned()),
        publicsuffix::Error::ExceptionAtFirstLabel(rule) => (
            rule,
            "an exception rule needs at least two labels".to_owned(),
        ),
        publicsuffix::Error::InvalidRule(rule) => (rule, "not a valid domain name".to_owned()),
        publicsuffix::Error::InvalidList => return PslError::NoRules,
        // Only `from_bytes` reports this; text that reaches here is already UTF-8.
        publicsuffix::Error::ListNotUtf8Encoded => return PslError::NotUtf8 { line: 1 },
        // The crate may add kinds; its own wording is the best we have for those.
        other => (String::new(), other.to_string()),
    };
    let wanted = rule.trim_start_matches('!');
    let line = text
        .lines()
        .position(|line| {
            !line.starts_with("//")
                && line
                    .split_whitespace()
                    .next()
                    .is_some_and(|r| r.trim_start_matches('!') == wanted)
        })
        .map(|i| i + 1);
    PslError::BadRule { line, rule, reason }
}

/// 1-based line number of a byte offset.
fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    1 + before.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official test vectors of publicsuffix/list (`tests/test_psl.txt`).
    const TEST_PSL: &str = include_str!("../tests/fixtures/psl/test_psl.txt");
    /// A few real rules in the list file format, both sections.
    const SUBSET_LIST: &str = include_str!("../tests/fixtures/psl/subset.dat");

    fn loaded() -> Grouper {
        Grouper::from_list_text(SUBSET_LIST).unwrap()
    }

    fn both() -> [(&'static str, Grouper); 2] {
        [("built-in", Grouper::builtin()), ("subset.dat", loaded())]
    }

    #[test]
    fn a_logged_name_is_grouped_as_any_name() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        for (list, grouper) in both() {
            for raw in [
                "Mail.Bulk.CO.UK.",
                "mx1.example.com",
                "unknown",
                "co.uk",
                "x_y.example",
            ] {
                let name = ClientName::from_log(raw.as_bytes());
                assert_eq!(
                    grouper.key_of_logged(name.as_ref(), Some(v4)),
                    grouper.key(name.as_ref(), Some(v4)),
                    "{list}: {raw}"
                );
            }
            assert_eq!(grouper.key_of_logged(None, None), None);
        }
    }

    /// `checkPublicSuffix('input', 'expected');` lines; `null` is `None`.
    fn vectors() -> Vec<(Option<&'static str>, Option<&'static str>)> {
        fn arg(a: &'static str) -> Option<&'static str> {
            match a.trim() {
                "null" => None,
                quoted => Some(
                    quoted
                        .strip_prefix('\'')
                        .and_then(|q| q.strip_suffix('\''))
                        .unwrap_or_else(|| panic!("bad argument {quoted}")),
                ),
            }
        }
        TEST_PSL
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| {
                let args = l
                    .strip_prefix("checkPublicSuffix(")
                    .and_then(|l| l.strip_suffix(");"))
                    .unwrap_or_else(|| panic!("bad line {l}"));
                let (input, expected) = args.split_once(',').unwrap();
                (arg(input), arg(expected))
            })
            .collect()
    }

    #[test]
    fn test_vectors_are_all_read() {
        let vectors = vectors();
        assert_eq!(vectors.len(), 78);
        assert_eq!(vectors[0], (None, None));
        assert_eq!(vectors[2], (Some("example.COM"), Some("example.com")));
        assert_eq!(vectors[77], (Some("xn--fiqs8s"), None));
    }

    #[test]
    fn official_test_vectors() {
        for (list, grouper) in both() {
            for (input, expected) in vectors() {
                let input = input.unwrap_or("");
                assert_eq!(
                    grouper.registrable_domain(input).as_deref(),
                    expected,
                    "{list}: registrable domain of {input:?}"
                );
                // Every vector without a registrable domain is a public suffix itself, save
                // the ones that are not host names at all (null, leading dot).
                let is_name = normalise(input).is_some();
                assert_eq!(
                    grouper.is_public_suffix(input),
                    expected.is_none() && is_name,
                    "{list}: is {input:?} a public suffix"
                );
                let want_key = match expected {
                    Some(domain) => Some(domain.to_owned()),
                    None if is_name => Some(input.to_lowercase()),
                    None => None,
                };
                let host = ClientName::Host(input.to_owned());
                assert_eq!(
                    grouper.key(Some(&host), None),
                    want_key.map(GroupKey::Domain),
                    "{list}: group of {input:?}"
                );
            }
        }
    }

    #[test]
    fn senders_group_by_registrable_domain() {
        let grouper = Grouper::builtin();
        for (host, domain) in [
            ("smtp-out.eu-west-1.amazonses.com", "amazonses.com"),
            ("a1-2.smtp-out.eu-west-1.amazonses.com", "amazonses.com"),
            ("mail.bulk.co.uk", "bulk.co.uk"),
            ("MAIL.Example.COM.", "example.com"),
            (
                "mail-eopbgr140085.outbound.protection.outlook.com",
                "outlook.com",
            ),
            ("mail1.mcsv.net", "mcsv.net"),
            ("mail_relay.example.org", "example.org"),
            ("xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
        ] {
            assert_eq!(
                grouper.registrable_domain(host).as_deref(),
                Some(domain),
                "{host}"
            );
            assert_eq!(
                grouper.key(Some(&ClientName::Host(host.to_owned())), None),
                Some(GroupKey::Domain(domain.to_owned())),
                "{host}"
            );
            assert!(!grouper.is_public_suffix(host), "{host}");
        }
    }

    #[test]
    fn a_host_that_is_a_public_suffix_is_its_own_group() {
        for (list, grouper) in both() {
            let ec2 = "ec2-3-80-1-2.compute-1.amazonaws.com";
            assert!(grouper.is_public_suffix(ec2), "{list}");
            assert!(grouper.is_public_suffix("EC2-3-80-1-2.compute-1.amazonaws.com."));
            assert_eq!(grouper.registrable_domain(ec2), None, "{list}");
            let address = Some("3.80.1.2".parse().unwrap());
            assert_eq!(
                grouper.key(
                    Some(&ClientName::Host(
                        "EC2-3-80-1-2.Compute-1.amazonaws.com".into()
                    )),
                    address
                ),
                Some(GroupKey::Domain(ec2.to_owned())),
                "{list}"
            );
            // The suffix's parent is an ordinary registrable domain.
            assert_eq!(
                grouper
                    .registrable_domain("compute-1.amazonaws.com")
                    .as_deref(),
                Some("amazonaws.com"),
                "{list}"
            );
            assert!(!grouper.is_public_suffix("amazonaws.com"), "{list}");
            assert!(grouper.is_public_suffix("co.uk"), "{list}");
        }
    }

    #[test]
    fn unknown_top_level_domains_follow_the_implicit_wildcard_rule() {
        for (list, grouper) in both() {
            for (host, domain) in [
                ("mail.example", Some("mail.example")),
                ("smtp.lists.example", Some("lists.example")),
                ("mx1.corp.internal", Some("corp.internal")),
                ("example", None),
                ("mailhost", None),
            ] {
                assert_eq!(
                    grouper.registrable_domain(host).as_deref(),
                    domain,
                    "{list}: {host}"
                );
            }
            // A lone label is a group of its own, never dropped.
            assert_eq!(
                grouper.key(Some(&ClientName::Host("mailhost".into())), None),
                Some(GroupKey::Domain("mailhost".into()))
            );
        }
    }

    #[test]
    fn what_is_not_a_host_name_has_no_domain() {
        let grouper = Grouper::builtin();
        let long_label = format!("{}.example.com", "a".repeat(64));
        let long_name = format!("{}example.com", "abcdefghi.".repeat(25));
        assert_eq!(long_name.len(), 261);
        for input in [
            "",
            ".",
            "..",
            "example.com..",
            "mail..example.com",
            ".example.com",
            "192.0.2.1",
            "192.0.2.1.",
            "[192.0.2.1]",
            "2001:db8::1",
            "[IPv6:2001:db8::1]",
            "mail.example.123",
            "-mail.example.com",
            "mail-.example.com",
            "mail example.com",
            "mail\texample.com",
            "mail\u{7f}.example.com",
            "mail\u{0}.example.com",
            "mail\u{85}.example.com",
            "mail/1.example.com",
            "mail@example.com",
            "mail%2e.example.com",
            "*.example.com",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert_eq!(grouper.registrable_domain(input), None, "{input:?}");
            assert!(!grouper.is_public_suffix(input), "{input:?}");
            assert_eq!(
                grouper.key(Some(&ClientName::Host(input.to_owned())), None),
                None,
                "{input:?}"
            );
        }
        // At the limits: 63-octet label, 253-octet name.
        let a63 = "a".repeat(63);
        let name253 = format!("{a63}.{a63}.{a63}.{}.example.com", "b".repeat(49));
        assert_eq!(name253.len(), 253);
        assert_eq!(
            grouper.registrable_domain(&name253).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            grouper
                .registrable_domain(&format!("{name253}."))
                .as_deref(),
            Some("example.com")
        );
        let name254 = format!("b{name253}");
        assert_eq!(grouper.registrable_domain(&name254), None);
    }

    #[test]
    fn normalising_borrows_unless_there_is_upper_case() {
        assert!(matches!(
            normalise("mail.example.com."),
            Some(Cow::Borrowed("mail.example.com"))
        ));
        assert!(matches!(
            normalise("食狮.公司.cn"),
            Some(Cow::Borrowed("食狮.公司.cn"))
        ));
        assert_eq!(
            normalise("MAIL.Example.COM.").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(
            normalise("ÉCOLE.Example.FR").as_deref(),
            Some("école.example.fr")
        );
    }

    #[test]
    fn unnamed_clients_group_by_network() {
        let grouper = Grouper::builtin();
        let v4: IpAddr = "192.0.2.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let v4_net = GroupKey::Network("192.0.2.0/24".parse().unwrap());
        let v6_net = GroupKey::Network("2001:db8:1:2::/64".parse().unwrap());
        assert_eq!(
            grouper.key(Some(&ClientName::Unknown), Some(v4)),
            Some(v4_net.clone())
        );
        assert_eq!(grouper.key(None, Some(v4)), Some(v4_net.clone()));
        assert_eq!(
            grouper.key(Some(&ClientName::Unknown), Some(v6)),
            Some(v6_net.clone())
        );
        assert_eq!(grouper.key(None, Some(v6)), Some(v6_net.clone()));
        // A name that is no host name is not trusted either.
        assert_eq!(
            grouper.key(Some(&ClientName::Host("192.0.2.77".into())), Some(v4)),
            Some(v4_net.clone())
        );
        assert_eq!(grouper.key(Some(&ClientName::Unknown), None), None);
        assert_eq!(grouper.key(None, None), None);
        assert_eq!(v4_net.to_string(), "192.0.2.0/24");
        assert_eq!(v6_net.to_string(), "2001:db8:1:2::/64");
        // A name wins over the address.
        assert_eq!(
            grouper.key(Some(&ClientName::Host("mail.bulk.co.uk".into())), Some(v4)),
            Some(GroupKey::Domain("bulk.co.uk".into()))
        );
    }

    #[test]
    fn network_boundaries() {
        let net = |a: &str| network_of(a.parse().unwrap()).to_string();
        assert_eq!(net("192.0.2.0"), "192.0.2.0/24");
        assert_eq!(net("192.0.2.255"), "192.0.2.0/24");
        assert_eq!(net("192.0.3.1"), "192.0.3.0/24");
        assert_eq!(net("::ffff:192.0.2.1"), "192.0.2.0/24");
        assert_eq!(net("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(net("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(net("::1"), "::/64");
    }

    #[test]
    fn a_loaded_list_is_the_one_used() {
        let grouper = loaded();
        assert_eq!(
            grouper.registrable_domain("mail.bulk.co.uk").as_deref(),
            Some("bulk.co.uk")
        );
        // `uk.com` is in the subset's private section.
        assert_eq!(
            grouper.registrable_domain("mx.example.uk.com").as_deref(),
            Some("example.uk.com")
        );
        // `blogspot.com` is a private rule of the real list, absent from the subset.
        assert_eq!(
            grouper.registrable_domain("a.b.blogspot.com").as_deref(),
            Some("blogspot.com")
        );
        assert_eq!(
            Grouper::builtin()
                .registrable_domain("a.b.blogspot.com")
                .as_deref(),
            Some("b.blogspot.com")
        );
    }

    #[test]
    fn rules_outside_the_sections_do_not_count() {
        let text = "// no marker yet\nexample\n// ===BEGIN ICANN DOMAINS===\ncom\n";
        let grouper = Grouper::from_list_text(text).unwrap();
        assert_eq!(
            grouper.registrable_domain("a.b.example").as_deref(),
            Some("b.example")
        );
        assert!(grouper.is_public_suffix("com"));
    }

    #[test]
    fn a_bad_list_names_the_line() {
        assert_eq!(
            Grouper::from_list_text("com\nnet\n").unwrap_err(),
            PslError::NoRules
        );
        assert_eq!(Grouper::from_list_text("").unwrap_err(), PslError::NoRules);
        let bad_exception = "// ===BEGIN ICANN DOMAINS===\ncom\n\n!net\n";
        let error = Grouper::from_list_text(bad_exception).unwrap_err();
        assert_eq!(
            error,
            PslError::BadRule {
                line: Some(4),
                rule: "!net".into(),
                reason: "an exception rule needs at least two labels".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "line 4: rule \"!net\": an exception rule needs at least two labels"
        );
        let empty_label = "// ===BEGIN ICANN DOMAINS===\ncom\nco..uk extra words\n";
        assert_eq!(
            Grouper::from_list_text(empty_label)
                .unwrap_err()
                .to_string(),
            "line 3: rule \"co..uk\": empty label"
        );
        let control = "// ===BEGIN ICANN DOMAINS===\ncom\n!a..\u{1b}[31m\n";
        assert_eq!(
            Grouper::from_list_text(control).unwrap_err().to_string(),
            "line 3: rule \"a..\\u{1b}[31m\": empty label"
        );
    }

    #[test]
    fn list_files() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psl/subset.dat");
        let grouper = Grouper::from_list_file(&fixture).unwrap();
        assert!(grouper.is_public_suffix("ec2-3-80-1-2.compute-1.amazonaws.com"));
        assert_eq!(format!("{grouper:?}"), "Grouper { list: \"loaded\" }");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.dat");
        let error = Grouper::from_list_file(&missing).unwrap_err();
        assert_eq!(
            format!("{error:#}").split(": No such file").next().unwrap(),
            format!("cannot read Public Suffix List {}", missing.display())
        );

        let latin1 = dir.path().join("latin1.dat");
        std::fs::write(&latin1, b"// ===BEGIN ICANN DOMAINS===\ncom\nk\xf6ln\n").unwrap();
        let error = Grouper::from_list_file(&latin1).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "Public Suffix List {}: not UTF-8 (line 3)",
                latin1.display()
            )
        );
    }
}
