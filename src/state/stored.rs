//! The state file's form of a tally: compact, and lossless for everything [`Evidence`](crate::tally::Evidence) is made
//! of.
//!
//! A busy server greylists a million times a week from tens of thousands of groups, and the
//! state keeps eight weeks of day buckets, so every byte of a bucket counts:
//!
//! - Field names are short (the mapping is at `GroupOut` and `DayOut`), and a field at its
//!   default (zero, empty, `false`) is left out.
//! - A group lists its addresses and host names once; its days refer to them by position.
//! - Host names are relative to the group's domain, as in a zone file: `mx1` is
//!   `mx1.example.com` in the group `example.com`, `@` is the domain itself, and a name that
//!   does not end in the domain is written absolute, with a trailing dot.
//! - What follows from other fields is left out and rebuilt on load: the networks of a day when
//!   they are the /24 and /64 networks of its addresses (they differ only once a cap dropped
//!   some, or when postgrey runs with other prefixes: `net` at the top then records those, and
//!   such days list their networks), the longest delay when it is the longest of the delays
//!   kept, the sum of the delays when the delays kept tell it, and which name came with which
//!   address when every address of the day came with every name of the day (one name, or one
//!   address, or no name at all: most days of most groups). Otherwise a day lists, for each of its
//!   addresses in order, the position of the name it came with (`-1`: none), or a list of them
//!   when it came with several.
//! - Times are µs after the day's midnight (first seen) and after first seen (last seen).
//! - Only the pairs greylisted within [`PAIR_CARRY_OVER_US`] of the group's newest decision
//!   are carried over, listed by network; on load they count as greylisted at that decision.
//!
//! ```text
//! {"groups": {"example.com": {
//!     "i": ["192.0.2.1", "198.51.100.3"],
//!     "h": ["a.smtp", "c.smtp"],
//!     "d": {"20410": {"n": 3, "r": 1, "p": 1, "dl": [3600], "h": [1, 2], "a": [0, 1],
//!                     "f": 3600000000, "l": 7200000000}},
//!     "p": {"192.0.2.0/24": ["9ae16a3b2f90404f"], "198.51.100.0/24": ["9ae16a3b2f90404f"]}}},
//!  "totals": {"20410": {"entries": 5, "postgrey_lines": 5, "greylisted": 4, …}}}
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipnet::IpNet;
use rayon::prelude::*;
use serde::de::Error as _;
use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::budget::{self, Budget};
use crate::group::{GroupKey, network_of};
use crate::json_text::Text;
use crate::postgrey::Network;
use crate::tally::{
    Caps, Client, DISTINCT_CAP, Day, DayStats, DroppedSets, Folded, GroupTally, MICROS_PER_DAY,
    MxCounts, MxDefaults, MxHosts, MxTotals, Name, PAIR_CARRY_OVER_US, PairTrack, Pairs, SortedMap,
    SortedSet, Tally, Totals,
};

/// The name of a group's domain itself among its relative host names.
const ORIGIN: &str = "@";

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A day bucket as stored. Field names: `n` new, `e` early_retry, `p` passed_after_delay,
/// `k` passed_known, `w` passed_whitelisted, `r` retried_from_other_net, `dl` delays, `mx`
/// max_delay_s (only when not the largest of `dl`), `dt` delay_total_s (only when not what
/// `dl` stands for, see [`delay_total_of`]), `i` ips as positions in the group's
/// `i` (left out when the day saw every one of them), `nt` nets (only when not the
/// networks of the ips), `h` how often each of the group's `h` was seen, in their order
/// (see [`encode_counts`]), `a` the names of the addresses (see [`ClientNames`]; left out
/// when they follow from `i` and `h`), `f` first seen (µs after the day's midnight), `l`
/// last seen (µs after first seen), `c` the caps hit (see [`caps_bits`]), `ra`
/// retried_at_other_mx, `g` greylistings per MX host (only when not all at the site's only
/// host, see [`MxDefaults`]).
#[derive(Serialize)]
struct DayOut<'a> {
    #[serde(rename = "n", skip_serializing_if = "is_default")]
    new: u64,
    #[serde(rename = "e", skip_serializing_if = "is_default")]
    early_retry: u64,
    #[serde(rename = "p", skip_serializing_if = "is_default")]
    passed_after_delay: u64,
    #[serde(rename = "k", skip_serializing_if = "is_default")]
    passed_known: u64,
    #[serde(rename = "w", skip_serializing_if = "is_default")]
    passed_whitelisted: u64,
    #[serde(rename = "r", skip_serializing_if = "is_default")]
    retried_from_other_net: u64,
    #[serde(rename = "dl", skip_serializing_if = "<[u64]>::is_empty")]
    delays: &'a [u64],
    #[serde(rename = "mx", skip_serializing_if = "Option::is_none")]
    max_delay_s: Option<u64>,
    #[serde(rename = "dt", skip_serializing_if = "Option::is_none")]
    delay_total_s: Option<u64>,
    #[serde(rename = "i", skip_serializing_if = "Option::is_none")]
    ips: Option<Vec<usize>>,
    #[serde(rename = "nt", skip_serializing_if = "Option::is_none")]
    nets: Option<&'a [IpNet]>,
    #[serde(rename = "h", skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<i64>,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    clients: Option<Vec<ClientNames>>,
    #[serde(rename = "f")]
    first_seen: i64,
    #[serde(rename = "l", skip_serializing_if = "is_default")]
    last_seen: i64,
    #[serde(rename = "c", skip_serializing_if = "is_default")]
    caps: u8,
    #[serde(rename = "x", skip_serializing_if = "is_default")]
    dropped: [u64; 3],
    #[serde(rename = "ra", skip_serializing_if = "is_default")]
    retried_at_other_mx: u64,
    #[serde(rename = "g", skip_serializing_if = "Option::is_none")]
    mx: Option<&'a MxCounts>,
}

/// [`DayOut`] as read back.
#[derive(Deserialize)]
struct DayIn {
    #[serde(rename = "n", default)]
    new: u64,
    #[serde(rename = "e", default)]
    early_retry: u64,
    #[serde(rename = "p", default)]
    passed_after_delay: u64,
    #[serde(rename = "k", default)]
    passed_known: u64,
    #[serde(rename = "w", default)]
    passed_whitelisted: u64,
    #[serde(rename = "r", default)]
    retried_from_other_net: u64,
    #[serde(rename = "dl", default)]
    delays: Vec<u64>,
    #[serde(rename = "mx", default)]
    max_delay_s: Option<u64>,
    #[serde(rename = "dt", default)]
    delay_total_s: Option<u64>,
    #[serde(rename = "i", default)]
    ips: Option<Vec<usize>>,
    #[serde(rename = "nt", default)]
    nets: Option<BTreeSet<IpNet>>,
    #[serde(rename = "h", default)]
    hosts: Vec<i64>,
    #[serde(rename = "a", default)]
    clients: Option<Vec<ClientNames>>,
    #[serde(rename = "f")]
    first_seen: i64,
    #[serde(rename = "l", default)]
    last_seen: i64,
    #[serde(rename = "c", default)]
    caps: u8,
    #[serde(rename = "x", default)]
    dropped: [u64; 3],
    #[serde(rename = "ra", default)]
    retried_at_other_mx: u64,
    #[serde(rename = "g", default)]
    mx: Option<MxCounts>,
}

