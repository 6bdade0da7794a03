//! The judgement a postmaster makes by hand: is this group already whitelisted, should it be,
//! or does it look like a spam source that greylisting is right to slow down?
//!
//! * **Status** compares the clients seen with postgrey's whitelist *now*: `whitelisted` when
//!   every client — an address with the name logged with it — is covered by its name or by its
//!   address (Mailchimp is listed by CIDR only), as postgrey itself would let it pass;
//!   `ignored` when the postmaster put the domain in the ignore file; `partly-whitelisted`
//!   when some clients are covered; otherwise `candidate`. A capped day keeps a
//!   representative sample of its clients, so a cap never changes the status.
//! * **Verdict** (candidates with at least `min_count` greylistings only) follows
//!   [`Thresholds`] in [`verdict`], the one place the rule is written down.
//! * **Suggestion** (for `whitelist` verdicts): the tightest DNS suffix covering every host seen,
//!   never shorter than the registrable domain. A plain name in `whitelist_clients` matches
//!   at a label boundary, so the line is safe by construction.

use std::fmt;
use std::net::IpAddr;

use crate::group::{GroupKey, Grouper};
use crate::tally::Evidence;
use crate::whitelist::{Whitelist, name_is_within};

/// Where a group stands against the whitelist and ignore files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Whitelisted,
    Ignored,
    PartlyWhitelisted,
    Candidate,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Whitelisted => "whitelisted",
            Status::Ignored => "ignored",
            Status::PartlyWhitelisted => "partly-whitelisted",
            Status::Candidate => "candidate",
        }
    }

    /// Not yet decided by the postmaster: what the monitoring check counts.
    pub fn is_unreviewed(self) -> bool {
        matches!(self, Status::PartlyWhitelisted | Status::Candidate)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A multi-server sender that greylisting delays for nothing.
    Whitelist,
    /// Looks like a dynamic-IP pool or spam run: greylisting is doing its job.
    SpamLike,
    /// Not enough evidence either way.
    Review,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Whitelist => "whitelist",
            Verdict::SpamLike => "spam-like",
            Verdict::Review => "review",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The numbers behind a verdict. Documented in README ("How verdicts are made").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Fewer greylistings than this: no verdict (the classic Nagios plugin's 15).
    pub min_count: u64,
    /// Greylisted again from another network of the group at least this often → whitelist.
    pub min_retries_from_other_net: u64,
    /// A median wait at least this long (seconds) for mail that did come back → whitelist.
    pub long_delay_s: u64,
    /// At least this share of greylisted triplets came back (passed after delay or retried
    /// from elsewhere) for a whitelist verdict.
    pub min_return_share: f64,
    /// At most this share came back, from at least `min_spam_ips` addresses → spam-like.
    pub max_spam_return_share: f64,
    pub min_spam_ips: u64,
    /// At least this share of host names look like dynamic pools → spam-like.
    pub dynamic_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_count: 15,
            min_retries_from_other_net: 2,
            long_delay_s: 1800,
            min_return_share: 0.25,
            max_spam_return_share: 0.1,
            min_spam_ips: 10,
            dynamic_share: 0.5,
        }
    }
}

/// Status, verdict and suggestion for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub status: Status,
    pub verdict: Option<Verdict>,
    /// One line a postmaster can check against the evidence; empty without a verdict.
    pub reason: String,
    /// The DNS suffix to whitelist (see [`suggestion`]).
    pub suggestion: Option<String>,
}

/// What advice is measured against.
pub struct Context<'a> {
    pub whitelist: &'a Whitelist,
    /// Ignore-file entries, lower-case.
    pub ignored: &'a [String],
    pub grouper: &'a Grouper,
    pub thresholds: Thresholds,
}

