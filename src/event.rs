//! One postgrey 1.37 log line → one [`Event`].
//!
//! Postgrey logs each policy decision as
//! `[QUEUEID: ]action=A[, reason=R][, delay=N][, client_name=…][, client_address=…][, sender=…][, recipient=…]`
//! where each of the last four fields appears only when non-empty (a null sender has no
//! `sender=`). Values are escaped twice on their way out: postgrey's own `mylog` doubles every
//! `%` (a workaround for old Net::Server versions that fed the text to `sprintf`), and when
//! postgrey logs to stdout (Debian's unit), Net::Server's `write_to_log_hook` then turns every byte
//! outside printable ASCII into `%XX`. Under `--daemonize` it logs through syslog(3) instead and
//! non-ASCII bytes arrive raw. Both forms decode the same way: `%%` → `%`, `%XX` → that byte.
//!
//! Everything else postgrey logs is recognised so it can be counted: `whitelisted: name[ip]` when
//! the client auto-whitelist takes a client in, start-up/shutdown/reload/database maintenance
//! (from postgrey and Net::Server), and warnings about bad requests or bad configuration
//! (`WARNING: ` and `FATAL: ` prefixed under syslog, bare on stdout).
//!
//! The values come from the SMTP client, so the parser trusts nothing: `client_name` must be a
//! host name as Postfix's `valid_hostname()` would accept it (or `unknown`), `client_address` an
//! IP address, and no value may be longer than the 512 bytes postgrey keeps of a policy
//! attribute. The parser is pure and never panics: anything that is not a well-formed postgrey
//! line is a [`Malformed`] error that callers count, never echo.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::hostname;

/// postgrey keeps only this many bytes of a policy attribute (`substr($2, 0, 512)` in
/// `mux_input`), so a longer logged value was not written by postgrey.
const MAX_ATTRIBUTE_BYTES: usize = 512;
/// Postfix queue IDs are 10–12 hex digits (short form) or about 15 base-52 characters (long
/// form); anything far longer is not a queue ID.
const MAX_QUEUE_ID_BYTES: usize = 32;
/// Longest IPv6 text form with an embedded IPv4 address is 45 bytes.
const MAX_ADDRESS_BYTES: usize = 45;
/// postgrey logs only `greylist` and `pass`; other action words get some room, not unlimited.
const MAX_WORD_BYTES: usize = 64;

/// What postgrey answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Greylist,
    Pass,
    /// Any other action word (postgrey 1.37 logs only the two above).
    Other(String),
}

/// Why postgrey answered so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `new`: first time this triplet is seen.
    New,
    /// `early-retry (Ns missing)`: retried before the delay was over.
    EarlyRetry {
        missing_s: u64,
    },
    /// `triplet found`: the retry passed (with `delay=` on the first pass only).
    TripletFound,
    ClientWhitelist,
    RecipientWhitelist,
    /// `client AWL`: the client auto-whitelist.
    ClientAwl,
    /// Any other reason text (ASCII letters, digits, spaces, `()_-`); postgrey 1.37 logs only
    /// the ones above.
    Other(String),
}

/// The client host name as postgrey logged it: `unknown` when Postfix found no verified
/// reverse name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClientName {
    Unknown,
    /// Lower-cased, without trailing dot; a syntactically valid host name.
    Host(String),
}

impl ClientName {
    pub fn host(&self) -> Option<&str> {
        match self {
            ClientName::Unknown => None,
            ClientName::Host(h) => Some(h),
        }
    }

    /// Validates a logged client name: `unknown` (any case), or a host name as Postfix's
    /// `valid_hostname()` accepts it (see [`hostname`]), since Postfix only hands out names it
    /// has verified. One trailing dot is dropped; the result is lower-cased. Returns `None` for
    /// anything else.
    pub fn from_log(raw: &[u8]) -> Option<ClientName> {
        Self::from_log_text(std::str::from_utf8(raw).ok()?)
    }

    /// [`ClientName::from_log`] of a name known to be UTF-8.
    fn from_log_text(raw: &str) -> Option<ClientName> {
        let name = raw.strip_suffix('.').unwrap_or(raw);
        if name.eq_ignore_ascii_case("unknown") {
            return Some(ClientName::Unknown);
        }
        hostname::check(name.as_bytes())?;
        Some(ClientName::Host(name.to_ascii_lowercase()))
    }
}

/// One policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub queue_id: Option<String>,
    pub action: Action,
    pub reason: Option<Reason>,
    /// Seconds the triplet waited, logged on the first pass after greylisting.
    pub delay_s: Option<u64>,
    /// `None` when postgrey logged no `client_name=`.
    pub client_name: Option<ClientName>,
    pub client_address: Option<IpAddr>,
    /// Unescaped (`%%` → `%`, `%XX` → byte, lossy UTF-8); `None` for the null sender.
    pub sender: Option<String>,
    pub recipient: Option<String>,
}

/// A recognised postgrey log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Decision(Decision),
    /// `whitelisted: name[ip]`: the client auto-whitelist took a client in. postgrey logs a bare
    /// `whitelisted: ip` when the request had an empty `client_name`; that client is
    /// [`ClientName::Unknown`] here.
    AutoWhitelisted {
        client_name: ClientName,
        client_address: IpAddr,
    },
    /// Start-up, shutdown, reload, database maintenance.
    Maintenance,
    /// Warnings about bad policy requests, configuration problems and fatal errors.
    Warning,
}

/// Why a line is not a postgrey line we understand. Callers count these; the text of the line
/// is never echoed, so the variants carry only static field names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("not a postgrey log line")]
    Unrecognized,
    /// A known field with a value postgrey could not have logged (bad host name or address,
    /// bad escape, over-long, line break or NUL inside, …).
    #[error("bad field {0}")]
    BadField(&'static str),
    /// A decision line where the text after this field is not the next field postgrey writes:
    /// a line cut inside a field name, fields out of order or repeated.
    #[error("unexpected text after field {0}")]
    UnexpectedText(&'static str),
}

/// Parses one log message (without syslog prefix). A trailing line break is ignored.
pub fn parse(line: &[u8]) -> Result<Event, Malformed> {
    let (mut event, details) = parse_apart(line)?;
    if let Event::Decision(decision) = &mut event {
        decision.queue_id = details.queue_id.map(str::to_owned);
        decision.sender = details.sender.map(Cow::into_owned);
        decision.recipient = details.recipient.map(Cow::into_owned);
    }
    Ok(event)
}

/// A decision's queue ID, and its sender and recipient unescaped, borrowed from the line (the
/// addresses unless postgrey escaped something in them).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Details<'a> {
    pub queue_id: Option<&'a str>,
    pub sender: Option<Cow<'a, str>>,
    pub recipient: Option<Cow<'a, str>>,
}