/// A day as stored: the short form when it can be, else [`DayOut`].
// Built and written one day at a time, never kept: boxing the long form would only add an
// allocation per day to every save.
#[allow(clippy::large_enum_variant)]
#[derive(Serialize)]
#[serde(untagged)]
enum DayOutAny<'a> {
    Short(Vec<u64>),
    Long(DayOut<'a>),
}

/// Fields of the short form, in order (see [`short_form`]).
const SHORT_FIELDS: usize = 17;

/// The short form of a day that kept at most one client (an address, a host name seen
/// once, or both), its networks those of the address, and at most one delay, with whole
/// seconds for its times: what `Tally::compact` leaves of a day before the detail window.
/// Days as recorded keep the long form. The short form:
/// `[first seen (s after midnight), last seen (s after first), n, address, host, e, p, k,
/// w, r, delay, longest delay minus delay, caps, addresses, networks, hosts, sum of the
/// delays (0: the delay times the mails that waited)]`: address and
/// host are the client's positions in the group's lists plus one (0: none), addresses,
/// networks and hosts the distinct counts the day had before compaction; trailing zeros
/// are left out, so that an old day of one greylisting is `[first, 0, 1, address, host]`.
/// `None` when the day needs the long form.
fn short_form(
    day: Day,
    stats: &DayStats,
    mx: MxDefaults<'_>,
    ip_position: impl Fn(&IpAddr) -> Option<usize>,
    host_position: impl Fn(&str) -> Option<usize>,
) -> Option<Vec<u64>> {
    let (delay, longer) = match (stats.passed_after_delay, stats.delays.as_slice()) {
        (0, []) if stats.max_delay_s.is_none() => (0, 0),
        (1.., [delay]) => (*delay, stats.max_delay_s?.checked_sub(*delay)?),
        _ => return None,
    };
    // The sum of the delays, when the one delay kept does not tell it (0: it does).
    let total = if stats.delay_total_s == delay_total_of(stats.passed_after_delay, &stats.delays) {
        0
    } else {
        stats.delay_total_s
    };
    // Only what compaction left: a day as recorded keeps the long form, readable as it
    // always was.
    if !stats.coarse
        || stats.retried_at_other_mx > 0
        || !mx.is_day(&stats.mx, stats.new + stats.early_retry)
    {
        return None;
    }
    let one_client = stats.ips.len() <= 1
        && stats.hosts.len() <= 1
        && stats.hosts.values().all(|&count| count == 1)
        && nets_of(&stats.ips) == stats.nets
        && clients_follow(stats);
    if !one_client {
        return None;
    }
    let example = |position: Option<Option<usize>>| match position {
        None => Some(0),
        Some(found) => found.and_then(|i| u64::try_from(i).ok()?.checked_add(1)),
    };
    let address = example(stats.ips.first().map(&ip_position))?;
    let host = example(stats.hosts.keys().next().map(|h| host_position(h)))?;
    let first = stats.first_seen_us.checked_sub(midnight_us(day))?;
    let last = stats.last_seen_us.checked_sub(stats.first_seen_us)?;
    let whole = |us: i64| (us % 1_000_000 == 0).then(|| u64::try_from(us / 1_000_000).ok())?;
    let mut form = vec![
        whole(first)?,
        whole(last)?,
        stats.new,
        address,
        host,
        stats.early_retry,
        stats.passed_after_delay,
        stats.passed_known,
        stats.passed_whitelisted,
        stats.retried_from_other_net,
        delay,
        longer,
        u64::from(caps_bits(stats.caps)),
        stats.dropped.ips,
        stats.dropped.nets,
        stats.dropped.hosts,
        total,
    ];
    while form.len() > 2 && form.last() == Some(&0) {
        form.pop();
    }
    Some(form)
}

/// The inverse of [`short_form`], as the long form it stands for.
fn from_short_form(form: &[u64]) -> Result<DayIn, String> {
    if !(2..=SHORT_FIELDS).contains(&form.len()) {
        return Err(format!(
            "a short day has {} fields, not 2 to {SHORT_FIELDS}",
            form.len()
        ));
    }
    let field = |i: usize| form.get(i).copied().unwrap_or(0);
    let micros = |s: u64| {
        i64::try_from(s)
            .ok()
            .and_then(|s| s.checked_mul(1_000_000))
            .ok_or_else(|| String::from("a time out of range"))
    };
    let passed_after_delay = field(6);
    let (delay, longer) = (field(10), field(11));
    let (delays, max_delay_s) = if passed_after_delay == 0 {
        if delay != 0 || longer != 0 {
            return Err(String::from("a delay without a mail that waited"));
        }
        (Vec::new(), None)
    } else {
        let longest = delay
            .checked_add(longer)
            .ok_or_else(|| String::from("a delay out of range"))?;
        (vec![delay], Some(longest))
    };
    let position = |i: usize| usize::try_from(field(i)).unwrap_or(usize::MAX);
    let ips = match position(3) {
        0 => Vec::new(),
        address => vec![address - 1],
    };
    // The counts of the group's names, up to the example's (see `encode_counts`).
    let hosts = match i64::try_from(position(4)).unwrap_or(i64::MAX) {
        0 => Vec::new(),
        1 => vec![1],
        host => vec![1 - host, 1],
    };
    Ok(DayIn {
        new: field(2),
        early_retry: field(5),
        passed_after_delay,
        passed_known: field(7),
        passed_whitelisted: field(8),
        retried_from_other_net: field(9),
        delays,
        max_delay_s,
        delay_total_s: Some(field(16)).filter(|&total| total != 0),
        ips: Some(ips),
        nets: None,
        hosts,
        clients: None,
        first_seen: micros(field(0))?,
        last_seen: micros(field(1))?,
        caps: u8::try_from(field(12))
            .map_err(|_| format!("caps {} are not a combination of 1, 2 and 4", field(12)))?,
        dropped: [field(13), field(14), field(15)],
        retried_at_other_mx: 0,
        mx: None,
    })
}

/// A stored day: a list is the short form, a map the long one.
enum DayInAny {
    Short(Vec<u64>),
    Long(Box<DayIn>),
}