/// What a group's status is judged on: the clients seen (the name logged with an address,
/// `None` for `unknown`), and the host names and addresses seen. Borrowed, so that `check` can
/// judge thousands of groups straight from the summary it read.
pub struct Seen<'a, N: AsRef<str>> {
    pub hosts: &'a [N],
    pub ips: &'a [IpAddr],
    pub clients: &'a [(Option<N>, IpAddr)],
}

impl<N: AsRef<str>> Seen<'_, N> {
    /// Nothing seen: judged on the ignore file alone.
    pub const NOTHING: Self = Seen {
        hosts: &[],
        ips: &[],
        clients: &[],
    };
}

impl<'a> Seen<'a, crate::tally::Name> {
    pub fn of(evidence: &'a Evidence) -> Self {
        Seen {
            hosts: &evidence.hosts,
            ips: &evidence.ips,
            clients: &evidence.clients,
        }
    }
}

/// How many of the group's clients the whitelist lets pass, of how many.
///
/// A client passes when postgrey would let it: by the name logged with its address (`unknown`
/// when none) or by the address. Evidence without clients (a summary written before they were
/// recorded, decisions that logged no address) counts each host name and each address as a
/// client of its own.
fn coverage<N: AsRef<str>>(seen: &Seen<'_, N>, whitelist: &Whitelist) -> (usize, usize) {
    if !seen.clients.is_empty() {
        let covered = seen
            .clients
            .iter()
            .filter(|(name, address)| {
                whitelist.covers(name.as_ref().map(AsRef::as_ref), Some(*address))
            })
            .count();
        return (covered, seen.clients.len());
    }
    let names = seen
        .hosts
        .iter()
        .filter(|h| whitelist.covers_name(h.as_ref()))
        .count();
    let addresses = seen
        .ips
        .iter()
        .filter(|ip| whitelist.covers_address(**ip))
        .count();
    (names + addresses, seen.hosts.len() + seen.ips.len())
}

/// Whether the whitelist lets every client pass (`status_of` is `Whitelisted`): stops at the
/// first client it does not, for `check`'s many groups it only counts.
pub fn is_whitelisted<N: AsRef<str>>(seen: &Seen<'_, N>, whitelist: &Whitelist) -> bool {
    if !seen.clients.is_empty() {
        return seen.clients.iter().all(|(name, address)| {
            whitelist.covers(name.as_ref().map(AsRef::as_ref), Some(*address))
        });
    }
    !(seen.hosts.is_empty() && seen.ips.is_empty())
        && seen.hosts.iter().all(|h| whitelist.covers_name(h.as_ref()))
        && seen.ips.iter().all(|ip| whitelist.covers_address(*ip))
}

/// Where a group stands now.
pub fn status(
    key: &GroupKey,
    evidence: &Evidence,
    whitelist: &Whitelist,
    ignored: &[String],
) -> Status {
    status_of(key, &Seen::of(evidence), whitelist, ignored)
}

/// Where a group stands now, judged on what was seen of it.
pub fn status_of<N: AsRef<str>>(
    key: &GroupKey,
    seen: &Seen<'_, N>,
    whitelist: &Whitelist,
    ignored: &[String],
) -> Status {
    let (covered, clients) = coverage(seen, whitelist);
    let is_ignored = match key {
        GroupKey::Domain(domain) => ignored.iter().any(|i| name_is_within(domain, i)),
        GroupKey::Network(net) => ignored.iter().any(|i| i.parse() == Ok(*net)),
    };
    if clients > 0 && covered == clients {
        Status::Whitelisted
    } else if is_ignored {
        Status::Ignored
    } else if covered > 0 {
        Status::PartlyWhitelisted
    } else {
        Status::Candidate
    }
}