/// [`parse`], with a decision's queue ID, sender and recipient apart from it (the decision has
/// none): a caller that only hashes the addresses need not copy them.
pub fn parse_apart(line: &[u8]) -> Result<(Event, Details<'_>), Malformed> {
    let line = trim_line_end(line);
    if let Some(text) = split_queue_id(line)? {
        return parse_decision(text, &Utf8View::of(line))
            .map(|(decision, addresses)| (Event::Decision(decision), addresses));
    }
    let event = match line.strip_prefix(b"whitelisted: ") {
        Some(client) => parse_auto_whitelisted(client)?,
        None => classify_notice(line).ok_or(Malformed::Unrecognized)?,
    };
    Ok((event, Details::default()))
}

/// A line's fields as text. Nearly every line is valid UTF-8 (most are ASCII): checked once as a
/// whole, its fields are then taken as text where they lie, instead of each being checked again.
struct Utf8View<'a> {
    line: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> Utf8View<'a> {
    fn of(line: &'a [u8]) -> Self {
        Utf8View {
            line,
            text: std::str::from_utf8(line).ok(),
        }
    }

    /// `part` of the line as text, `None` when it is not UTF-8.
    fn str_of(&self, part: &'a [u8]) -> Option<&'a str> {
        // Where `part` lies in the line: bytes at the same place are the same bytes. A part of
        // another buffer lies outside the line, and is checked on its own.
        let start = (part.as_ptr() as usize).wrapping_sub(self.line.as_ptr() as usize);
        self.text
            .and_then(|text| text.get(start..start.checked_add(part.len())?))
            .or_else(|| std::str::from_utf8(part).ok())
    }
}

fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// The two parts of a decision line: `[QUEUEID: ]action=…`.
struct DecisionText<'a> {
    queue_id: Option<&'a [u8]>,
    /// From `action=` on.
    fields: &'a [u8],
}

/// Finds a decision line; `None` when the line is not a decision at all.
fn split_queue_id(line: &[u8]) -> Result<Option<DecisionText<'_>>, Malformed> {
    if line.starts_with(b"action=") {
        return Ok(Some(DecisionText {
            queue_id: None,
            fields: line,
        }));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Ok(None);
    };
    let (prefix, after) = line.split_at(colon);
    let Some(fields) = after.strip_prefix(b": ") else {
        return Ok(None);
    };
    // Messages such as `Chrooting to DIR: …` have spaces before the colon; a queue ID has none.
    if !fields.starts_with(b"action=") || prefix.is_empty() || prefix.contains(&b' ') {
        return Ok(None);
    }
    if prefix.len() > MAX_QUEUE_ID_BYTES || !prefix.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Malformed::BadField("queue_id"));
    }
    Ok(Some(DecisionText {
        queue_id: Some(prefix),
        fields,
    }))
}

/// The optional fields of a decision, in the order postgrey's `mylog_action` writes them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Reason,
    Delay,
    ClientName,
    ClientAddress,
    Sender,
    Recipient,
}

const FIELD_ORDER: [Field; 6] = [
    Field::Reason,
    Field::Delay,
    Field::ClientName,
    Field::ClientAddress,
    Field::Sender,
    Field::Recipient,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Reason => "reason",
            Field::Delay => "delay",
            Field::ClientName => "client_name",
            Field::ClientAddress => "client_address",
            Field::Sender => "sender",
            Field::Recipient => "recipient",
        }
    }

    fn key(self) -> &'static [u8] {
        match self {
            Field::Reason => b"reason=",
            Field::Delay => b"delay=",
            Field::ClientName => b"client_name=",
            Field::ClientAddress => b"client_address=",
            Field::Sender => b"sender=",
            Field::Recipient => b"recipient=",
        }
    }

    /// The field whose `key=` `text` starts with. No key is the start of another, so one byte
    /// or two tell which key to compare.
    fn at_start_of(text: &[u8]) -> Option<Field> {
        // Each arm compares a key the compiler knows, in a register or two instead of a call.
        let is = |field: Field| text.starts_with(field.key());
        let field = match (text.first()?, text.get(2), text.get(7)) {
            (b'r', Some(b'a'), _) if is(Field::Reason) => Field::Reason,
            (b'r', _, _) if is(Field::Recipient) => Field::Recipient,
            (b'd', _, _) if is(Field::Delay) => Field::Delay,
            (b'c', _, Some(b'n')) if is(Field::ClientName) => Field::ClientName,
            (b'c', _, _) if is(Field::ClientAddress) => Field::ClientAddress,
            (b's', _, _) if is(Field::Sender) => Field::Sender,
            _ => return None,
        };
        Some(field)
    }

    /// Where this field's value ends in `text` (which starts right after `key=`).
    ///
    /// Genuine reasons, delays, host names and addresses never contain `, `, so they end at the
    /// first one. A sender is free text from the SMTP client and may contain `, ` or even
    /// `, recipient=`; the recipient is last on the line, so the sender ends at the *last*
    /// `, recipient=`. (A recipient containing `, recipient=` is then misread, but it has to be
    /// an address the server accepts mail for, so it is the less likely forgery.)
    fn value_end(self, text: &[u8]) -> usize {
        match self {
            Field::Sender => rfind(text, b", recipient=").unwrap_or(text.len()),
            Field::Recipient => text.len(),
            _ => find(text, b", ").unwrap_or(text.len()),
        }
    }
}