impl<'de> Deserialize<'de> for DayInAny {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = DayInAny;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a day bucket (a map, or a list of counts)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<DayInAny, A::Error> {
                let deserializer = serde::de::value::SeqAccessDeserializer::new(seq);
                Vec::deserialize(deserializer).map(DayInAny::Short)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DayInAny, A::Error> {
                let deserializer = serde::de::value::MapAccessDeserializer::new(map);
                DayIn::deserialize(deserializer).map(|day| DayInAny::Long(Box::new(day)))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// The names an address of a day came with, as positions in the group's `h`, `-1` for no
/// name: one number for one name (the usual case), a list for several or for none (a cap
/// dropped the pair).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum ClientNames {
    One(i64),
    Several(Vec<i64>),
}

/// Position of no name among a day's client names.
const NO_NAME: i64 = -1;

/// The caps of a day as stored: 1 distinct sets, 2 delays, 4 pairs, or-ed.
fn caps_bits(caps: Caps) -> u8 {
    u8::from(caps.distinct) | u8::from(caps.delays) << 1 | u8::from(caps.pairs) << 2
}

/// The inverse of [`caps_bits`].
fn caps_of(bits: u8) -> Result<Caps, String> {
    if bits > 7 {
        return Err(format!("caps {bits} are not a combination of 1, 2 and 4"));
    }
    Ok(Caps {
        distinct: bits & 1 != 0,
        delays: bits & 2 != 0,
        pairs: bits & 4 != 0,
    })
}

/// A group as stored: `i` every address of its days, `h` every host name (relative), `d`
/// its day buckets, `p` the carried-over pairs as network → pair hashes (16 hex digits; a
/// pair seen from several networks is listed under each), `pm` pair hash → the MX hosts it
/// was greylisted at, as a mask of the tally's `mx_hosts` (only when not the site's only host,
/// see [`MxDefaults`]).
#[derive(Serialize)]
struct GroupOut<'a> {
    #[serde(rename = "i", skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpAddr>,
    #[serde(rename = "h", skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<Cow<'a, str>>,
    #[serde(rename = "d")]
    days: DaysOut<'a>,
    #[serde(rename = "p", skip_serializing_if = "PairsOut::is_empty")]
    pairs: PairsOut,
    #[serde(rename = "pm", skip_serializing_if = "BTreeMap::is_empty")]
    pair_mx: BTreeMap<String, u64>,
}

/// A group's days in order, written as a map keyed by day.
struct DaysOut<'a>(Vec<(Day, DayOutAny<'a>)>);

impl Serialize for DaysOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(day, form)| (day, form)))
    }
}

/// Carried-over pairs as (network, hash), sorted: written as network → hashes in hex.
struct PairsOut(Vec<(IpNet, u64)>);

impl PairsOut {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A pair hash as stored: 16 hex digits.
struct HexHash(u64);

impl Serialize for HexHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:016x}", self.0))
    }
}

/// The hashes of one network among the sorted pairs.
struct HashesOf<'a>(&'a [(IpNet, u64)]);

impl Serialize for HashesOf<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(_, hash)| HexHash(*hash)))
    }
}

impl Serialize for PairsOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .chunk_by(|a, b| a.0 == b.0)
                .map(|run| (run[0].0, HashesOf(run))),
        )
    }
}

/// [`GroupOut`] as read back, its names and hashes borrowed from the file.
#[derive(Deserialize)]
struct GroupIn<'a> {
    #[serde(rename = "i", default)]
    ips: Vec<IpAddr>,
    #[serde(rename = "h", default, borrow)]
    hosts: Vec<Text<'a>>,
    #[serde(rename = "d", default)]
    days: BTreeMap<Day, DayInAny>,
    #[serde(rename = "p", default, borrow)]
    pairs: BTreeMap<IpNet, Vec<Text<'a>>>,
    #[serde(rename = "pm", default, borrow)]
    pair_mx: BTreeMap<Text<'a>, u64>,
}

/// The tally as read back; `groups` and `totals` keep their names for scripts reading the
/// file. A group is kept as its text until [`expand_groups`] reads it.
#[derive(Deserialize)]
struct TallyIn<'a> {
    #[serde(default, borrow)]
    groups: BTreeMap<GroupKey, &'a RawValue>,
    #[serde(default)]
    totals: BTreeMap<Day, Totals>,
    #[serde(default)]
    folded: BTreeMap<Day, Folded>,
    /// postgrey's prefix lengths (IPv4, IPv6) the tally was counted with; absent: /24, /64.
    #[serde(rename = "net", default)]
    network: Option<(u8, u8)>,
    #[serde(default)]
    mx_hosts: MxHosts,
    #[serde(default)]
    mx_totals: BTreeMap<Day, BTreeMap<String, MxTotals>>,
}

/// Counts of a day, one per name of the group's list: a positive number is the next name's
/// count, `-n` skips `n` names the day did not see; unseen names at the end are left out.
/// A day of a small group is a plain list of counts, and a day that saw a few of a big
/// group's many names costs a number per gap rather than a zero per name.
fn encode_counts(counts: &[u64]) -> Vec<i64> {
    let mut encoded = Vec::new();
    let mut unseen: i64 = 0;
    for &count in counts {
        if count == 0 {
            unseen += 1;
            continue;
        }
        if unseen > 0 {
            encoded.push(-unseen);
            unseen = 0;
        }
        encoded.push(i64::try_from(count).unwrap_or(i64::MAX));
    }
    encoded
}

/// The inverse of [`encode_counts`]: (position, count) of the names seen.
fn decode_counts(encoded: &[i64]) -> impl Iterator<Item = (usize, u64)> + '_ {
    let mut position = 0usize;
    encoded.iter().filter_map(move |&n| {
        let skip = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
        if n > 0 {
            position = position.saturating_add(1);
            Some((position - 1, n.unsigned_abs()))
        } else {
            position = position.saturating_add(skip);
            None
        }
    })
}

fn nets_of(ips: &SortedSet<IpAddr>) -> SortedSet<IpNet> {
    ips.iter().map(|ip| network_of(*ip)).collect()
}

/// The sum of a day's delays as its sample tells it: exact when every delay was kept, the
/// sample's mean times the mails that waited otherwise. A day stores its sum only when it is
/// not this, and a state written before sums were kept gets this.
fn delay_total_of(passed_after_delay: u64, delays: &[u64]) -> u64 {
    let kept = delays.len() as u64;
    let sum = delays.iter().fold(0u64, |sum, d| sum.saturating_add(*d));
    if kept == 0 || kept >= passed_after_delay {
        return sum;
    }
    let total = sum as f64 * passed_after_delay as f64 / kept as f64;
    total.round() as u64
}

fn longest(delays: &[u64]) -> Option<u64> {
    delays.iter().max().copied()
}

fn midnight_us(day: Day) -> i64 {
    day.saturating_mul(MICROS_PER_DAY)
}

fn domain_of(key: &GroupKey) -> Option<&str> {
    match key {
        GroupKey::Domain(d) => Some(d),
        GroupKey::Network(_) => None,
    }
}

/// `host` relative to `domain` (see the module docs).
fn relative<'a>(host: &'a str, domain: Option<&str>) -> Cow<'a, str> {
    let Some(domain) = domain else {
        return Cow::Borrowed(host);
    };
    if host == domain {
        return Cow::Borrowed(ORIGIN);
    }
    match host
        .strip_suffix(domain)
        .and_then(|rest| rest.strip_suffix('.'))
    {
        // Only what reads back as the same name.
        Some(label) if !label.is_empty() && label != ORIGIN && !label.ends_with('.') => {
            Cow::Borrowed(label)
        }
        _ => Cow::Owned(format!("{host}.")),
    }
}

/// The inverse of [`relative`].
fn absolute(stored: &str, domain: Option<&str>) -> String {
    let Some(domain) = domain else {
        return stored.to_owned();
    };
    if stored == ORIGIN {
        domain.to_owned()
    } else if let Some(name) = stored.strip_suffix('.') {
        name.to_owned()
    } else {
        // Not `format!`: every name of a state is made absolute on load.
        let mut name = String::with_capacity(stored.len() + 1 + domain.len());
        name.push_str(stored);
        name.push('.');
        name.push_str(domain);
        name
    }
}