/// Dynamic-pool names carry the address (`dynamic-203-0-113-77`, `77.113.0.203.adsl…`) or
/// a provider's pool keyword, in the labels before the group's `domain` (the whole name when
/// it is not within `domain`): digits in the domain itself (`mail3-4.com`) say nothing.
pub fn looks_dynamic(host: &str, domain: Option<&str>) -> bool {
    const KEYWORDS: &[&str] = &[
        "dyn",
        "dynamic",
        "dsl",
        "adsl",
        "vdsl",
        "xdsl",
        "cable",
        "pool",
        "dhcp",
        "ppp",
        "pppoe",
        "dial",
        "dialup",
        "broadband",
        "bb",
        "cust",
        "customer",
        "client",
        "clients",
        "user",
        "home",
        "res",
        "residential",
        "ip",
        "host",
        "static",
        "fttx",
        "ftth",
        "mobile",
        "wireless",
    ];
    let first_labels: Vec<&str> = host.split('.').take(3).collect();
    let tokens = first_labels
        .iter()
        .flat_map(|l| l.split(['-', '_']))
        .collect::<Vec<_>>();
    if tokens
        .iter()
        .any(|t| KEYWORDS.contains(&t.trim_end_matches(|c: char| c.is_ascii_digit())))
    {
        return true;
    }
    // Four or more numeric runs in the leading labels: an address spelled out.
    let leading = match domain {
        Some(d) if name_is_within(host, d) => host.get(..host.len() - d.len()).unwrap_or(""),
        _ => host,
    };
    let numeric_runs = leading
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty() && run.len() <= 3)
        .count();
    numeric_runs >= 4
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Human form of a number of seconds: `45s`, `12m`, `3h10m`, `2d4h`.
pub fn human_duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m:02}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

/// The rule, for the group `key`. Returns `None` below `min_count` greylistings.
pub fn verdict(key: &GroupKey, evidence: &Evidence, t: &Thresholds) -> Option<(Verdict, String)> {
    let greylisted = evidence.greylisted();
    if greylisted < t.min_count {
        return None;
    }
    let domain = match key {
        GroupKey::Domain(domain) => Some(domain.as_str()),
        GroupKey::Network(_) => None,
    };
    // A retry greylisted again at another MX host is a sender that came back like a real MTA
    // does, but no sign of several sending servers: it counts in the return share, never
    // towards `multi_server` (the fix for it is the site's, see `report::mx`).
    let came_back = evidence.passed_after_delay
        + evidence.retried_from_other_net
        + evidence.retried_at_other_mx;
    let at_other_mx = match evidence.retried_at_other_mx {
        0 => String::new(),
        n => format!("; {n} greylisted again at another MX host"),
    };
    let return_share = share(came_back, evidence.new.max(1));
    let dynamic = evidence
        .hosts
        .iter()
        .filter(|h| looks_dynamic(h, domain))
        .count() as u64;
    let dynamic_share = share(dynamic, evidence.hosts.len() as u64);
    let delay = evidence
        .median_delay_s
        .map(|d| format!(", median wait {}", human_duration(d)))
        .unwrap_or_default();
    let mostly_dynamic = !evidence.hosts.is_empty() && dynamic_share >= t.dynamic_share;

    let multi_server = evidence.retried_from_other_net >= t.min_retries_from_other_net;
    let long_waits = evidence.passed_after_delay > 0
        && evidence.median_delay_s.is_some_and(|d| d >= t.long_delay_s);
    if (multi_server || long_waits) && return_share >= t.min_return_share && !mostly_dynamic {
        // Worded by the rule that fired: a sender that never retried from elsewhere is not
        // called multi-server.
        let why = if multi_server {
            format!(
                "multi-server sender: {} of {} greylistings retried from another network, {} passed after delay{delay}{at_other_mx}",
                evidence.retried_from_other_net, evidence.new, evidence.passed_after_delay
            )
        } else {
            format!(
                "mail passed only after long waits: {} of {} greylistings passed after delay{delay}, {} retried from another network{at_other_mx}",
                evidence.passed_after_delay, evidence.new, evidence.retried_from_other_net
            )
        };
        return Some((Verdict::Whitelist, why));
    }
    if mostly_dynamic
        || (return_share <= t.max_spam_return_share && evidence.distinct_ips >= t.min_spam_ips)
    {
        let why = if evidence.hosts.is_empty() {
            // Unresolved clients: no names to judge, only that they never came back.
            format!(
                "{} without a name, {} of {} greylistings came back",
                counted(evidence.distinct_ips, "address", "addresses"),
                came_back,
                evidence.new
            )
        } else {
            format!(
                "{} on {}, {} of {} came back; {:.0}% of names look like dynamic pools",
                counted(evidence.distinct_hosts, "host", "hosts"),
                counted(evidence.distinct_ips, "address", "addresses"),
                came_back,
                evidence.new,
                dynamic_share * 100.0
            )
        };
        return Some((Verdict::SpamLike, why));
    }
    let why = format!(
        "{} from {} in {}, {} came back{delay}{at_other_mx}",
        counted(greylisted, "greylisting", "greylistings"),
        counted(evidence.distinct_ips, "address", "addresses"),
        counted(evidence.distinct_nets, "network", "networks"),
        came_back
    );
    Some((Verdict::Review, why))
}

