//! The postgrey being advised: the options it runs with, and how it keys a triplet.
//!
//! postgrey 1.37 (`/usr/sbin/postgrey`) looks a request up under
//! `lc "NETWORK/SENDER/RECIPIENT"`:
//! - NETWORK is the client address cut to `--ipv4cidr` (24) or `--ipv6cidr` (64) bits, or the
//!   whole address with `--lookup-by-host`. A sender retrying from another address of that
//!   network passes; from another network it is greylisted again.
//! - SENDER goes through `do_sender_substitutions` first: a BATV tag (`prvs=TAG=user` or
//!   `prvs=user=TAG`) is removed, a `+extension` stripped, and every number standing alone as
//!   a word replaced by `#`, so that VERP bounce addresses do not make a new triplet per mail.
//!
//! On Debian the options come from `/etc/default/postgrey`: the unit passes `$POSTGREY_OPTS`
//! (split at white space) to postgrey, which reads them with Perl's Getopt::Long — long options
//! after `-` or `--`, any case, any unambiguous abbreviation, the value after `=` or as the next
//! word. Perl's `||` makes a zero `--delay`, `--max-age` or CIDR the default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use ipnet::IpNet;
use thiserror::Error;

pub const DEFAULT_CONFIG: &str = "/etc/default/postgrey";
pub const DEFAULT_DELAY_S: u64 = 300;
pub const DEFAULT_MAX_AGE_DAYS: u64 = 35;
pub const DEFAULT_IPV4_CIDR: u8 = 24;
pub const DEFAULT_IPV6_CIDR: u8 = 64;
/// Debian's `CONFIG_DIR` is `/etc/postgrey`; these are read unless `--whitelist-clients` is.
pub const DEFAULT_WHITELIST_CLIENTS: [&str; 2] = [
    "/etc/postgrey/whitelist_clients",
    "/etc/postgrey/whitelist_clients.local",
];

/// What of postgrey's options changes what the advice must count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The options file they were read from; `None` for postgrey's defaults.
    pub config: Option<PathBuf>,
    pub lookup_by_host: bool,
    pub ipv4cidr: u8,
    pub ipv6cidr: u8,
    pub delay_s: u64,
    pub max_age_days: u64,
    /// `--whitelist-clients` files, or the two defaults.
    pub whitelist_clients: Vec<PathBuf>,
    /// `--auto-whitelist-clients=N`: a client passes after N successful deliveries (5; 0 off).
    pub auto_whitelist_clients: u64,
    /// `--pidfile`: where a daemonized postgrey writes its pid (Debian's init script passes
    /// `/var/run/postgrey.pid`; the systemd unit runs it in the foreground without one).
    pub pidfile: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config: None,
            lookup_by_host: false,
            ipv4cidr: DEFAULT_IPV4_CIDR,
            ipv6cidr: DEFAULT_IPV6_CIDR,
            delay_s: DEFAULT_DELAY_S,
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            whitelist_clients: DEFAULT_WHITELIST_CLIENTS
                .iter()
                .map(PathBuf::from)
                .collect(),
            auto_whitelist_clients: 5,
            pidfile: None,
        }
    }
}

impl Settings {
    /// The network postgrey files `address` under.
    pub fn network_of(&self, address: IpAddr) -> IpNet {
        self.network().of(address)
    }

    /// How postgrey cuts client addresses into networks under these settings.
    pub fn network(&self) -> Network {
        if self.lookup_by_host {
            Network {
                ipv4_prefix: 32,
                ipv6_prefix: 128,
            }
        } else {
            Network {
                ipv4_prefix: self.ipv4cidr,
                ipv6_prefix: self.ipv6cidr,
            }
        }
    }

    /// Whether anything the advice depends on differs from postgrey's defaults.
    pub fn is_default(&self) -> bool {
        let default = Settings::default();
        self.network() == default.network()
            && self.delay_s == default.delay_s
            && self.whitelist_clients == default.whitelist_clients
    }

    /// The settings that differ from postgrey's defaults, in postgrey's own option words
    /// (`--ipv4cidr=32, --delay=600`), for the one line the table and the digest show.
    pub fn describe_changes(&self) -> String {
        let default = Settings::default();
        let mut words = Vec::new();
        if self.lookup_by_host {
            words.push(String::from("--lookup-by-host"));
        } else {
            if self.ipv4cidr != default.ipv4cidr {
                words.push(format!("--ipv4cidr={}", self.ipv4cidr));
            }
            if self.ipv6cidr != default.ipv6cidr {
                words.push(format!("--ipv6cidr={}", self.ipv6cidr));
            }
        }
        if self.delay_s != default.delay_s {
            words.push(format!("--delay={}", self.delay_s));
        }
        if self.whitelist_clients != default.whitelist_clients {
            for path in &self.whitelist_clients {
                words.push(format!("--whitelist-clients={}", path.display()));
            }
        }
        words.join(", ")
    }
}