/// Whether the day's clients are every pair of its addresses with its names (with no name
/// when it has none): what [`following_clients`] rebuilds.
fn clients_follow(stats: &DayStats) -> bool {
    let names = stats.hosts.len().max(1);
    stats.ips.len().checked_mul(names) == Some(stats.clients.len())
        && stats.clients.iter().all(|(address, name)| {
            stats.ips.contains(address)
                && match name {
                    Some(name) => stats.hosts.contains_key(name),
                    None => stats.hosts.is_empty(),
                }
        })
}

/// The clients a day without `a` had: see [`clients_follow`].
fn following_clients(ips: &SortedSet<IpAddr>, hosts: &SortedMap<Name, u64>) -> SortedSet<Client> {
    let names: Vec<Option<&Name>> = if hosts.is_empty() {
        vec![None]
    } else {
        hosts.keys().map(Some).collect()
    };
    // Listed in their order already, and allocated once: most days of a loaded state are
    // rebuilt here, and a list grown one client at a time took a tenth of loading.
    let mut clients = Vec::with_capacity(ips.len().saturating_mul(names.len()));
    for ip in ips {
        clients.extend(names.iter().map(|name| (*ip, name.cloned())));
    }
    clients.into_iter().collect()
}

/// The day's `a`: for each of its addresses, the names it came with, as positions in the
/// group's `hosts`; the addresses at the end without any are left out.
fn client_names(stats: &DayStats, hosts: &[&str]) -> Vec<ClientNames> {
    let position = |name: &Option<Name>| match name {
        // The group's names include every client's name.
        Some(name) => hosts
            .binary_search(&&**name)
            .map_or(NO_NAME, |i| i64::try_from(i).unwrap_or(i64::MAX)),
        None => NO_NAME,
    };
    let mut names: Vec<ClientNames> = stats
        .ips
        .iter()
        .map(|ip| {
            let mut positions: Vec<i64> = stats
                .clients
                .tail_from(&(*ip, None))
                .iter()
                .take_while(|(address, _)| address == ip)
                .map(|(_, name)| position(name))
                .collect();
            match positions.len() {
                1 => ClientNames::One(positions.remove(0)),
                _ => ClientNames::Several(positions),
            }
        })
        .collect();
    while names.last() == Some(&ClientNames::Several(Vec::new())) {
        names.pop();
    }
    names
}

/// The inverse of [`client_names`].
fn clients_of(
    names: &[ClientNames],
    ips: &SortedSet<IpAddr>,
    hosts: &[Name],
) -> Result<SortedSet<Client>, String> {
    if names.len() > ips.len() {
        return Err(String::from("more client names than addresses"));
    }
    let mut clients = Vec::new();
    for (ip, names) in ips.iter().zip(names) {
        let positions = match names {
            ClientNames::One(position) => std::slice::from_ref(position),
            ClientNames::Several(positions) => positions.as_slice(),
        };
        for &position in positions {
            let name = if position == NO_NAME {
                None
            } else {
                let host = usize::try_from(position).ok().and_then(|i| hosts.get(i));
                Some(
                    host.ok_or_else(|| format!("client name position {position} is out of range"))?
                        .clone(),
                )
            };
            clients.push((*ip, name));
        }
    }
    Ok(clients.into_iter().collect())
}

impl<'a> DayOut<'a> {
    /// `stats` of `day`, its addresses and host names given by position in the group's.
    fn new(
        day: Day,
        stats: &'a DayStats,
        mx: MxDefaults<'_>,
        ips: &[IpAddr],
        hosts: &[&str],
    ) -> Self {
        let day_ips = (stats.ips.len() != ips.len()).then(|| {
            stats
                .ips
                .iter()
                .filter_map(|ip| ips.binary_search(ip).ok())
                .collect()
        });
        let mut counts = vec![0; hosts.len()];
        for (host, count) in &stats.hosts {
            if let Ok(i) = hosts.binary_search(&&**host) {
                counts[i] = *count;
            }
        }
        let clients = (!clients_follow(stats)).then(|| client_names(stats, hosts));
        DayOut {
            new: stats.new,
            early_retry: stats.early_retry,
            passed_after_delay: stats.passed_after_delay,
            passed_known: stats.passed_known,
            passed_whitelisted: stats.passed_whitelisted,
            retried_from_other_net: stats.retried_from_other_net,
            delays: &stats.delays,
            max_delay_s: stats
                .max_delay_s
                .filter(|&max| Some(max) != longest(&stats.delays)),
            delay_total_s: Some(stats.delay_total_s)
                .filter(|&total| total != delay_total_of(stats.passed_after_delay, &stats.delays)),
            ips: day_ips,
            nets: (nets_of(&stats.ips) != stats.nets).then_some(stats.nets.as_slice()),
            hosts: encode_counts(&counts),
            clients,
            first_seen: stats.first_seen_us - midnight_us(day),
            last_seen: stats.last_seen_us - stats.first_seen_us,
            caps: caps_bits(stats.caps),
            dropped: [stats.dropped.ips, stats.dropped.nets, stats.dropped.hosts],
            retried_at_other_mx: stats.retried_at_other_mx,
            mx: (!mx.is_day(&stats.mx, stats.new + stats.early_retry)).then_some(&stats.mx),
        }
    }
}

impl<'a> GroupOut<'a> {
    /// `group` as stored, without its days before `from`.
    fn new(
        key: &GroupKey,
        group: &'a GroupTally,
        mx: MxDefaults<'_>,
        carry_from_us: i64,
        from: Day,
    ) -> Self {
        let days = || group.days.range(from..).map(|(_, d)| d);
        // Sorted, so that a day finds its positions by binary search.
        let mut ips: Vec<IpAddr> = days().flat_map(|d| d.ips.iter().copied()).collect();
        ips.sort_unstable();
        ips.dedup();
        let mut hosts: Vec<&str> = days()
            .flat_map(|d| {
                let client_names = d.clients.iter().filter_map(|(_, name)| name.as_deref());
                d.hosts.keys().map(|name| &**name).chain(client_names)
            })
            .collect();
        hosts.sort_unstable();
        hosts.dedup();
        let days = group
            .days
            .range(from..)
            .map(|(day, stats)| {
                let ip_position = |ip: &IpAddr| ips.binary_search(ip).ok();
                let host_position = |host: &str| hosts.binary_search(&host).ok();
                let form = match short_form(*day, stats, mx, ip_position, host_position) {
                    Some(short) => DayOutAny::Short(short),
                    None => DayOutAny::Long(DayOut::new(*day, stats, mx, &ips, &hosts)),
                };
                (*day, form)
            })
            .collect();
        let mut pairs: Vec<(IpNet, u64)> = Vec::new();
        let mut pair_mx = BTreeMap::new();
        for (hash, track) in group.pairs.iter() {
            if track.last_us >= carry_from_us {
                pairs.extend(track.nets.iter().map(|net| (*net, *hash)));
                if track.mx != mx.mask() && !track.nets.is_empty() {
                    pair_mx.insert(format!("{hash:016x}"), track.mx);
                }
            }
        }
        pairs.sort_unstable();
        GroupOut {
            ips,
            hosts: hosts.iter().map(|h| relative(h, domain_of(key))).collect(),
            days: DaysOut(days),
            pairs: PairsOut(pairs),
            pair_mx,
        }
    }
}

/// Most a state file may count for one group, or in its totals, over all days: 2^53 (exact
/// as a float), more than any server logs, and far enough below `u64::MAX` that adding up
/// the days of a window and the decisions of the next runs cannot overflow.
const MAX_COUNT: u64 = 1 << 53;

