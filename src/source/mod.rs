//! Where postgrey's log lines come from: the systemd journal or classic syslog text files.
//! Every source yields [`Entry`] values in time order (per file) and nothing else.

pub mod journal;
pub mod journal_files;
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

/// One log message attributed to postgrey.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Wall-clock time, microseconds since the Unix epoch (UTC).
    pub realtime_us: i64,
    /// The message after the syslog prefix; raw bytes, maybe not UTF-8.
    pub message: Vec<u8>,
    pub origin: Origin,
    /// The host that logged it (`_HOSTNAME` or the syslog host field), when known.
    pub host: Option<String>,
    /// Journal cursor, for sources that have one.
    pub cursor: Option<String>,
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
