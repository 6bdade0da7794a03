//! Journal export format (systemd's `JOURNAL_EXPORT_FORMATS`), written from Rust values.
//!
//! An entry is a block of `KEY=value\n` lines ended by an empty line. A value that contains a
//! newline, another control byte or invalid UTF-8 is written in the binary form
//! `KEY\n<little-endian u64 length><bytes>\n`, so any byte string survives the round trip.
//! `systemd-journal-remote` takes the entry's time from `__REALTIME_TIMESTAMP`, its boot from
//! `_BOOT_ID` and `__MONOTONIC_TIMESTAMP`; without them it reuses the previous entry's values
//! (or zero), so every [`ExportEntry`] writes all three.

use std::str::FromStr;

/// Boot ID of every entry unless [`ExportEntry::boot_id`] sets another.
pub const DEFAULT_BOOT_ID: &str = "5e4a1d0c7b3f4e2a9d8c6b5a4f3e2d1c";

/// `_HOSTNAME` of the presets.
pub const DEFAULT_HOSTNAME: &str = "mx1";

/// `_PID` of the postgrey presets.
pub const POSTGREY_PID: u32 = 4242;

/// One journal entry to be written in export format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportEntry {
    realtime_us: u64,
    monotonic_us: u64,
    boot_id: String,
    fields: Vec<(String, Vec<u8>)>,
}

impl ExportEntry {
    /// An entry without fields at `realtime`, an RFC 3339 instant such as
    /// `2026-11-20T10:00:00Z` or `2026-11-20T10:00:00+01:00`.
    pub fn at(realtime: &str) -> Self {
        let ts = jiff::Timestamp::from_str(realtime)
            .unwrap_or_else(|e| panic!("bad RFC 3339 instant {realtime:?}: {e}"));
        let us = u64::try_from(ts.as_microsecond())
            .unwrap_or_else(|_| panic!("{realtime:?} is before 1970"));
        Self::at_us(us)
    }

    /// An entry without fields at `realtime_us` microseconds since the Unix epoch. The
    /// monotonic clock is the realtime one (a boot at the epoch), so entries of the same boot
    /// sort the same way by either clock, also across files.
    pub fn at_us(realtime_us: u64) -> Self {
        ExportEntry {
            realtime_us,
            monotonic_us: realtime_us,
            boot_id: DEFAULT_BOOT_ID.to_owned(),
            fields: Vec::new(),
        }
    }

    /// A line written by postgrey running as `postgrey.service` (Debian's unit: foreground,
    /// stdout to the journal), as journald records it: `_SYSTEMD_UNIT=postgrey.service`,
    /// `_UID=0` (PID 1 connects the stream before postgrey drops privileges),
    /// `_TRANSPORT=stdout`, `SYSLOG_IDENTIFIER=postgrey`, `PRIORITY=6`, `SYSLOG_FACILITY=3`,
    /// `_PID=`[`POSTGREY_PID`], `_HOSTNAME=`[`DEFAULT_HOSTNAME`].
    pub fn postgrey(realtime: &str, message: impl AsRef<[u8]>) -> Self {
        Self::at(realtime)
            .set("SYSLOG_FACILITY", "3")
            .set("PRIORITY", "6")
            .set("_UID", "0")
            .set("_GID", "0")
            .set("_HOSTNAME", DEFAULT_HOSTNAME)
            .set("SYSLOG_IDENTIFIER", "postgrey")
            .set("_EXE", "/usr/bin/perl")
            .set("_TRANSPORT", "stdout")
            .set("_COMM", "postgrey --inet")
            .set("_PID", POSTGREY_PID.to_string())
            .set("_SYSTEMD_UNIT", "postgrey.service")
            .set("MESSAGE", message)
    }

    /// A line that claims to be postgrey's but was sent by `logger -t postgrey …` as user `uid`
    /// (a forgery): `_TRANSPORT=syslog`, `SYSLOG_IDENTIFIER=postgrey`, `_UID=uid`, no
    /// `_SYSTEMD_UNIT`.
    pub fn forged(realtime: &str, uid: u32, message: impl AsRef<[u8]>) -> Self {
        Self::at(realtime)
            .set("PRIORITY", "5")
            .set("SYSLOG_FACILITY", "1")
            .set("_UID", uid.to_string())
            .set("_GID", uid.to_string())
            .set("_HOSTNAME", DEFAULT_HOSTNAME)
            .set("_TRANSPORT", "syslog")
            .set("SYSLOG_IDENTIFIER", "postgrey")
            .set("_COMM", "logger")
            .set("_EXE", "/usr/bin/logger")
            .set("_PID", "31337")
            .set("MESSAGE", message)
    }

    /// Sets `field` to `value`, replacing every earlier value of it.
    pub fn set(mut self, field: &str, value: impl AsRef<[u8]>) -> Self {
        self.fields.retain(|(name, _)| name != field);
        self.fields
            .push((field.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Adds one more value of `field` (journal fields may repeat).
    pub fn add(mut self, field: &str, value: impl AsRef<[u8]>) -> Self {
        self.fields
            .push((field.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Removes `field`.
    pub fn without(mut self, field: &str) -> Self {
        self.fields.retain(|(name, _)| name != field);
        self
    }

    /// Uses another boot ID (32 lowercase hex digits).
    pub fn boot_id(mut self, boot_id: &str) -> Self {
        self.boot_id = boot_id.to_owned();
        self
    }

    /// Overrides the monotonic timestamp.
    pub fn monotonic_us(mut self, monotonic_us: u64) -> Self {
        self.monotonic_us = monotonic_us;
        self
    }

    /// The entry's `__REALTIME_TIMESTAMP`.
    pub fn realtime_us(&self) -> u64 {
        self.realtime_us
    }

    /// The entry in export format, ending with the empty line that separates entries.
    pub fn to_export(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(format!("__REALTIME_TIMESTAMP={}\n", self.realtime_us).as_bytes());
        out.extend_from_slice(format!("__MONOTONIC_TIMESTAMP={}\n", self.monotonic_us).as_bytes());
        out.extend_from_slice(format!("_BOOT_ID={}\n", self.boot_id).as_bytes());
        for (name, value) in &self.fields {
            out.extend_from_slice(name.as_bytes());
            if needs_binary_form(value) {
                out.push(b'\n');
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
                out.extend_from_slice(value);
            } else {
                out.push(b'=');
                out.extend_from_slice(value);
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        out
    }
}

fn needs_binary_form(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_err()
        || value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f)
}

/// All entries in export format, in order.
pub fn export_text(entries: &[ExportEntry]) -> Vec<u8> {
    entries.iter().flat_map(ExportEntry::to_export).collect()
}