/// `sum + count`, when that stays within [`MAX_COUNT`].
fn add_count(sum: u64, count: u64) -> Option<u64> {
    sum.checked_add(count).filter(|&sum| sum <= MAX_COUNT)
}

/// A stored group's day buckets, or why they do not make sense.
fn days_of(
    days: BTreeMap<Day, DayInAny>,
    ips: &[IpAddr],
    hosts: &[Text<'_>],
    domain: Option<&str>,
    mx: MxDefaults<'_>,
    budget: Option<&Budget>,
) -> Result<SortedMap<Day, DayStats>, String> {
    let names_bytes = hosts.iter().fold(
        budget::heap_bytes(hosts.len(), size_of::<Name>()),
        |sum, h| {
            // An `Arc<str>`: the name, two counts and the allocator's header.
            sum.saturating_add(h.len() as u64 + 32)
        },
    );
    budget::charge(budget, names_bytes)?;
    // One copy of each name, shared by every day that saw it.
    let hosts: Vec<Name> = hosts
        .iter()
        .map(|h| Name::from(absolute(h, domain)))
        .collect();
    let mut result = Vec::with_capacity(days.len());
    let mut counted: u64 = 0;
    for (day, stored) in days {
        let (stored, coarse) = match stored {
            DayInAny::Long(long) => (*long, false),
            DayInAny::Short(short) => (
                from_short_form(&short).map_err(|why| format!("day {day}: {why}"))?,
                true,
            ),
        };
        let [ips_had, nets_had, hosts_had] = stored.dropped;
        if nets_had > ips_had.max(1) || ips_had > MAX_COUNT || hosts_had > MAX_COUNT {
            return Err(format!(
                "day {day}: distinct counts {:?} that no day can have",
                stored.dropped
            ));
        }
        budget::charge(budget, expansion_of(&stored, ips.len()))
            .map_err(|why| format!("day {day}: {why}"))?;
        let day_ips: SortedSet<IpAddr> = match &stored.ips {
            None => ips.iter().copied().collect(),
            Some(positions) => positions
                .iter()
                .map(|&i| ips.get(i).copied())
                .collect::<Option<_>>()
                .ok_or_else(|| format!("day {day}: an address position is out of range"))?,
        };
        let mut listed = Vec::new();
        for (position, count) in decode_counts(&stored.hosts) {
            let host = hosts
                .get(position)
                .ok_or_else(|| format!("day {day}: more host counts than host names"))?;
            listed.push((host.clone(), count));
        }
        let day_hosts: SortedMap<Name, u64> = listed.into_iter().collect();
        let counts = [
            stored.new,
            stored.early_retry,
            stored.passed_after_delay,
            stored.passed_known,
            stored.passed_whitelisted,
            stored.retried_from_other_net,
            stored.retried_at_other_mx,
        ];
        let day_mx = stored
            .mx
            .unwrap_or_else(|| mx.day(stored.new.saturating_add(stored.early_retry)));
        counted = counts
            .into_iter()
            .chain(day_hosts.values().copied())
            .chain(day_mx.iter().map(|(_, n)| n))
            .try_fold(counted, add_count)
            .ok_or_else(|| format!("day {day}: counts beyond any real log"))?;
        // A day keeps at most DISTINCT_CAP of each (see `DayStats::see_client`), and its
        // clients are left out only when they are every address with every name; more
        // would be a few bytes of file standing for millions of clients.
        let names = day_hosts.len().max(1);
        let follow_too_many =
            stored.clients.is_none() && day_ips.len().saturating_mul(names) > DISTINCT_CAP;
        if day_ips.len() > DISTINCT_CAP || day_hosts.len() > DISTINCT_CAP || follow_too_many {
            return Err(format!(
                "day {day}: more addresses or host names than a day keeps ({DISTINCT_CAP})"
            ));
        }
        let clients = match &stored.clients {
            None => following_clients(&day_ips, &day_hosts),
            Some(names) => {
                clients_of(names, &day_ips, &hosts).map_err(|why| format!("day {day}: {why}"))?
            }
        };
        let caps = caps_of(stored.caps).map_err(|why| format!("day {day}: {why}"))?;
        // A day of the tally is a real day since the epoch, and both times lie inside it:
        // anything else comes from a damaged file and would break the pair arithmetic.
        let within_day = |offset: i64| (0..MICROS_PER_DAY).contains(&offset);
        let first_seen_us = day
            .checked_mul(MICROS_PER_DAY)
            .filter(|_| day >= 0)
            .filter(|_| within_day(stored.first_seen))
            .and_then(|midnight| midnight.checked_add(stored.first_seen));
        let last_seen_us = first_seen_us
            .filter(|_| within_day(stored.first_seen.saturating_add(stored.last_seen)))
            .filter(|_| stored.last_seen >= 0)
            .and_then(|first| first.checked_add(stored.last_seen));
        let (Some(first_seen_us), Some(last_seen_us)) = (first_seen_us, last_seen_us) else {
            return Err(format!("day {day}: a time out of range"));
        };
        let stats = DayStats {
            new: stored.new,
            early_retry: stored.early_retry,
            passed_after_delay: stored.passed_after_delay,
            passed_known: stored.passed_known,
            passed_whitelisted: stored.passed_whitelisted,
            retried_from_other_net: stored.retried_from_other_net,
            retried_at_other_mx: stored.retried_at_other_mx,
            mx: day_mx,
            max_delay_s: stored.max_delay_s.or_else(|| longest(&stored.delays)),
            delay_total_s: stored
                .delay_total_s
                .unwrap_or_else(|| delay_total_of(stored.passed_after_delay, &stored.delays)),
            delays: stored.delays,
            nets: match stored.nets {
                Some(nets) => nets.into_iter().collect(),
                None => nets_of(&day_ips),
            },
            ips: day_ips,
            hosts: day_hosts,
            clients,
            first_seen_us,
            last_seen_us,
            caps,
            dropped: DroppedSets {
                ips: ips_had,
                nets: nets_had,
                hosts: hosts_had,
            },
            coarse,
        };
        result.push((day, stats));
    }
    Ok(result.into_iter().collect())
}

/// What expanding `day` takes on the heap, worked out from its stored form alone (see
/// `state::budget`); `group_ips` is how many addresses its group lists.
fn expansion_of(day: &DayIn, group_ips: usize) -> u64 {
    let ips = day.ips.as_ref().map_or(group_ips, Vec::len);
    let nets = day.nets.as_ref().map_or(ips, BTreeSet::len);
    let hosts = decode_counts(&day.hosts).count();
    let clients = match &day.clients {
        Some(names) => names
            .iter()
            .map(|n| match n {
                ClientNames::One(_) => 1,
                ClientNames::Several(positions) => positions.len(),
            })
            .sum(),
        None => ips.saturating_mul(hosts.max(1)),
    };
    [
        budget::heap_bytes(1, size_of::<(Day, DayStats)>()),
        budget::heap_bytes(ips, size_of::<IpAddr>()),
        budget::heap_bytes(nets, size_of::<IpNet>()),
        budget::heap_bytes(hosts, size_of::<(Name, u64)>()),
        budget::heap_bytes(clients, size_of::<Client>()),
    ]
    .into_iter()
    .fold(0, u64::saturating_add)
}

/// A group's text in the state file it was loaded from, kept while the group is as it was
/// loaded. Saving copies the text of every group a run left as it was instead of writing it
/// anew: a run that reads a day's entries changes a few of thousands of groups, and writing
/// the unchanged ones again was a fifth of its time.
///
/// Whatever changes a group forgets its form ([`LoadedForm::forget`]): counting into it,
/// dropping its days or pairs, a compaction, new networks. A debug build checks every copy
/// against the group (its text, expanded again, must give the group). The form is kept only
/// while the first MX host is the one it was loaded under, which the stored form of a day
/// refers to; MX hosts are only ever added, so that changes only from none to one.
///
/// A cache, not a part of the group: groups compare equal whatever they were loaded from.
#[derive(Clone, Default)]
pub struct LoadedForm(Option<Box<LoadedText>>);

#[derive(Clone)]
struct LoadedText {
    text: Box<RawValue>,
    had_mx: bool,
}

impl LoadedForm {
    fn of(text: &RawValue, mx: MxDefaults<'_>) -> Self {
        LoadedForm(Some(Box::new(LoadedText {
            text: text.to_owned(),
            had_mx: mx.first.is_some(),
        })))
    }

    /// Forgets the text: the group changed.
    pub fn forget(&mut self) {
        self.0 = None;
    }

    #[cfg(test)]
    pub fn is_kept(&self) -> bool {
        self.0.is_some()
    }

    /// The text, when it still stands for the group under `mx`.
    fn text_under(&self, mx: MxDefaults<'_>) -> Option<&RawValue> {
        self.0
            .as_deref()
            .filter(|loaded| loaded.had_mx == mx.first.is_some())
            .map(|loaded| &*loaded.text)
    }
}

impl PartialEq for LoadedForm {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for LoadedForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "LoadedForm(kept)"
        } else {
            "LoadedForm(none)"
        })
    }
}