/// `n` and its noun, singular for one.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The tightest DNS suffix that covers every host and is at least the registrable domain, or
/// `None` when no safe name exists (unresolved clients, hosts that are public suffixes).
pub fn suggestion(key: &GroupKey, evidence: &Evidence, grouper: &Grouper) -> Option<String> {
    let GroupKey::Domain(domain) = key else {
        return None;
    };
    if evidence.hosts.is_empty()
        || grouper.is_public_suffix(domain)
        || evidence.hosts.iter().any(|h| grouper.is_public_suffix(h))
    {
        return None;
    }
    let mut common: Vec<&str> = evidence.hosts[0].rsplit('.').collect();
    for host in &evidence.hosts[1..] {
        let shared = common
            .iter()
            .zip(host.rsplit('.'))
            .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
            .count();
        common.truncate(shared);
    }
    common.reverse();
    let mut suffix = common.join(".");
    // Hosts kept as a sample (the state file keeps fewer of older days): a suffix that is one
    // of them would whitelist that server only; its siblings share the parent.
    let sampled = evidence.distinct_hosts > evidence.hosts.len() as u64;
    let one_of_them = evidence
        .hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&suffix));
    if let Some((_, parent)) = suffix.split_once('.').filter(|_| sampled && one_of_them) {
        suffix = parent.to_owned();
    }
    if name_is_within(&suffix, domain) {
        Some(suffix)
    } else {
        Some(domain.clone())
    }
}