/// How postgrey cuts a client address into the network its triplets are keyed by: the
/// prefix lengths it keeps of IPv4 and IPv6 addresses (`--lookup-by-host` keeps them whole).
/// A retry from another address of the same network passes; from another network it is
/// greylisted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            ipv4_prefix: DEFAULT_IPV4_CIDR,
            ipv6_prefix: DEFAULT_IPV6_CIDR,
        }
    }
}

impl Network {
    /// The network of `address`. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as
    /// the IPv4 address it carries; otherwise every such client would share one IPv6 network.
    pub fn of(self, address: IpAddr) -> IpNet {
        let address = address.to_canonical();
        let prefix = match address {
            IpAddr::V4(_) => self.ipv4_prefix.min(32),
            IpAddr::V6(_) => self.ipv6_prefix.min(128),
        };
        // Both prefixes are within range for their address family.
        IpNet::new(address, prefix)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(address))
    }

    /// `/24 and /64` (postgrey's words for its default), `/32` for one family only, …
    pub fn describe(self) -> String {
        format!("/{} (IPv4), /{} (IPv6)", self.ipv4_prefix, self.ipv6_prefix)
    }
}

/// Why an options file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionsError {
    #[error("line {line}: {problem}")]
    Syntax { line: usize, problem: String },
    #[error("option --{option}: {problem}")]
    Value { option: String, problem: String },
    #[error("option {given} is ambiguous (could be {candidates})")]
    Ambiguous { given: String, candidates: String },
    #[error("option {0} needs a value")]
    MissingValue(String),
}

/// The options postgrey 1.37 declares (Getopt::Long names, aliases included): an abbreviation
/// is resolved against all of them, as Getopt::Long does.
const OPTIONS: &[(&str, Arity)] = &[
    ("help", Arity::Flag),
    ("h", Arity::Flag),
    ("man", Arity::Flag),
    ("version", Arity::Flag),
    ("noaction", Arity::Flag),
    ("no-action", Arity::Flag),
    ("n", Arity::Flag),
    ("verbose", Arity::Flag),
    ("v", Arity::Flag),
    ("quiet", Arity::Flag),
    ("q", Arity::Flag),
    ("daemonize", Arity::Flag),
    ("d", Arity::Flag),
    ("unix", Arity::Value),
    ("u", Arity::Value),
    ("inet", Arity::Value),
    ("i", Arity::Value),
    ("socketmode", Arity::Value),
    ("user", Arity::Value),
    ("group", Arity::Value),
    ("dbdir", Arity::Value),
    ("pidfile", Arity::Value),
    ("delay", Arity::Value),
    ("max-age", Arity::Value),
    ("lookup-by-subnet", Arity::Flag),
    ("lookup-by-host", Arity::Flag),
    ("ipv4cidr", Arity::Value),
    ("ipv6cidr", Arity::Value),
    ("auto-whitelist-clients", Arity::Optional),
    ("whitelist-clients", Arity::Value),
    ("whitelist-recipients", Arity::Value),
    ("syslogfacility", Arity::Value),
    ("syslog-facility", Arity::Value),
    ("facility", Arity::Value),
    ("retry-window", Arity::Value),
    ("greylist-action", Arity::Value),
    ("greylist-text", Arity::Value),
    ("privacy", Arity::Flag),
    ("hostname", Arity::Value),
    ("exim", Arity::Flag),
    ("listen-queue-size", Arity::Value),
    ("x-greylist-header", Arity::Value),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    Flag,
    /// `=s` / `=i`: the value after `=` or the next word.
    Value,
    /// `:s`: the value after `=`, or the next word unless it looks like an option.
    Optional,
}

/// Reads an options file in Debian's `/etc/default/postgrey` form: shell assignments, of
/// which `POSTGREY_OPTS` holds the options (the last assignment wins; `$NAME` and `${NAME}`
/// of earlier assignments are expanded as the shell that sources it would).
pub fn parse_default_file(text: &str) -> Result<Vec<String>, OptionsError> {
    let mut variables: Vec<(String, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let syntax = |problem: String| OptionsError::Syntax {
            line: index + 1,
            problem,
        };
        let words = shell_words::split(value)
            .map_err(|e| syntax(format!("{name}: {e} (shell quoting)")))?;
        let value = expand(&words.join(" "), &variables);
        variables.retain(|(n, _)| n != name);
        variables.push((name.to_string(), value));
    }
    Ok(variables
        .into_iter()
        .find(|(n, _)| n == "POSTGREY_OPTS")
        .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default())
}