/// A group as the state file gets it: the text it was loaded from, or its stored form made anew.
enum GroupForm<'a> {
    Loaded(&'a RawValue),
    Made(GroupOut<'a>),
}

impl<'a> GroupForm<'a> {
    fn of(key: &'a GroupKey, group: &'a GroupTally, mx: MxDefaults<'a>) -> Self {
        if let Some(text) = group.loaded_form.text_under(mx) {
            debug_assert!(
                expand(key, text, mx, None).is_ok_and(|loaded| loaded == *group),
                "group {key} changed since it was loaded, and its loaded form was kept"
            );
            return GroupForm::Loaded(text);
        }
        let carry_from_us = group.newest_us().saturating_sub(PAIR_CARRY_OVER_US);
        GroupForm::Made(GroupOut::new(key, group, mx, carry_from_us, Day::MIN))
    }
}

impl Serialize for GroupForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GroupForm::Loaded(text) => text.serialize(serializer),
            GroupForm::Made(stored) => stored.serialize(serializer),
        }
    }
}

/// The tally's groups as stored.
struct GroupsOut<'a> {
    groups: &'a BTreeMap<GroupKey, GroupTally>,
    mx: MxDefaults<'a>,
}

impl Serialize for GroupsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.groups
                .iter()
                .map(|(key, group)| (key, GroupForm::of(key, group, self.mx))),
        )
    }
}

/// What the state file leaves out per MX host (see [`MxDefaults`]).
fn mx_defaults(tally: &Tally) -> MxDefaults<'_> {
    MxDefaults {
        first: tally.mx_hosts.first(),
    }
}

/// [`mx_defaults`] as a group alone tells it, for measuring the group without its tally: the
/// host of its newest greylisting day (the site's only host, when it has one).
fn mx_defaults_of(group: &GroupTally) -> MxDefaults<'_> {
    MxDefaults {
        first: group
            .days
            .values()
            .rev()
            .find_map(|d| d.mx.iter().next())
            .map(|(host, _)| host),
    }
}

impl GroupTally {
    /// When the group's newest decision was made. Per group, so that one entry with a wrong
    /// clock (a future date) moves only its own group's pair horizon.
    pub(crate) fn newest_us(&self) -> i64 {
        self.days
            .values()
            .next_back()
            .map_or(i64::MIN, |d| d.last_seen_us)
    }
}

impl Serialize for Tally {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let groups = GroupsOut {
            groups: &self.groups,
            mx: mx_defaults(self),
        };
        TallyOut {
            tally: self,
            groups: &groups,
        }
        .serialize(serializer)
    }
}

/// The stored tally, its groups written by `groups`: all of them, or none (see
/// [`tally_text`]).
struct TallyOut<'a, G> {
    tally: &'a Tally,
    groups: &'a G,
}

impl<G: Serialize> Serialize for TallyOut<'_, G> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let TallyOut {
            tally: this,
            groups,
        } = self;
        let mut tally = serializer.serialize_struct("Tally", 6)?;
        tally.serialize_field("groups", groups)?;
        tally.serialize_field("totals", &this.totals)?;
        if this.folded.is_empty() {
            tally.skip_field("folded")?;
        } else {
            tally.serialize_field("folded", &this.folded)?;
        }
        if this.network == Network::default() {
            tally.skip_field("net")?;
        } else {
            let net = this.network;
            tally.serialize_field("net", &(net.ipv4_prefix, net.ipv6_prefix))?;
        }
        if this.mx_hosts.0.is_empty() {
            tally.skip_field("mx_hosts")?;
        } else {
            tally.serialize_field("mx_hosts", &this.mx_hosts)?;
        }
        if this.mx_totals.is_empty() || this.mx_totals == implied_mx_totals(this) {
            tally.skip_field("mx_totals")?;
        } else {
            tally.serialize_field("mx_totals", &this.mx_totals)?;
        }
        tally.end()
    }
}

/// The stored tally's text, the bytes `serde_json::to_writer` writes, in parts to be written
/// one after the other: the groups are written a few dozen at a time on every core (serialising
/// a big tally took a fifth of a `run` that read little). `None` as soon as the parts are more
/// than `max_bytes` together: a tally that big is compacted, and its text would only take
/// memory.
pub(crate) fn tally_text(
    tally: &Tally,
    max_bytes: usize,
) -> serde_json::Result<Option<Vec<Vec<u8>>>> {
    /// Why writing the groups stopped.
    enum Stop {
        Over,
        Failed(serde_json::Error),
    }
    // The tally without its groups, whose map is written apart: `{"groups":{}` and the rest.
    let skeleton = TallyOut {
        tally,
        groups: &BTreeMap::<(), ()>::new(),
    };
    let text = serde_json::to_vec(&skeleton)?;
    let empty_groups = br#"{"groups":{}"#;
    let Some(rest) = text.strip_prefix(empty_groups.as_slice()) else {
        return Err(serde_json::Error::io(std::io::Error::other(
            "the stored tally does not start with its groups",
        )));
    };
    if text.len() > max_bytes {
        return Ok(None);
    }
    let written = AtomicUsize::new(text.len());
    let groups: Vec<(&GroupKey, &GroupTally)> = tally.groups.iter().collect();
    let mx = mx_defaults(tally);
    let parts: Result<Vec<Vec<u8>>, Stop> = groups
        .par_chunks(GROUPS_PER_TASK)
        .enumerate()
        .map(|(i, chunk)| {
            let mut part = Vec::new();
            write_group_entries(&mut part, chunk, mx, i > 0).map_err(Stop::Failed)?;
            let before = written.fetch_add(part.len(), Ordering::Relaxed);
            if before.saturating_add(part.len()) > max_bytes {
                return Err(Stop::Over);
            }
            Ok(part)
        })
        .collect();
    let mut parts = match parts {
        Ok(parts) => parts,
        Err(Stop::Over) => return Ok(None),
        Err(Stop::Failed(e)) => return Err(e),
    };
    parts.insert(0, empty_groups[..empty_groups.len() - 1].to_vec());
    parts.push([b"}", rest].concat());
    Ok(Some(parts))
}