fn parse_decision<'a>(
    text: DecisionText<'a>,
    line: &Utf8View<'a>,
) -> Result<(Decision, Details<'a>), Malformed> {
    let DecisionText { queue_id, fields } = text;
    let after_action = fields.strip_prefix(b"action=").unwrap_or(fields);
    let action_end = find(after_action, b", ").unwrap_or(after_action.len());
    let (action, mut rest) = after_action.split_at(action_end);
    let mut decision = Decision {
        queue_id: None,
        action: parse_action(action)?,
        reason: None,
        delay_s: None,
        client_name: None,
        client_address: None,
        sender: None,
        recipient: None,
    };
    let mut details = Details {
        // Checked to be ASCII letters and digits.
        queue_id: queue_id.and_then(|id| line.str_of(id)),
        ..Details::default()
    };
    let mut previous = "action";
    let mut remaining_fields: &[Field] = &FIELD_ORDER;
    while !rest.is_empty() {
        let Some(after_separator) = rest.strip_prefix(b", ") else {
            return Err(Malformed::UnexpectedText(previous));
        };
        let Some(position) = Field::at_start_of(after_separator)
            .and_then(|field| remaining_fields.iter().position(|f| *f == field))
        else {
            return Err(Malformed::UnexpectedText(previous));
        };
        let field = remaining_fields[position];
        remaining_fields = &remaining_fields[position + 1..];
        let text = &after_separator[field.key().len()..];
        let (value, after_value) = text.split_at(field.value_end(text));
        store_field(&mut decision, &mut details, field, value, line)?;
        previous = field.name();
        rest = after_value;
    }
    Ok((decision, details))
}

fn store_field<'a>(
    decision: &mut Decision,
    details: &mut Details<'a>,
    field: Field,
    value: &'a [u8],
    line: &Utf8View<'a>,
) -> Result<(), Malformed> {
    let bad = || Malformed::BadField(field.name());
    match field {
        Field::Reason => decision.reason = Some(parse_reason(value).ok_or_else(bad)?),
        Field::Delay => decision.delay_s = Some(parse_decimal(value).ok_or_else(bad)?),
        Field::ClientName => {
            let name = line.str_of(value).and_then(ClientName::from_log_text);
            decision.client_name = Some(name.ok_or_else(bad)?)
        }
        Field::ClientAddress => {
            let address = line.str_of(value).and_then(parse_address);
            decision.client_address = Some(address.ok_or_else(bad)?)
        }
        Field::Sender => details.sender = Some(unescape(value, line).ok_or_else(bad)?),
        Field::Recipient => details.recipient = Some(unescape(value, line).ok_or_else(bad)?),
    }
    Ok(())
}

fn parse_action(word: &[u8]) -> Result<Action, Malformed> {
    match word {
        b"greylist" => Ok(Action::Greylist),
        b"pass" => Ok(Action::Pass),
        _ if is_word(word) => Ok(Action::Other(ascii_to_string(word))),
        _ => Err(Malformed::BadField("action")),
    }
}

/// A plausible action word: lower-case ASCII letters, digits, `_` or `-`.
fn is_word(word: &[u8]) -> bool {
    !word.is_empty()
        && word.len() <= MAX_WORD_BYTES
        && word
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn parse_reason(text: &[u8]) -> Option<Reason> {
    let reason = match text {
        b"new" => Reason::New,
        b"triplet found" => Reason::TripletFound,
        b"client whitelist" => Reason::ClientWhitelist,
        b"recipient whitelist" => Reason::RecipientWhitelist,
        b"client AWL" => Reason::ClientAwl,
        _ => {
            if let Some(inner) = text.strip_prefix(b"early-retry (") {
                let seconds = inner.strip_suffix(b"s missing)")?;
                return parse_decimal(seconds).map(|missing_s| Reason::EarlyRetry { missing_s });
            }
            // postgrey's reasons are words, spaces and parentheses; a `,` or `=` would mean the
            // field boundaries were misread.
            let wordy = text
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b" ()_-".contains(&b));
            if text.is_empty() || text.len() > MAX_WORD_BYTES || !wordy {
                return None;
            }
            Reason::Other(ascii_to_string(text))
        }
    };
    Some(reason)
}

/// Unsigned decimal without sign, spaces or overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        let digit = char::from(b).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Postfix hands postgrey plain addresses (`192.0.2.1`, `2001:db8::1`), never the `ipv6:` form
/// of SMTP address literals, so only those are accepted.
fn parse_address(text: &str) -> Option<IpAddr> {
    if text.len() > MAX_ADDRESS_BYTES {
        return None;
    }
    text.parse().ok()
}

/// Undoes postgrey's escaping: `%%` → `%`, `%XX` → byte, then lossy UTF-8.
///
/// Rejects what postgrey cannot have written: an empty value (it omits those), a lone `%`, more
/// than 512 bytes, or a NUL, CR or LF (the policy protocol is line-based, so no attribute value
/// holds a line break, and syslog(3) ends a message at NUL).
fn unescape<'a>(text: &'a [u8], line: &Utf8View<'a>) -> Option<Cow<'a, str>> {
    // An address is a few dozen bytes: one pass over all of them without a branch (which the
    // compiler turns into vector instructions) costs less than a search for each byte.
    let special = text.iter().fold(false, |seen, &b| {
        seen | matches!(b, b'%' | b'\r' | b'\n' | 0)
    });
    if !special && !text.is_empty() && text.len() <= MAX_ATTRIBUTE_BYTES {
        // Most addresses have nothing to undo: borrowed, not undone a byte at a time (the
        // lossy form only for what is not UTF-8).
        return Some(match line.str_of(text) {
            Some(text) => Cow::Borrowed(text),
            None => String::from_utf8_lossy(text),
        });
    }
    let mut bytes = Vec::with_capacity(text.len().min(MAX_ATTRIBUTE_BYTES));
    let mut rest = text;
    while let [first, tail @ ..] = rest {
        let (byte, after) = match (first, tail) {
            (b'%', [b'%', after @ ..]) => (b'%', after),
            (b'%', [high, low, after @ ..]) => (hex_byte(*high, *low)?, after),
            (b'%', _) => return None,
            (&byte, after) => (byte, after),
        };
        if matches!(byte, b'\0' | b'\r' | b'\n') || bytes.len() == MAX_ATTRIBUTE_BYTES {
            return None;
        }
        bytes.push(byte);
        rest = after;
    }
    if bytes.is_empty() {
        return None;
    }
    Some(Cow::Owned(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }))
}

fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let high = char::from(high).to_digit(16)?;
    let low = char::from(low).to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// `whitelisted: name[ip]`, or `whitelisted: ip` when postgrey had no client name.