fn expand(value: &str, variables: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(lookup(name));
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// The settings of the local postgrey: from `path` when given (it must exist), else from
/// Debian's [`DEFAULT_CONFIG`] when it exists, else postgrey's defaults.
pub fn load(path: Option<&Path>) -> anyhow::Result<Settings> {
    let (path, required) = match path {
        Some(path) => (path, true),
        None => (Path::new(DEFAULT_CONFIG), false),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Settings::default());
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read postgrey's options {}", path.display()));
        }
    };
    let words = parse_default_file(&text)
        .and_then(|words| parse_options(&words))
        .with_context(|| format!("postgrey's options in {}", path.display()))?;
    Ok(Settings {
        config: Some(path.to_path_buf()),
        ..words
    })
}

/// Interprets postgrey's command-line options as postgrey 1.37 does.
pub fn parse_options(words: &[String]) -> Result<Settings, OptionsError> {
    let mut settings = Settings::default();
    let mut whitelist_clients: Vec<PathBuf> = Vec::new();
    let mut words = words.iter().peekable();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let Some(body) = word
            .strip_prefix("--")
            .or_else(|| word.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            // postgrey ignores words that are not options.
            continue;
        };
        let (given, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        let (name, arity) = resolve(given)?;
        let value = match arity {
            Arity::Flag => None,
            Arity::Value => match inline {
                Some(v) => Some(v),
                None => Some(
                    words
                        .next()
                        .cloned()
                        .ok_or_else(|| OptionsError::MissingValue(word.clone()))?,
                ),
            },
            Arity::Optional => match inline {
                Some(v) => Some(v),
                None => match words.peek() {
                    Some(next) if !next.starts_with('-') => words.next().cloned(),
                    _ => Some(String::new()),
                },
            },
        };
        let value = value.unwrap_or_default();
        match name {
            "lookup-by-host" => settings.lookup_by_host = true,
            "delay" => settings.delay_s = or_default(name, &value, DEFAULT_DELAY_S)?,
            "max-age" => settings.max_age_days = or_default(name, &value, DEFAULT_MAX_AGE_DAYS)?,
            "ipv4cidr" => settings.ipv4cidr = prefix(name, &value, 32, DEFAULT_IPV4_CIDR)?,
            "ipv6cidr" => settings.ipv6cidr = prefix(name, &value, 128, DEFAULT_IPV6_CIDR)?,
            "whitelist-clients" => whitelist_clients.push(PathBuf::from(value)),
            "pidfile" => settings.pidfile = Some(PathBuf::from(value)),
            // An empty value means the default 5; `=0` switches it off.
            "auto-whitelist-clients" if value.is_empty() => settings.auto_whitelist_clients = 5,
            "auto-whitelist-clients" => {
                settings.auto_whitelist_clients = perl_number(&value);
            }
            _ => {}
        }
    }
    if !whitelist_clients.is_empty() {
        settings.whitelist_clients = whitelist_clients;
    }
    Ok(settings)
}