/// Writes `groups` as entries of the stored tally's map of groups, `"key":{…}`, separated by
/// commas; the first one too when `after_others`.
fn write_group_entries<W: std::io::Write>(
    out: &mut W,
    groups: &[(&GroupKey, &GroupTally)],
    mx: MxDefaults<'_>,
    after_others: bool,
) -> serde_json::Result<()> {
    let io = serde_json::Error::io;
    for (i, (key, group)) in groups.iter().enumerate() {
        if after_others || i > 0 {
            out.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b":").map_err(io)?;
        match GroupForm::of(key, group, mx) {
            GroupForm::Loaded(text) => out.write_all(text.get().as_bytes()).map_err(io)?,
            made => serde_json::to_writer(&mut *out, &made)?,
        }
    }
    Ok(())
}

/// What each host logged per day at a site of one MX host: what the totals say. The state file
/// leaves it out then.
fn implied_mx_totals(tally: &Tally) -> BTreeMap<Day, BTreeMap<String, MxTotals>> {
    let Some(host) = tally
        .mx_hosts
        .first()
        .filter(|_| tally.mx_hosts.0.len() == 1)
    else {
        return BTreeMap::new();
    };
    tally
        .totals
        .iter()
        .filter(|(_, t)| t.entries > 0 || t.greylisted > 0)
        .map(|(day, t)| {
            let totals = MxTotals {
                entries: t.entries,
                greylisted: t.greylisted,
            };
            (*day, BTreeMap::from([(host.to_owned(), totals)]))
        })
        .collect()
}

/// Counts the bytes written to it.
#[derive(Default)]
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn stored_len<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut count = ByteCount::default();
    // Writing to a counter cannot fail, and a stored form always serialises.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Bytes the stored tally takes.
pub(crate) fn tally_size(tally: &Tally) -> usize {
    stored_len(tally)
}

/// Bytes `group` takes in the stored tally, with its key and separators.
pub(crate) fn group_size(key: &GroupKey, group: &GroupTally) -> usize {
    group_size_from(key, group, Day::MIN)
}

/// What [`group_size`] would be without the days before `from`: 0 when none is left.
pub(crate) fn group_size_from(key: &GroupKey, group: &GroupTally, from: Day) -> usize {
    if group.days.range(from..).next().is_none() {
        return 0;
    }
    let carry_from_us = group.newest_us().saturating_sub(PAIR_CARRY_OVER_US);
    let mx = mx_defaults_of(group);
    stored_len(key) + 2 + stored_len(&GroupOut::new(key, group, mx, carry_from_us, from))
}

/// Bytes the stored tally takes besides its groups.
pub(crate) fn size_without_groups(tally: &Tally) -> usize {
    size_without_groups_from(tally, Day::MIN)
}

/// What [`size_without_groups`] would be without the days before `from`.
pub(crate) fn size_without_groups_from(tally: &Tally, from: Day) -> usize {
    let skeleton = Tally {
        groups: BTreeMap::new(),
        totals: tally.totals.range(from..).map(|(d, t)| (*d, *t)).collect(),
        folded: tally.folded.range(from..).map(|(d, f)| (*d, *f)).collect(),
        network: tally.network,
        mx_hosts: tally.mx_hosts.clone(),
        mx_totals: tally
            .mx_totals
            .range(from..)
            .map(|(d, t)| (*d, t.clone()))
            .collect(),
    };
    stored_len(&skeleton)
}

/// A pair's hash from its 16 hex digits (a state holds tens of thousands: digit by digit, at a
/// quarter of what `u64::from_str_radix` takes).
fn pair_hash(text: &str) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    text.bytes().try_fold(0, |hash: u64, digit| {
        Some(hash << 4 | u64::from(char::from(digit).to_digit(16)?))
    })
}

impl<'de> Deserialize<'de> for Tally {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = TallyIn::deserialize(deserializer)?;
        stored
            .totals
            .values()
            .flat_map(|t| {
                [
                    t.entries,
                    t.postgrey_lines,
                    t.decisions,
                    t.greylisted,
                    t.untrusted_skipped,
                    t.malformed,
                ]
            })
            .try_fold(0, add_count)
            .ok_or_else(|| D::Error::custom("totals: counts beyond any real log"))?;
        stored
            .folded
            .values()
            .flat_map(|f| [f.greylisted, f.largest])
            .try_fold(0, add_count)
            .ok_or_else(|| D::Error::custom("folded: counts beyond any real log"))?;
        let network = match stored.network {
            None => Network::default(),
            Some((ipv4_prefix, ipv6_prefix)) if ipv4_prefix <= 32 && ipv6_prefix <= 128 => {
                Network {
                    ipv4_prefix,
                    ipv6_prefix,
                }
            }
            Some((v4, v6)) => {
                return Err(D::Error::custom(format!(
                    "net: /{v4}, /{v6} are no IPv4 and IPv6 prefix lengths"
                )));
            }
        };
        stored
            .mx_totals
            .values()
            .flat_map(|hosts| hosts.values().flat_map(|t| [t.entries, t.greylisted]))
            .try_fold(0, add_count)
            .ok_or_else(|| D::Error::custom("mx_totals: counts beyond any real log"))?;
        let mut tally = Tally {
            groups: BTreeMap::new(),
            totals: stored.totals,
            folded: stored.folded,
            network,
            mx_hosts: stored.mx_hosts,
            mx_totals: stored.mx_totals,
        };
        if tally.mx_totals.is_empty() {
            tally.mx_totals = implied_mx_totals(&tally);
        }
        let first_mx = tally.mx_hosts.first().map(str::to_owned);
        let mx = MxDefaults {
            first: first_mx.as_deref(),
        };
        let budget = budget::current();
        let groups =
            expand_groups(stored.groups, mx, budget.as_deref()).map_err(D::Error::custom)?;
        // In the file's order, which is the map's.
        tally.groups = groups.into_iter().collect();
        Ok(tally)
    }
}

/// Groups read, or written, as one task: fewer are not worth handing to another core.
const GROUPS_PER_TASK: usize = 32;

/// The stored groups read into the tally's, in order, or why one does not make sense. A big
/// state is read on every core: reading it was most of a `run` that read few new entries.
fn expand_groups(
    groups: BTreeMap<GroupKey, &RawValue>,
    mx: MxDefaults<'_>,
    budget: Option<&Budget>,
) -> Result<Vec<(GroupKey, GroupTally)>, String> {
    let groups: Vec<(GroupKey, &RawValue)> = groups.into_iter().collect();
    let expanded: Vec<Result<(GroupKey, GroupTally), String>> = groups
        .into_par_iter()
        .with_min_len(GROUPS_PER_TASK)
        .map(|(key, text)| {
            let mut group = expand(&key, text, mx, budget)?;
            // The kept texts are no part of the allowance: together they are the file, which
            // is small enough to keep (see `Budget::keeps_loaded_forms`), and a file that loaded
            // before they were kept still loads.
            if budget.is_some_and(|budget| budget.keeps_loaded_forms) {
                group.loaded_form = LoadedForm::of(text, mx);
            }
            Ok((key, group))
        })
        .collect();
    // The first group in the file's order that does not make sense is the one named.
    expanded.into_iter().collect()
}