fn parse_auto_whitelisted(client: &[u8]) -> Result<Event, Malformed> {
    let (name, address) = match client.strip_suffix(b"]") {
        Some(inner) => {
            let open = inner
                .iter()
                .position(|&b| b == b'[')
                .ok_or(Malformed::BadField("client_address"))?;
            (Some(&inner[..open]), &inner[open + 1..])
        }
        None => (None, client),
    };
    let client_address = std::str::from_utf8(address)
        .ok()
        .and_then(parse_address)
        .ok_or(Malformed::BadField("client_address"))?;
    let client_name = match name {
        Some(name) => ClientName::from_log(name).ok_or(Malformed::BadField("client_name"))?,
        None => ClientName::Unknown,
    };
    Ok(Event::AutoWhitelisted {
        client_name,
        client_address,
    })
}

/// Messages of postgrey 1.37 and Net::Server 2.x that report normal operation.
const MAINTENANCE_PREFIXES: &[&[u8]] = &[
    // postgrey
    b"Exiting!",
    b"HUP received: reloading whitelists",
    b"cleaning up old logs",
    b"cleaning up old entries",
    b"cleaning main database finished.",
    b"cleaning clients database finished.",
    b"correcting date for first seen in the future!",
    b"rm /",
    // Net::Server: start-up, binding, privileges
    b"Process Backgrounded",
    b"Port Not Defined.",
    b"Duplicate configuration ",
    b"Binding open file descriptors",
    b"Added new port configuration",
    b"Closing un-mapped port ",
    b"Group Not Defined.",
    b"User Not Defined.",
    b"Chrooting to ",
    b"Setting gid to ",
    b"Setting uid to ",
    b"Determining auto-assigned port ",
    b"Resolved [",
    b"Binding to ",
    b"  Bound to ",
    b"  Re-bound to ",
    b"Reassociating file descriptor ",
    // Net::Server: shutdown and signals. The pid file of a daemon that dropped privileges
    // cannot be removed at every shutdown, so "Couldn't unlink" is routine.
    b"Attempting a slow shutdown",
    b"Couldn't unlink ",
    b"Kill TERM pid ",
    b"Kill HUP pid ",
    b"Sending children hup signal",
    b"Received a SIG HUP",
    b"signaling ",
    b"sig_passthrough option found",
    b"Installing passthrough for ",
    b"Installed passthrough for ",
];

/// Messages of postgrey 1.37, Net::Server 2.x and Perl that report a problem.
const WARNING_PREFIXES: &[&[u8]] = &[
    // Under syslog postgrey prefixes every Perl warning and fatal error.
    b"WARNING: ",
    b"FATAL: ",
    b"ERROR: ",
    b"NOTICE: ",
    // postgrey, bad policy requests
    b"attribute missing: ",
    b"can't parse client_address from postfix: ",
    b"unrecognized request type: ",
    b"ignoring garbage: ",
    // postgrey, configuration and database
    b"can't open ",
    b"can't checkpoint",
    b"can't remove db log ",
    b"disabling DB_AUTO_COMMIT ",
    b"NetAddr::IP->bits() ",
    // Net::Server
    b"Accept failed with ",
    b"Ran out of accept retries!",
    b"Client socket information could not be determined!",
    b"Failed to kill pid ",
    b"child ",
    b"Pid_file ",
    b"Configuration options were empty",
    b"Couldn't open conf ",
    b"Couldn't open syslog",
    b"Syslog err",
    // Second line of a Net::Server fatal error logged to stdout.
    b"  at line ",
];

/// Net::Server messages after its `log_time` stamp that report normal operation.
const STAMPED_MAINTENANCE_PREFIXES: &[&[u8]] = &[
    b"Server closing!",
    b"Re-exec server during HUP",
    b"CONNECT ",
    b"Double reverse ",
];

fn classify_notice(line: &[u8]) -> Option<Event> {
    if let Some(message) = strip_log_time(line) {
        // Net::Server stamps only start, stop, HUP re-exec, verbose connection notes and its
        // own fatal errors.
        let routine = message.ends_with(b")") && find(message, b" starting! pid(").is_some()
            || STAMPED_MAINTENANCE_PREFIXES
                .iter()
                .any(|prefix| message.starts_with(prefix));
        return Some(if routine {
            Event::Maintenance
        } else {
            Event::Warning
        });
    }
    if MAINTENANCE_PREFIXES
        .iter()
        .any(|prefix| line.starts_with(prefix))
        || is_signal_note(line)
    {
        return Some(Event::Maintenance);
    }
    if WARNING_PREFIXES
        .iter()
        .any(|prefix| line.starts_with(prefix))
        || find(line, b": doesn't look like a").is_some()
        || ends_with_perl_location(line)
    {
        return Some(Event::Warning);
    }
    None
}

/// `SIGPIPE received`, logged by Net::Server::Multiplex at debug level.
fn is_signal_note(line: &[u8]) -> bool {
    line.strip_prefix(b"SIG")
        .and_then(|rest| rest.strip_suffix(b" received"))
        .is_some_and(|name| !name.is_empty() && name.iter().all(u8::is_ascii_uppercase))
}

/// Net::Server's `log_time` stamp `YYYY/MM/DD-HH:MM:SS ` (it is part of the message itself);
/// returns the text after it.
fn strip_log_time(line: &[u8]) -> Option<&[u8]> {
    const PATTERN: &[u8; 20] = b"0000/00/00-00:00:00 ";
    let stamp = line.get(..PATTERN.len())?;
    let matches = stamp.iter().zip(PATTERN).all(|(&b, &p)| {
        if p == b'0' {
            b.is_ascii_digit()
        } else {
            b == p
        }
    });
    matches.then(|| &line[PATTERN.len()..])
}

/// Perl's `warn`/`die` suffix `… at FILE line N.` (or `…, <FH> line N.`), which bare Perl warnings
/// on stdout carry.
fn ends_with_perl_location(line: &[u8]) -> bool {
    let Some(body) = line.strip_suffix(b".") else {
        return false;
    };
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && body[..body.len() - digits].ends_with(b" line ") && find(body, b" at ").is_some()
}