/// Status, verdict, reason and suggestion for one group.
pub fn advise(key: &GroupKey, evidence: &Evidence, ctx: &Context<'_>) -> Advice {
    let status = status(key, evidence, ctx.whitelist, ctx.ignored);
    let judged = match status {
        Status::Candidate | Status::PartlyWhitelisted => verdict(key, evidence, &ctx.thresholds),
        Status::Whitelisted | Status::Ignored => None,
    };
    let (verdict, reason) = match judged {
        Some((v, why)) => (Some(v), why),
        None => (None, String::new()),
    };
    let suggestion = match verdict {
        Some(Verdict::Whitelist) => suggestion(key, evidence, ctx.grouper),
        _ => None,
    };
    Advice {
        status,
        verdict,
        reason,
        suggestion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::Name;

    fn evidence(hosts: &[&str], ips: &[&str]) -> Evidence {
        Evidence {
            hosts: hosts.iter().map(|&h| Name::from(h)).collect(),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            distinct_hosts: hosts.len() as u64,
            distinct_ips: ips.len() as u64,
            ..Evidence::default()
        }
    }

    fn domain(d: &str) -> GroupKey {
        GroupKey::Domain(d.to_string())
    }

    #[test]
    fn label_boundary() {
        assert!(name_is_within("o1.sendgrid.net", "sendgrid.net"));
        assert!(name_is_within("SendGrid.NET", "sendgrid.net"));
        assert!(!name_is_within("evilsendgrid.net", "sendgrid.net"));
        assert!(!name_is_within("net", "sendgrid.net"));
    }

    fn whitelist(lines: &str) -> Whitelist {
        crate::whitelist::parse(lines, "whitelist_clients")
    }

    fn with_clients(clients: &[(Option<&str>, &str)]) -> Evidence {
        let mut e = evidence(&[], &[]);
        e.clients = clients
            .iter()
            .map(|(name, ip)| (name.map(Name::from), ip.parse().unwrap()))
            .collect();
        e.hosts = clients
            .iter()
            .filter_map(|(n, _)| n.map(Name::from))
            .collect();
        e.ips = e.clients.iter().map(|(_, ip)| *ip).collect();
        e
    }

    #[test]
    fn whitelisted_when_every_client_is_covered_by_name_or_address() {
        let list = whitelist("mx.example.com\n198.51.100.0/24\n");
        let status = |clients: &[(Option<&str>, &str)]| {
            status(&domain("example.com"), &with_clients(clients), &list, &[])
        };
        // a by its name, b only by its address: postgrey lets both pass.
        assert_eq!(
            status(&[
                (Some("mx.example.com"), "192.0.2.1"),
                (Some("b.example.com"), "198.51.100.7"),
            ]),
            Status::Whitelisted
        );
        // An unresolved client is covered by its address alone.
        assert_eq!(
            status(&[
                (None, "198.51.100.8"),
                (Some("mx.example.com"), "192.0.2.1")
            ]),
            Status::Whitelisted
        );
        assert_eq!(
            status(&[
                (Some("mx.example.com"), "192.0.2.1"),
                (Some("c.example.com"), "203.0.113.9"),
            ]),
            Status::PartlyWhitelisted
        );
        // The same address once without its name is a client postgrey greylists.
        assert_eq!(
            status(&[(Some("mx.example.com"), "192.0.2.1"), (None, "192.0.2.1")]),
            Status::PartlyWhitelisted
        );
        assert_eq!(
            status(&[(Some("c.example.com"), "203.0.113.9")]),
            Status::Candidate
        );
        assert_eq!(status(&[]), Status::Candidate);
    }

    #[test]
    fn a_cap_does_not_downgrade_a_covered_group() {
        let list = whitelist("example.com\n");
        let mut e = with_clients(&[(Some("mx.example.com"), "192.0.2.1")]);
        e.caps.distinct = true;
        e.caps.delays = true;
        e.caps.pairs = true;
        assert_eq!(
            status(&domain("example.com"), &e, &list, &[]),
            Status::Whitelisted
        );
    }

    #[test]
    fn without_clients_every_name_and_address_counts_on_its_own() {
        // A summary written before clients were recorded.
        let list = whitelist("198.51.100.0/24\n");
        let e = evidence(&["mx.mailchimp.example"], &["198.51.100.1"]);
        assert_eq!(
            status(&domain("mailchimp.example"), &e, &list, &[]),
            Status::PartlyWhitelisted
        );
        let list = whitelist("198.51.100.0/24\nmailchimp.example\n");
        assert_eq!(
            status(&domain("mailchimp.example"), &e, &list, &[]),
            Status::Whitelisted
        );
    }

    #[test]
    fn ignored_by_domain_at_a_label_boundary() {
        let list = whitelist("");
        let e = with_clients(&[(Some("mx.bulk.co.uk"), "192.0.2.1")]);
        let ignored = ["bulk.co.uk".to_owned()];
        assert_eq!(
            status(&domain("bulk.co.uk"), &e, &list, &ignored),
            Status::Ignored
        );
        assert_eq!(
            status(&domain("notbulk.co.uk"), &e, &list, &ignored),
            Status::Candidate
        );
    }

    #[test]
    fn suggestion_is_tightest_common_suffix() {
        let g = Grouper::builtin();
        let e = evidence(
            &[
                "mail-eopbgr140085.outbound.protection.outlook.com",
                "mail-db8eur05on2061.outbound.protection.outlook.com",
            ],
            &[],
        );
        assert_eq!(
            suggestion(&domain("outlook.com"), &e, &g).as_deref(),
            Some("outbound.protection.outlook.com")
        );
        let e = evidence(&["a.mx.example.com", "b.smtp.example.com"], &[]);
        assert_eq!(
            suggestion(&domain("example.com"), &e, &g).as_deref(),
            Some("example.com")
        );
        let e = evidence(&[], &["192.0.2.1"]);
        assert_eq!(
            suggestion(&GroupKey::Network("192.0.2.0/24".parse().unwrap()), &e, &g),
            None
        );
    }

    #[test]
    fn a_sampled_host_is_widened_to_its_siblings() {
        let g = Grouper::builtin();
        let one = "a0-1.smtp-out.eu-west-1.amazonses.com";
        let mut e = evidence(&[one], &[]);
        // All there was: that one server.
        assert_eq!(
            suggestion(&domain("amazonses.com"), &e, &g).as_deref(),
            Some(one)
        );
        // One of twelve kept: its parent.
        e.distinct_hosts = 12;
        assert_eq!(
            suggestion(&domain("amazonses.com"), &e, &g).as_deref(),
            Some("smtp-out.eu-west-1.amazonses.com")
        );
        // Never wider than the registrable domain.
        let mut e = evidence(&["amazonses.com"], &[]);
        e.distinct_hosts = 3;
        assert_eq!(
            suggestion(&domain("amazonses.com"), &e, &g).as_deref(),
            Some("amazonses.com")
        );
        // A suffix shorter than every sampled host is kept.
        let mut e = evidence(&["a.mx.example.com", "b.mx.example.com"], &[]);
        e.distinct_hosts = 40;
        assert_eq!(
            suggestion(&domain("example.com"), &e, &g).as_deref(),
            Some("mx.example.com")
        );
    }

    #[test]
    fn dynamic_names() {
        let dynamic = |host: &str, domain: &str| looks_dynamic(host, Some(domain));
        assert!(dynamic(
            "dynamic-203-0-113-77.adsl.example-isp.net",
            "example-isp.net"
        ));
        assert!(dynamic("77.113.0.203.static.example.net", "example.net"));
        assert!(dynamic("ppp-1-2-3-4.example.net", "example.net"));
        assert!(looks_dynamic("203-0-113-77.example.net", None));
        assert!(!dynamic(
            "a1-2.smtp-out.eu-west-1.amazonses.com",
            "amazonses.com"
        ));
        assert!(!dynamic(
            "mail-eopbgr140085.outbound.protection.outlook.com",
            "outlook.com"
        ));
        assert!(!dynamic("mail132-4.atl131.mcsv.net", "mcsv.net"));
    }

    #[test]
    fn digits_in_the_domain_itself_do_not_make_a_name_dynamic() {
        assert!(!looks_dynamic(
            "mx1.relay2.mail3-4.com",
            Some("mail3-4.com")
        ));
        assert!(!looks_dynamic("mail3-4-5-6.com", Some("mail3-4-5-6.com")));
        // Outside its domain (or without one) the whole name is read.
        assert!(looks_dynamic("mx1.relay2.mail3-4.com", Some("example.com")));
        assert!(looks_dynamic("mx1.relay2.mail3-4.com", None));
    }

    #[test]
    fn verdicts_follow_the_rule() {
        let t = Thresholds::default();
        let mut multi = evidence(
            &["a.smtp.example.com", "b.smtp.example.com"],
            &["192.0.2.1", "198.51.100.1"],
        );
        multi.new = 20;
        multi.retried_from_other_net = 8;
        multi.passed_after_delay = 10;
        multi.median_delay_s = Some(7200);
        let key = domain("example.com");
        let (v, why) = verdict(&key, &multi, &t).unwrap();
        assert_eq!(v, Verdict::Whitelist);
        assert_eq!(
            why,
            "multi-server sender: 8 of 20 greylistings retried from another network, 10 passed after delay, median wait 2h"
        );

        let mut few = multi.clone();
        few.new = 14;
        assert_eq!(verdict(&key, &few, &t), None);

        let hosts: Vec<String> = (1..=30)
            .map(|i| format!("dynamic-203-0-113-{i}.adsl.isp.example"))
            .collect();
        let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let ips: Vec<String> = (1..=30).map(|i| format!("203.0.113.{i}")).collect();
        let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let mut spam = evidence(&host_refs, &ip_refs);
        spam.new = 30;
        let isp = domain("isp.example");
        assert_eq!(verdict(&isp, &spam, &t).unwrap().0, Verdict::SpamLike);

        let mut small = evidence(&["mail.small.example"], &["192.0.2.9"]);
        small.new = 16;
        small.passed_after_delay = 16;
        small.median_delay_s = Some(320);
        let key = domain("small.example");
        assert_eq!(verdict(&key, &small, &t).unwrap().0, Verdict::Review);
    }

    #[test]
    fn the_reason_names_the_rule_that_fired() {
        let t = Thresholds::default();
        let mut patient = evidence(&["mail.patient.example"], &["192.0.2.9"]);
        patient.new = 16;
        patient.passed_after_delay = 12;
        patient.median_delay_s = Some(7200);
        let (v, why) = verdict(&domain("patient.example"), &patient, &t).unwrap();
        assert_eq!(v, Verdict::Whitelist);
        assert_eq!(
            why,
            "mail passed only after long waits: 12 of 16 greylistings passed after delay, median wait 2h, 0 retried from another network"
        );
    }

    /// Retries greylisted again at another MX host count as mail that came back, never as
    /// evidence of several sending servers.
    #[test]
    fn retries_at_another_mx_come_back_but_make_no_multi_server_sender() {
        let t = Thresholds::default();
        let mut twice = evidence(&["mail.twice.example"], &["192.0.2.9"]);
        twice.new = 20;
        twice.passed_after_delay = 2;
        twice.median_delay_s = Some(600);
        let key = domain("twice.example");
        // 2 of 20 came back: at most the spam share, but from one address only.
        assert_eq!(
            verdict(&key, &twice, &t).unwrap(),
            (
                Verdict::Review,
                "20 greylistings from 1 address in 0 networks, 2 came back, median wait 10m"
                    .to_owned()
            )
        );
        twice.retried_at_other_mx = 8;
        twice.retried_from_other_net = 0;
        assert_eq!(
            verdict(&key, &twice, &t).unwrap(),
            (
                Verdict::Review,
                "20 greylistings from 1 address in 0 networks, 10 came back, median wait 10m; \
                 8 greylisted again at another MX host"
                    .to_owned()
            )
        );
        // With long waits, the return share it adds makes the whitelist verdict.
        twice.median_delay_s = Some(3600);
        twice.retried_at_other_mx = 3;
        let (v, why) = verdict(&key, &twice, &t).unwrap();
        assert_eq!(v, Verdict::Whitelist);
        assert_eq!(
            why,
            "mail passed only after long waits: 2 of 20 greylistings passed after delay, median \
             wait 1h, 0 retried from another network; 3 greylisted again at another MX host"
        );
        twice.retried_at_other_mx = 2;
        assert_eq!(verdict(&key, &twice, &t).unwrap().0, Verdict::Review);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(7200), "2h");
        assert_eq!(human_duration(11_400), "3h10m");
        assert_eq!(human_duration(187_200), "2d4h");
    }
}