/// One stored group, as the tally keeps it; serde_json's message for text that is no group,
/// else the reason, after the group's name.
fn expand(
    key: &GroupKey,
    text: &RawValue,
    mx: MxDefaults<'_>,
    budget: Option<&Budget>,
) -> Result<GroupTally, String> {
    let stored: GroupIn = serde_json::from_str(text.get()).map_err(|e| e.to_string())?;
    expand_stored(stored, key, mx, budget).map_err(|why| format!("group {key}: {why}"))
}

fn expand_stored(
    stored: GroupIn,
    key: &GroupKey,
    mx: MxDefaults<'_>,
    budget: Option<&Budget>,
) -> Result<GroupTally, String> {
    let days = days_of(
        stored.days,
        &stored.ips,
        &stored.hosts,
        domain_of(key),
        mx,
        budget,
    )?;
    let mut group = GroupTally {
        days,
        pairs: Pairs::default(),
        loaded_form: LoadedForm::default(),
    };
    let newest_us = group.newest_us();
    let hash_of = |text: &str| {
        pair_hash(text).ok_or_else(|| format!("pair hash {text:?} is not 16 hex digits"))
    };
    let default_mask = mx.mask();
    for (net, hashes) in stored.pairs {
        // A pair with its first network inline: the map's entry, a further network's slot.
        let pair_bytes = size_of::<(u64, PairTrack)>() + size_of::<IpNet>();
        budget::charge(budget, budget::heap_bytes(hashes.len(), pair_bytes))?;
        for text in hashes {
            let hash = hash_of(&text)?;
            group.pairs.restore(hash, net, newest_us);
            group.pairs.restore_mx(hash, default_mask);
        }
    }
    for (text, mask) in stored.pair_mx {
        group.pairs.restore_mx(hash_of(&text)?, mask);
    }
    Ok(group)
}

/// Group keys are stored as their display form: a domain, or a network in CIDR notation (a
/// domain never parses as a network).
impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.parse::<IpNet>() {
            Ok(net) => GroupKey::Network(net),
            Err(_) => GroupKey::Domain(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_hashes_are_sixteen_hex_digits() {
        assert_eq!(pair_hash("9ae16a3b2f90404f"), Some(0x9ae1_6a3b_2f90_404f));
        assert_eq!(pair_hash("9AE16A3B2F90404F"), Some(0x9ae1_6a3b_2f90_404f));
        assert_eq!(pair_hash("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(pair_hash("0000000000000000"), Some(0));
        for bad in [
            "9ae16a3b2f90404",
            "9ae16a3b2f90404f0",
            "9ae16a3b2f90404g",
            "+ae16a3b2f90404f",
            "",
        ] {
            assert_eq!(pair_hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_names_are_relative_to_the_domain_and_read_back() {
        let domain = Some("example.com");
        let cases = [
            ("mx1.example.com", "mx1"),
            ("a.smtp-out.example.com", "a.smtp-out"),
            ("example.com", "@"),
            ("@.example.com", "@.example.com."),
            ("notexample.com", "notexample.com."),
            ("mx.example.net", "mx.example.net."),
            ("a..example.com", "a..example.com."),
            ("example.com.", "example.com.."),
            ("", "."),
        ];
        for (host, stored) in cases {
            assert_eq!(relative(host, domain), stored, "{host}");
            assert_eq!(absolute(stored, domain), host, "{stored}");
        }
        // A network group has no domain: names stay as they are.
        assert_eq!(relative("mx.example.com", None), "mx.example.com");
        assert_eq!(absolute("mx.example.com", None), "mx.example.com");
    }

    #[test]
    fn a_stored_tally_that_makes_no_sense_is_refused_with_the_reason() {
        let cases = [
            (
                r#"{"groups":{"example.com":{"i":["192.0.2.1"],"d":{"3":{"i":[1],"f":0}}}}}"#,
                "group example.com: day 3: an address position is out of range",
            ),
            (
                r#"{"groups":{"example.com":{"h":["mx"],"d":{"3":{"h":[-1,2],"f":0}}}}}"#,
                "group example.com: day 3: more host counts than host names",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"f":9223372036854775807}}}}}"#,
                "group example.com: day 3: a time out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"f":-1}}}}}"#,
                "group example.com: day 3: a time out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"f":86399999999,"l":2}}}}}"#,
                "group example.com: day 3: a time out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"-106751991":{"f":0}}}}}"#,
                "group example.com: day -106751991: a time out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[1]}}}}"#,
                "group example.com: day 3: a short day has 1 fields, not 2 to 17",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}}}}"#,
                "group example.com: day 3: a short day has 18 fields, not 2 to 17",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,300]}}}}"#,
                "group example.com: day 3: a delay without a mail that waited",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[86399,1,1]}}}}"#,
                "group example.com: day 3: a time out of range",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,8]}}}}"#,
                "group example.com: day 3: caps 8 are not a combination of 1, 2 and 4",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,0,1,5]}}}}"#,
                "group example.com: day 3: distinct counts [1, 5, 0] that no day can have",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,0,1,0,0,0,0,0,0,0,0,0,256]}}}}"#,
                "group example.com: day 3: caps 256 are not a combination of 1, 2 and 4",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"f":0,"x":[18446744073709551615,0,0]}}}}}"#,
                "group example.com: day 3: distinct counts [18446744073709551615, 0, 0] that no day can have",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":[0,-1]}}}}"#,
                "invalid value: integer `-1`, expected u64",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":"x"}}}}"#,
                "invalid type: string \"x\", expected a day bucket (a map, or a list of counts)",
            ),
            (
                r#"{"groups":{"example.com":{"d":{"3":{"f":0}},"p":{"192.0.2.0/24":["+123456789abcdef"]}}}}"#,
                "group example.com: pair hash \"+123456789abcdef\" is not 16 hex digits",
            ),
        ];
        for (json, reason) in cases {
            let err = serde_json::from_str::<Tally>(json).unwrap_err().to_string();
            assert!(err.starts_with(reason), "{err}");
        }
    }

    #[test]
    fn counts_skip_unseen_names() {
        assert_eq!(encode_counts(&[3, 1]), vec![3, 1]);
        assert_eq!(encode_counts(&[0, 0, 2, 0, 7, 0, 0]), vec![-2, 2, -1, 7]);
        assert_eq!(encode_counts(&[0, 0]), Vec::<i64>::new());
        let decoded: Vec<(usize, u64)> = decode_counts(&[-2, 2, -1, 7]).collect();
        assert_eq!(decoded, vec![(2, 2), (4, 7)]);
        // A zero, which is never written, reads as nothing.
        let decoded: Vec<(usize, u64)> = decode_counts(&[0, 5]).collect();
        assert_eq!(decoded, vec![(0, 5)]);
    }
}