// The needles are short and the fields shorter: a searcher built per call (memmem's) costs
// more than it saves, so the first byte is searched for and the rest compared.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    memchr::memchr_iter(first, haystack).find(|&at| haystack[at..].starts_with(needle))
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    memchr::memrchr_iter(first, haystack).find(|&at| haystack[at..].starts_with(needle))
}

/// For bytes already checked to be ASCII.
fn ascii_to_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => text.to_owned(),
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// `_TRANSPORT PRIORITY SYSLOG_FACILITY _SYSTEMD_UNIT _PID MESSAGE`, captured from real
    /// postgrey 1.37 daemons (stdout and syslog transports).
    const REAL_MESSAGES: &str = include_str!("../tests/fixtures/real-messages.txt");

    fn real_messages() -> Vec<&'static str> {
        REAL_MESSAGES
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.splitn(6, '\t').nth(5).expect("six columns"))
            .collect()
    }

    fn decision(line: &str) -> Decision {
        match parse(line.as_bytes()) {
            Ok(Event::Decision(d)) => d,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn host(name: &str) -> Option<ClientName> {
        Some(ClientName::Host(name.to_string()))
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn every_real_message_is_recognised_with_exact_counts() {
        let messages = real_messages();
        assert_eq!(messages.len(), 137);
        let events: Vec<Event> = messages
            .iter()
            .map(|m| parse(m.as_bytes()).unwrap_or_else(|e| panic!("{m:?}: {e}")))
            .collect();
        let decisions: Vec<&Decision> = events
            .iter()
            .filter_map(|e| match e {
                Event::Decision(d) => Some(d),
                _ => None,
            })
            .collect();
        let count = |f: &dyn Fn(&Decision) -> bool| decisions.iter().filter(|d| f(d)).count();
        let reason = |r: Reason| count(&|d| d.reason.as_ref() == Some(&r));

        assert_eq!(decisions.len(), 102);
        assert_eq!(count(&|d| d.action == Action::Greylist), 53);
        assert_eq!(count(&|d| d.action == Action::Pass), 49);
        assert_eq!(reason(Reason::New), 51);
        assert_eq!(reason(Reason::EarlyRetry { missing_s: 4 }), 2);
        assert_eq!(reason(Reason::TripletFound), 29);
        assert_eq!(count(&|d| d.delay_s.is_some()), 24);
        assert_eq!(reason(Reason::ClientWhitelist), 16);
        assert_eq!(reason(Reason::RecipientWhitelist), 2);
        assert_eq!(reason(Reason::ClientAwl), 2);
        assert_eq!(count(&|d| d.client_name == Some(ClientName::Unknown)), 14);
        assert_eq!(count(&|d| d.queue_id.is_some()), 4);
        assert_eq!(count(&|d| d.sender.is_none()), 4);
        assert_eq!(count(&|d| d.client_address.is_some_and(|a| a.is_ipv6())), 4);
        // Every genuine decision carries all of these.
        assert_eq!(
            count(&|d| d.reason.is_some()
                && d.client_name.is_some()
                && d.client_address.is_some()
                && d.recipient.is_some()),
            102
        );

        let auto_whitelisted = events
            .iter()
            .filter(|e| matches!(e, Event::AutoWhitelisted { .. }))
            .count();
        let maintenance = events.iter().filter(|e| **e == Event::Maintenance).count();
        let warnings = events.iter().filter(|e| **e == Event::Warning).count();
        assert_eq!(auto_whitelisted, 2);
        assert_eq!(maintenance, 27);
        assert_eq!(warnings, 6);
    }

    #[test]
    fn stdout_and_syslog_forms_of_a_decision_are_equal() {
        // The capture logs each request once through stdout (escaped) and once through syslog
        // (raw bytes); the non-ASCII sender is the one line whose text differs.
        let stdout = decision(
            "action=greylist, reason=new, client_name=smtputf8.example.de, client_address=198.51.100.81, sender=j%C3%BCrgen@ex%C3%A4mple.de, recipient=bob@example.org",
        );
        let syslog = decision(
            "action=greylist, reason=new, client_name=smtputf8.example.de, client_address=198.51.100.81, sender=jürgen@exämple.de, recipient=bob@example.org",
        );
        assert_eq!(stdout, syslog);
        assert_eq!(stdout.sender, some("jürgen@exämple.de"));
        assert!(
            real_messages()
                .iter()
                .any(|m| m.contains("sender=jürgen@exämple.de"))
        );
        assert!(
            real_messages()
                .iter()
                .any(|m| m.contains("sender=j%C3%BCrgen"))
        );
    }

    #[test]
    fn queue_id_line() {
        assert_eq!(
            decision(
                "4F2A91C0D3: action=pass, reason=triplet found, delay=6, client_name=relay.example.com, client_address=198.51.100.70, sender=eve@example.com, recipient=bob@example.org"
            ),
            Decision {
                queue_id: some("4F2A91C0D3"),
                action: Action::Pass,
                reason: Some(Reason::TripletFound),
                delay_s: Some(6),
                client_name: host("relay.example.com"),
                client_address: v4(198, 51, 100, 70),
                sender: some("eve@example.com"),
                recipient: some("bob@example.org"),
            }
        );
        // Postfix long queue IDs (enable_long_queue_ids) are mixed-case base 52.
        assert_eq!(
            decision("4Tq5WD1sLMz2Fyq: action=greylist, reason=new").queue_id,
            some("4Tq5WD1sLMz2Fyq")
        );
    }

    #[test]
    fn null_sender_has_no_sender_field() {
        assert_eq!(
            decision(
                "action=greylist, reason=new, client_name=mx.bounce.example, client_address=198.51.100.60, recipient=bob@example.org"
            ),
            Decision {
                queue_id: None,
                action: Action::Greylist,
                reason: Some(Reason::New),
                delay_s: None,
                client_name: host("mx.bounce.example"),
                client_address: v4(198, 51, 100, 60),
                sender: None,
                recipient: some("bob@example.org"),
            }
        );
    }

    #[test]
    fn first_pass_after_greylisting_has_delay() {
        let d = decision(
            "action=pass, reason=triplet found, delay=65, client_name=mx.awl.example, client_address=198.51.100.120, sender=sender0@awl.example, recipient=bob@example.org",
        );
        assert_eq!(d.delay_s, Some(65));
        assert_eq!(d.reason, Some(Reason::TripletFound));
        assert_eq!(d.sender, some("sender0@awl.example"));
        let repeat = decision(
            "action=pass, reason=triplet found, client_name=mail.example.net, client_address=198.51.100.20, sender=alice@example.net, recipient=bob@example.org",
        );
        assert_eq!(repeat.delay_s, None);
    }

    #[test]
    fn early_retry_carries_missing_seconds() {
        let d = decision(
            "action=greylist, reason=early-retry (4s missing), client_name=mail.example.net, client_address=198.51.100.20, sender=alice@example.net, recipient=bob@example.org",
        );
        assert_eq!(d.reason, Some(Reason::EarlyRetry { missing_s: 4 }));
        assert_eq!(d.action, Action::Greylist);
        assert_eq!(
            parse(b"action=greylist, reason=early-retry (12x missing)"),
            Err(Malformed::BadField("reason"))
        );
        assert_eq!(
            parse(b"action=greylist, reason=early-retry (99999999999999999999999s missing)"),
            Err(Malformed::BadField("reason"))
        );
    }

    #[test]
    fn percent_escapes_are_undone() {
        let d = decision(
            "action=greylist, reason=new, client_name=old.example.net, client_address=198.51.100.80, sender=user%%relay.example@example.net, recipient=bob@example.org",
        );
        assert_eq!(d.sender, some("user%relay.example@example.net"));
        // A literal "%C3" in an address is logged as "%%C3" and must not become a byte.
        assert_eq!(
            decision("action=pass, reason=new, sender=a%%C3b@x, recipient=%7E%41@y").sender,
            some("a%C3b@x")
        );
        assert_eq!(
            decision("action=pass, reason=new, recipient=%7e%41@y").recipient,
            some("~A@y")
        );
    }

    #[test]
    fn unknown_client_and_ipv6_address() {
        let d = decision(
            "action=pass, reason=client whitelist, client_name=unknown, client_address=192.0.2.10, sender=wl-ip-exact@sender.example, recipient=bob@example.org",
        );
        assert_eq!(d.client_name, Some(ClientName::Unknown));
        assert_eq!(d.client_address, v4(192, 0, 2, 10));
        assert_eq!(d.reason, Some(Reason::ClientWhitelist));
        let d = decision(
            "action=greylist, reason=new, client_name=mx6.example.com, client_address=2001:db8:1::26, sender=dave@example.com, recipient=bob@example.org",
        );
        assert_eq!(
            d.client_address,
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x26
            )))
        );
    }

    #[test]
    fn other_reasons_and_awl() {
        let d = decision(
            "action=pass, reason=client AWL, client_name=mx.awl.example, client_address=198.51.100.120, sender=sender5@awl.example, recipient=bob@example.org",
        );
        assert_eq!(d.reason, Some(Reason::ClientAwl));
        let d = decision(
            "action=pass, reason=recipient whitelist, client_name=mail.example.net, client_address=198.51.100.20, sender=alice@example.net, recipient=postmaster@example.org",
        );
        assert_eq!(d.reason, Some(Reason::RecipientWhitelist));
        assert_eq!(
            decision("action=pass, reason=some future reason").reason,
            Some(Reason::Other("some future reason".into()))
        );
        assert_eq!(
            decision("action=prepend, reason=new").action,
            Action::Other("prepend".into())
        );
    }

    #[test]
    fn auto_whitelisted_client() {
        assert_eq!(
            parse(b"whitelisted: mx.awl.example[198.51.100.120]"),
            Ok(Event::AutoWhitelisted {
                client_name: ClientName::Host("mx.awl.example".into()),
                client_address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 120)),
            })
        );
        assert_eq!(
            parse(b"whitelisted: unknown[2001:DB8:0:0:0:0:0:1]"),
            Ok(Event::AutoWhitelisted {
                client_name: ClientName::Unknown,
                client_address: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            })
        );
        assert_eq!(
            parse(b"whitelisted: 192.0.2.7"),
            Ok(Event::AutoWhitelisted {
                client_name: ClientName::Unknown,
                client_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            })
        );
        assert_eq!(
            parse(b"whitelisted: bad name[192.0.2.7]"),
            Err(Malformed::BadField("client_name"))
        );
        assert_eq!(
            parse(b"whitelisted: mx.example[192.0.2.]"),
            Err(Malformed::BadField("client_address"))
        );
        assert_eq!(
            parse(b"whitelisted: mx.example]"),
            Err(Malformed::BadField("client_address"))
        );
    }

    #[test]
    fn maintenance_and_warning_lines() {
        let maintenance: &[&[u8]] = &[
            b"2026/11/28-01:05:40 postgrey (type Net::Server::Multiplex) starting! pid(26136)",
            b"2026/11/28-01:05:49 Server closing!",
            b"Process Backgrounded",
            b"Binding to TCP port 10023 on host 127.0.0.1 with IPv4",
            b"Binding to UNIX socket file \"/var/spool/postfix/postgrey/socket\"",
            b"Resolved [localhost]:53619 to [127.0.0.1]:53619, IPv4",
            b"Setting gid to \"107 107\"",
            b"Setting uid to \"104\"",
            b"HUP received: reloading whitelists...",
            b"cleaning up old logs...",
            b"cleaning up old entries...",
            b"cleaning main database finished. before: 120, after: 80",
            b"cleaning clients database finished. before: 12, after: 9",
            b"rm /var/lib/postgrey/log.0000000001",
            b"correcting date for first seen in the future!",
            b"Couldn't unlink \"/var/run/postgrey.pid\" [Permission denied]",
            b"Exiting!",
            b"SIGPIPE received",
        ];
        for line in maintenance {
            assert_eq!(
                parse(line),
                Ok(Event::Maintenance),
                "{}",
                line.escape_ascii()
            );
        }
        let warnings: &[&[u8]] = &[
            b"attribute missing: sender",
            b"WARNING: attribute missing: sender\n",
            b"ignoring garbage: <this is not an attribute>",
            b"unrecognized request type: 'junk_request'",
            b"can't parse client_address from postfix: x",
            b"/etc/postgrey/whitelist_clients line 12: doesn't look like a hostname",
            b"FATAL: ERROR: can't create DB environment: Permission denied",
            b"ERROR: locked: /var/lib/postgrey/postgrey.lock",
            b"Use of uninitialized value in pattern match (m//) at /usr/sbin/postgrey line 341.",
            b"2026/11/28-01:05:49 Couldn't bind: Address already in use",
            b"  at line 12 in file /usr/share/perl5/Net/Server.pm",
        ];
        for line in warnings {
            assert_eq!(parse(line), Ok(Event::Warning), "{}", line.escape_ascii());
        }
    }

    #[test]
    fn client_name_validation() {
        let valid: &[(&[u8], &str)] = &[
            (b"Mail.Example.NET", "mail.example.net"),
            (b"mail.example.net.", "mail.example.net"),
            (b"_dmarc-relay.example", "_dmarc-relay.example"),
            (b"localhost", "localhost"),
            (b"123.example.com", "123.example.com"),
            (b"xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (raw, expected) in valid {
            assert_eq!(ClientName::from_log(raw), host(expected));
        }
        assert_eq!(ClientName::from_log(b"UNKNOWN"), Some(ClientName::Unknown));
        let long_label = [b'a'; 64];
        let long_name = b"abcdefghi.".repeat(26);
        let invalid: &[&[u8]] = &[
            b"",
            b".",
            b"mail example.net",
            b"mail.example.net\x1b[31m",
            b"mail\texample.net",
            b"mail..example.net",
            b".example.net",
            b"-mail.example.net",
            b"mail-.example.net",
            b"192.0.2.1",
            b"host.123",
            b"mail.ex\xc3\xa4mple.de",
            b"mail.example.net\0",
            b"mail%2Eexample.net",
            &long_label,
            &long_name,
        ];
        for raw in invalid {
            assert_eq!(ClientName::from_log(raw), None, "{}", raw.escape_ascii());
        }
        let mut max_name = b"a.".repeat(126);
        max_name.push(b'a');
        assert_eq!(max_name.len(), 253);
        assert!(ClientName::from_log(&max_name).is_some());
        max_name.extend_from_slice(b"a");
        assert!(ClientName::from_log(&max_name).is_none());
    }

    #[test]
    fn hostile_client_fields_are_malformed() {
        let with = |name: &str, address: &str| {
            format!(
                "action=greylist, reason=new, client_name={name}, client_address={address}, sender=a@b, recipient=c@d"
            )
        };
        let cases = [
            (with("evil host.example", "192.0.2.1"), "client_name"),
            (with("evil\x07.example", "192.0.2.1"), "client_name"),
            (with("evil.example\r", "192.0.2.1"), "client_name"),
            (with("192.0.2.1", "192.0.2.1"), "client_name"),
            (with("mx.example", "192.0.2.256"), "client_address"),
            (with("mx.example", "192.0.2"), "client_address"),
            (with("mx.example", "ipv6:2001:db8::1"), "client_address"),
            (with("mx.example", "[192.0.2.1]"), "client_address"),
            (with("mx.example", "unknown"), "client_address"),
            (with("mx.example", " 192.0.2.1"), "client_address"),
        ];
        for (line, field) in cases {
            assert_eq!(
                parse(line.as_bytes()),
                Err(Malformed::BadField(field)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn truncated_lines() {
        let full = "action=greylist, reason=new, client_name=mail.example.net, client_address=198.51.100.20, sender=alice@example.net, recipient=bob@example.org";
        let cut = |at: &str| &full[..full.find(at).expect("in line") + at.len()];
        assert_eq!(
            parse(cut("client_address=19").as_bytes()),
            Err(Malformed::BadField("client_address"))
        );
        assert_eq!(
            parse(cut("client_addr").as_bytes()),
            Err(Malformed::UnexpectedText("client_name"))
        );
        assert_eq!(
            parse(cut("client_address=").as_bytes()),
            Err(Malformed::BadField("client_address"))
        );
        assert_eq!(
            parse(cut("reason=new,").as_bytes()),
            Err(Malformed::BadField("reason"))
        );
        assert_eq!(
            parse(cut("reason=new, ").as_bytes()),
            Err(Malformed::UnexpectedText("reason"))
        );
        assert_eq!(parse(b"action="), Err(Malformed::BadField("action")));
        assert_eq!(parse(b"4F2A91C0D3: "), Err(Malformed::Unrecognized));
        // Every cut of every real line parses or fails cleanly, never panics.
        for message in real_messages() {
            for end in 0..=message.len() {
                let _ = parse(&message.as_bytes()[..end]);
            }
        }
    }

    #[test]
    fn separators_inside_the_sender() {
        // Postfix passes a quoted local part unquoted: "a, b"@x arrives as `a, b@x`.
        let d = decision(
            "action=greylist, reason=new, client_name=mx.example, client_address=192.0.2.1, sender=a, recipient=forged@x, recipient=bob@example.org",
        );
        assert_eq!(d.sender, some("a, recipient=forged@x"));
        assert_eq!(d.recipient, some("bob@example.org"));
        let d = decision("action=greylist, reason=new, sender=x, y, z@example.net");
        assert_eq!(d.sender, some("x, y, z@example.net"));
        assert_eq!(d.recipient, None);
    }

    #[test]
    fn fields_out_of_order_or_repeated() {
        assert_eq!(
            parse(b"action=pass, client_name=mx.example, reason=new"),
            Err(Malformed::UnexpectedText("client_name"))
        );
        assert_eq!(
            parse(b"action=pass, reason=new, reason=new"),
            Err(Malformed::UnexpectedText("reason"))
        );
        assert_eq!(
            parse(b"action=pass, reason=new, colour=blue"),
            Err(Malformed::UnexpectedText("reason"))
        );
        assert_eq!(
            parse(b"action=pass,reason=new"),
            Err(Malformed::BadField("action"))
        );
        assert_eq!(
            parse(b"action=pass, delay=-5"),
            Err(Malformed::BadField("delay"))
        );
        assert_eq!(
            parse(b"action=pass, delay=18446744073709551616"),
            Err(Malformed::BadField("delay"))
        );
        assert_eq!(
            parse(b"action=Pass!, reason=new"),
            Err(Malformed::BadField("action"))
        );
    }

    #[test]
    fn bad_queue_ids() {
        assert_eq!(
            parse(b"4F2A-91C0: action=pass, reason=new"),
            Err(Malformed::BadField("queue_id"))
        );
        let long = format!("{}: action=pass, reason=new", "A".repeat(33));
        assert_eq!(parse(long.as_bytes()), Err(Malformed::BadField("queue_id")));
        assert_eq!(
            parse(b"Chrooting to /x: action=pass"),
            Ok(Event::Maintenance)
        );
    }

    #[test]
    fn hostile_sender_and_recipient_values() {
        let sender = |value: &[u8]| {
            let mut line = b"action=greylist, reason=new, client_name=mx.example, client_address=192.0.2.1, sender=".to_vec();
            line.extend_from_slice(value);
            line.extend_from_slice(b", recipient=bob@example.org");
            parse(&line)
        };
        let bad = Err(Malformed::BadField("sender"));
        assert_eq!(sender(b"a\nb@x"), bad);
        assert_eq!(sender(b"a\rb@x"), bad);
        assert_eq!(sender(b"a\0b@x"), bad);
        assert_eq!(sender(b"a%0Ab@x"), bad);
        assert_eq!(sender(b"a%0db@x"), bad);
        assert_eq!(sender(b"a%00b@x"), bad);
        assert_eq!(sender(b"50%@x"), bad);
        assert_eq!(sender(b"a%ZZ@x"), bad);
        assert_eq!(sender(b"a%4"), bad);
        assert_eq!(sender(b""), bad);
        // Invalid UTF-8, raw or escaped, becomes U+FFFD; other control characters are kept
        // for the renderers to escape.
        let lossy = |result: Result<Event, Malformed>| match result {
            Ok(Event::Decision(d)) => d.sender,
            other => panic!("{other:?}"),
        };
        assert_eq!(lossy(sender(b"j\xfcrgen@x")), some("j\u{fffd}rgen@x"));
        assert_eq!(lossy(sender(b"j%FCrgen@x")), some("j\u{fffd}rgen@x"));
        assert_eq!(lossy(sender(b"tab\there\x1b@x")), some("tab\there\x1b@x"));
        // postgrey keeps at most 512 bytes of an attribute.
        assert_eq!(lossy(sender(&[b'a'; 512])), Some("a".repeat(512)));
        assert_eq!(sender(&[b'a'; 513]), bad);
        assert_eq!(sender(&b"%%".repeat(256)).map(|_| ()), Ok(()));
    }

    #[test]
    fn a_lines_fields_are_its_text_or_checked_on_their_own() {
        let utf8 = "sender=jürgen@x, recipient=bob@example.org".as_bytes();
        let view = Utf8View::of(utf8);
        assert_eq!(view.str_of(&utf8[7..16]), Some("jürgen@x"));
        // Not at a character boundary: checked on its own, and not text.
        assert_eq!(view.str_of(&utf8[7..9]), None);
        let elsewhere = b"bob@example.org".to_vec();
        assert_eq!(view.str_of(&elsewhere), Some("bob@example.org"));
        let broken = b"sender=j\xfcrgen@x, recipient=bob@example.org";
        let view = Utf8View::of(broken);
        assert_eq!(view.str_of(&broken[..9]), None);
        assert_eq!(view.str_of(&broken[..8]), Some("sender=j"));
        assert_eq!(view.str_of(&broken[27..]), Some("bob@example.org"));
    }

    #[test]
    fn line_breaks_and_empty_lines() {
        let line = "action=greylist, reason=new, client_name=mx.example, client_address=192.0.2.1, recipient=bob@example.org";
        assert_eq!(decision(&format!("{line}\n")), decision(line));
        assert_eq!(decision(&format!("{line}\r\n")), decision(line));
        assert_eq!(
            parse(b"action=greylist, reason=new\n, client_name=mx.example"),
            Err(Malformed::BadField("reason"))
        );
        assert_eq!(
            parse(b"action=greylist, reason=new, client_name=mx.example, client_address=192.0.2.1\r, recipient=b@x"),
            Err(Malformed::BadField("client_address"))
        );
        assert_eq!(
            parse(b"action=greylist, reason=new, recipient=bob@example.org\nwhitelisted: x"),
            Err(Malformed::BadField("recipient"))
        );
        assert_eq!(parse(b""), Err(Malformed::Unrecognized));
        assert_eq!(parse(b"\n"), Err(Malformed::Unrecognized));
        assert_eq!(parse(b"\0\0\0"), Err(Malformed::Unrecognized));
        assert_eq!(parse(b"\xff\xfe\xfd"), Err(Malformed::Unrecognized));
        assert_eq!(
            parse(b"postfix/smtpd[1]: connect from x"),
            Err(Malformed::Unrecognized)
        );
    }

    #[test]
    fn hundred_kilobyte_lines() {
        let big = vec![b'a'; 100 * 1024];
        assert_eq!(parse(&big), Err(Malformed::Unrecognized));
        let mut action = b"action=".to_vec();
        action.extend_from_slice(&big);
        assert_eq!(parse(&action), Err(Malformed::BadField("action")));
        let mut sender = b"action=greylist, reason=new, sender=".to_vec();
        sender.extend_from_slice(&big);
        assert_eq!(parse(&sender), Err(Malformed::BadField("sender")));
        let mut name = b"action=greylist, reason=new, client_name=".to_vec();
        name.extend_from_slice(&big);
        assert_eq!(parse(&name), Err(Malformed::BadField("client_name")));
        let separators = format!(
            "action=greylist, reason=new, sender={}",
            ", ".repeat(50_000)
        );
        assert_eq!(
            parse(separators.as_bytes()),
            Err(Malformed::BadField("sender"))
        );
        let mut binary: Vec<u8> = (0..=255u8).cycle().take(100 * 1024).collect();
        assert_eq!(parse(&binary), Err(Malformed::Unrecognized));
        binary.splice(0..0, b"whitelisted: ".iter().copied());
        assert_eq!(parse(&binary), Err(Malformed::BadField("client_address")));
    }

    #[test]
    fn errors_never_carry_line_text() {
        let secret = b"action=greylist, reason=new, client_name=SECRET\x1b[2J, client_address=1";
        let error = parse(secret).expect_err("bad client_name");
        assert_eq!(error.to_string(), "bad field client_name");
    }
}