/// Getopt::Long matches names case-insensitively and takes a unique prefix of one.
fn resolve(given: &str) -> Result<(&'static str, Arity), OptionsError> {
    let lower = given.to_ascii_lowercase();
    if let Some(&(name, arity)) = OPTIONS.iter().find(|(n, _)| *n == lower) {
        return Ok((name, arity));
    }
    let candidates: Vec<&(&str, Arity)> = OPTIONS
        .iter()
        .filter(|(n, _)| n.starts_with(&lower))
        .collect();
    match candidates.as_slice() {
        [(name, arity)] => Ok((name, *arity)),
        // Unknown options make postgrey print its usage and exit; it would not be running.
        [] => Err(OptionsError::Value {
            option: given.to_string(),
            problem: "postgrey 1.37 has no such option (it would refuse to start)".to_string(),
        }),
        many => Err(OptionsError::Ambiguous {
            given: format!("--{given}"),
            candidates: many
                .iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// An `=i` value: Getopt::Long accepts an optional sign and decimal digits only.
fn integer(option: &str, value: &str) -> Result<i64, OptionsError> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OptionsError::Value {
            option: option.to_string(),
            problem: format!("{value:?} is not a number (postgrey would refuse to start)"),
        });
    }
    value.parse().map_err(|_| OptionsError::Value {
        option: option.to_string(),
        problem: format!("{value} is out of range"),
    })
}

/// Perl's `$opt{x} || default`: zero means the default. postgrey takes a negative number
/// too (a negative delay lets every retry pass), but that is a slip, not a setting to advise on.
fn or_default(option: &str, value: &str, default: u64) -> Result<u64, OptionsError> {
    let n = integer(option, value)?;
    match u64::try_from(n) {
        Ok(0) => Ok(default),
        Ok(n) => Ok(n),
        Err(_) => Err(OptionsError::Value {
            option: option.to_string(),
            problem: format!("{n} is negative"),
        }),
    }
}

fn prefix(option: &str, value: &str, max: i64, default: u8) -> Result<u8, OptionsError> {
    let n = integer(option, value)?;
    if n == 0 {
        return Ok(default);
    }
    u8::try_from(n)
        .ok()
        .filter(|&n| i64::from(n) <= max)
        .ok_or_else(|| OptionsError::Value {
            option: option.to_string(),
            problem: format!("{n} is not a prefix length from 1 to {max}"),
        })
}

/// Perl's numeric reading of a string: leading digits, else 0.
fn perl_number(value: &str) -> u64 {
    let digits: String = value
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

/// The sender as postgrey keys it (`do_sender_substitutions`, then `lc` of the whole key).
pub fn triplet_sender(sender: &str) -> String {
    let mut key = Vec::with_capacity(sender.len());
    triplet_sender_into(sender, &mut |byte| key.push(byte.to_ascii_lowercase()));
    // Only ASCII was replaced or lower-cased, so the bytes are still the UTF-8 they were.
    String::from_utf8(key).unwrap_or_else(|_| sender.to_ascii_lowercase())
}

/// Hands `out` the bytes of the sender as postgrey keys it, before lower-casing: its
/// `do_sender_substitutions` (the BATV tag, a `+extension` dropped; numbers standing alone in
/// the local part replaced by `#`). Allocates nothing: it runs once per greylisting, and the
/// caller hashes the bytes.
pub fn triplet_sender_into(sender: &str, out: &mut impl FnMut(u8)) {
    let Some((mut user, domain)) = sender.split_once('@') else {
        sender.bytes().for_each(&mut *out);
        return;
    };
    // Case matters here: postgrey tests `prvs=` and the tag before lower-casing the key.
    if user.starts_with("prvs=") {
        // Perl's split drops trailing empty fields: `prvs=tag=` has two, not three.
        let mut parts = user.trim_end_matches('=').split('=');
        if let (Some(_), Some(first), Some(second), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            let tagged = |s: &str| {
                s.len() >= 10
                    && s.bytes()
                        .take(10)
                        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            };
            user = if tagged(first) && !tagged(second) {
                second
            } else if tagged(second) && !tagged(first) {
                first
            } else {
                second
            };
        }
    }
    if let Some(plus) = user.find('+') {
        user = &user[..plus];
    }
    hash_numbers(user, out);
    out(b'@');
    domain.bytes().for_each(out);
}

/// Perl's `s/\b\d+\b/#/g` on a byte string: a run of digits with a word boundary at both
/// ends (`\w` is `[A-Za-z0-9_]`), so `a-123-b` → `a-#-b` but `a123` stays.
fn hash_numbers(user: &str, out: &mut impl FnMut(u8)) {
    let bytes = user.as_bytes();
    let word = |i: usize| {
        bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit() && (i == 0 || !word(i - 1));
        if starts_run {
            let end = (i..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            if word(end) {
                // Not a whole word: the run as it is.
                bytes[i..end].iter().copied().for_each(&mut *out);
            } else {
                out(b'#');
            }
            i = end;
            continue;
        }
        out(bytes[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn debian_default_file() {
        let text = "# postgrey startup options, created for Debian\n\n\
                    POSTGREY_OPTS=\"--inet=10023\"\n\
                    #POSTGREY_TEXT=\"Your customized rejection message here\"\n";
        let opts = parse_default_file(text).unwrap();
        assert_eq!(opts, vec!["--inet=10023"]);
        assert_eq!(parse_options(&opts).unwrap(), Settings::default());
    }

    #[test]
    fn quoting_assignments_and_expansion() {
        let text = "BASE='--inet=127.0.0.1:10023'\n\
                    export POSTGREY_OPTS=\"$BASE --delay=60\"\n\
                    POSTGREY_OPTS=\"${POSTGREY_OPTS} --ipv4cidr=32\" # tighter\n";
        assert_eq!(
            parse_default_file(text).unwrap(),
            words("--inet=127.0.0.1:10023 --delay=60 --ipv4cidr=32")
        );
        let err = parse_default_file("\nPOSTGREY_OPTS=\"--delay=60\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 2: POSTGREY_OPTS:"),
            "{err}"
        );
        assert_eq!(
            parse_default_file("OTHER=1\n").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn options_as_getopt_long_reads_them() {
        let s = parse_options(&words(
            "--inet 10023 -DELAY=60 --ipv4=32 --lookup-by-subnet --max-age 7 \
             --whitelist-clients=/a --whitelist-clients /b --auto-whitelist-clients",
        ))
        .unwrap();
        assert_eq!(s.delay_s, 60);
        assert_eq!(s.ipv4cidr, 32);
        assert_eq!(s.max_age_days, 7);
        assert_eq!(
            s.whitelist_clients,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(s.auto_whitelist_clients, 5);
        assert!(!s.lookup_by_host);

        let host = parse_options(&words("--lookup-by-h --auto-whitelist-clients=0")).unwrap();
        assert!(host.lookup_by_host);
        assert_eq!(host.auto_whitelist_clients, 0);
        // Perl's `||`: zero is the default.
        let zero = parse_options(&words("--delay=0 --ipv6cidr=0")).unwrap();
        assert_eq!((zero.delay_s, zero.ipv6cidr), (300, 64));
    }

    #[test]
    fn malformed_values_that_matter_are_errors() {
        let err = parse_options(&words("--delay=5m")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option --delay: \"5m\" is not a number (postgrey would refuse to start)"
        );
        let err = parse_options(&words("--delay=-7")).unwrap_err();
        assert_eq!(err.to_string(), "option --delay: -7 is negative");
        let err = parse_options(&words("--ipv4cidr=33")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option --ipv4cidr: 33 is not a prefix length from 1 to 32"
        );
        let err = parse_options(&words("--whitelist")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option --whitelist is ambiguous (could be --whitelist-clients, --whitelist-recipients)"
        );
        assert_eq!(
            parse_options(&words("--delay")).unwrap_err(),
            OptionsError::MissingValue("--delay".into())
        );
    }

    #[test]
    fn networks_follow_the_settings() {
        let address: IpAddr = "192.0.2.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:3::9".parse().unwrap();
        let default = Settings::default();
        assert_eq!(default.network_of(address).to_string(), "192.0.2.0/24");
        assert_eq!(default.network_of(v6).to_string(), "2001:db8:1:2::/64");
        let narrow = parse_options(&words("--ipv4cidr=32 --ipv6cidr=48")).unwrap();
        assert_eq!(narrow.network_of(address).to_string(), "192.0.2.77/32");
        assert_eq!(narrow.network_of(v6).to_string(), "2001:db8:1::/48");
        let host = parse_options(&words("--lookup-by-host")).unwrap();
        assert_eq!(host.network_of(v6).to_string(), "2001:db8:1:2:3::9/128");
    }

    #[test]
    fn senders_as_postgrey_keys_them() {
        for (logged, key) in [
            ("news@example.com", "news@example.com"),
            ("News@Example.COM", "news@example.com"),
            ("prvs=0123abcdef=bounce@example.com", "bounce@example.com"),
            ("prvs=bounce=0123abcdef@example.com", "bounce@example.com"),
            ("prvs=bounce=mail@example.com", "mail@example.com"),
            (
                "prvs=0123abcdef=@example.com",
                "prvs=0123abcdef=@example.com",
            ),
            // The tag test is case-sensitive and comes before lower-casing.
            ("prvs=0123ABCDEF=bounce@example.com", "bounce@example.com"),
            ("user+list-123@example.com", "user@example.com"),
            ("bounce-123-456@example.com", "bounce-#-#@example.com"),
            ("bounce.42@example.com", "bounce.#@example.com"),
            ("abc123@example.com", "abc123@example.com"),
            ("123_x@example.com", "123_x@example.com"),
            ("12@34.example.com", "#@34.example.com"),
            ("no-at-sign", "no-at-sign"),
        ] {
            assert_eq!(triplet_sender(logged), key, "{logged}");
            let mut hashed = Vec::new();
            triplet_sender_into(logged, &mut |byte| hashed.push(byte));
            assert_eq!(hashed.to_ascii_lowercase(), key.as_bytes(), "{logged}");
        }
    }
}
