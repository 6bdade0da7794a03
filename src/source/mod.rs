//! Where postgrey's log lines come from: the systemd journal or classic syslog text files.
//! Every source yields [`Entry`] values in time order (per file) and nothing else.

pub mod journal;
pub mod text;

/// Whether journald vouches that an entry was written by postgrey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `_SYSTEMD_UNIT` or `_UID` (set by journald from kernel credentials) say postgrey.
    Trusted,
    /// Claims to be postgrey (`SYSLOG_IDENTIFIER`) but journald says otherwise: a forgery
    /// by an ordinary user is possible, so it never counts.
    Untrusted,
    /// Text files carry no credentials; the postmaster chose to trust them.
    Unknown,
}

/// One log message attributed to postgrey, borrowed from the source's buffers for the time of
/// one callback: reading allocates nothing per entry.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Wall-clock time, microseconds since the Unix epoch (UTC).
    pub realtime_us: i64,
    /// The message after the syslog prefix; raw bytes, maybe not UTF-8.
    pub message: &'a [u8],
    pub origin: Origin,
    /// The host that logged it: the syslog host field of a text line; `_HOSTNAME` of a journal
    /// entry only when read with details (see `journal::read_with_details`).
    pub host: Option<&'a [u8]>,
    /// Journal cursor, only when read with details: it costs a lookup per entry, and a pass
    /// needs only its last one.
    pub cursor: Option<&'a str>,
}

impl Entry<'_> {
    /// A copy that outlives the callback.
    pub fn to_owned(&self) -> OwnedEntry {
        OwnedEntry {
            realtime_us: self.realtime_us,
            message: self.message.to_vec(),
            origin: self.origin,
            host: self
                .host
                .map(|host| String::from_utf8_lossy(host).into_owned()),
            cursor: self.cursor.map(str::to_owned),
        }
    }
}

/// An [`Entry`] kept beyond its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEntry {
    pub realtime_us: i64,
    pub message: Vec<u8>,
    pub origin: Origin,
    pub host: Option<String>,
    pub cursor: Option<String>,
}

impl OwnedEntry {
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            realtime_us: self.realtime_us,
            message: &self.message,
            origin: self.origin,
            host: self.host.as_deref().map(str::as_bytes),
            cursor: self.cursor.as_deref(),
        }
    }
}

/// A half-open time window `[since, until)` in microseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
}

impl Window {
    pub fn contains(&self, realtime_us: i64) -> bool {
        self.since_us.is_none_or(|s| realtime_us >= s)
            && self.until_us.is_none_or(|u| realtime_us < u)
    }
}
