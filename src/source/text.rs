//! Reading postgrey's lines from classic syslog text: `/var/log/mail.log` and its rotated
//! `.gz` siblings, or `journalctl -o short…` output on standard input.
//!
//! A line is `STAMP HOST TAG[PID]: MESSAGE` (or `TAG: MESSAGE`). Stamps come in two families:
//! - traditional BSD syslog, `Nov 27 10:00:01` (`Nov  7` space-padded, or `Nov 07` as journalctl
//!   prints it, optionally with `.123456` as `journalctl -o short-precise` prints it): local time
//!   without a year. The year is `--year`, else inferred from the file's modification time (now
//!   for standard input): a stamp whose month is later than that month was written the year
//!   before, which carries a log across New Year correctly;
//! - absolute: RFC 3339 (rsyslog's high-precision format, `journalctl -o short-iso…`) and seconds
//!   since the epoch (`journalctl -o short-unix`).
//!
//! A mail log is mostly other programs' lines, so a line is first searched for the identifier as
//! plain bytes and only parsed when it is there. Lines are bytes, maybe not UTF-8, and are read
//! with a bounded buffer: a line longer than [`MAX_LINE_BYTES`] is cut there, so a file without
//! newlines cannot exhaust memory. Gzip is recognised by its magic bytes, also on standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::bufread::MultiGzDecoder;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use memchr::memmem;

use super::{Consumer, Entry, Origin, PrepareOn, Window};

/// Longest line kept; the rest of a longer line is dropped (and counted).
pub const MAX_LINE_BYTES: usize = 256 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes searched at a time; more than [`MAX_LINE_BYTES`], so that a block without a newline
/// holds a line to cut.
const BLOCK_BYTES: usize = 2 * MAX_LINE_BYTES;
/// Bytes read at a time: searched right after, while they are in the core's cache (a bigger
/// read made reading and searching a mail log an eighth slower).
const READ_CHUNK_BYTES: usize = 128 * 1024;

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSpec {
    /// Files to read in this order; `-` is standard input.
    pub paths: Vec<PathBuf>,
    /// The program name in the syslog tag (`postgrey` in `postgrey[123]:`).
    pub identifier: String,
    /// Year of traditional stamps, instead of inferring it per file.
    pub year: Option<i16>,
}

/// What a [`read`] saw, over all files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextSummary {
    /// Lines read.
    pub lines: u64,
    /// Lines of the identifier's program handed on.
    pub entries: u64,
    /// Lines of other programs, and lines that are not syslog lines at all (such as
    /// journalctl's `-- Boot … --` and `-- No entries --`).
    pub other_programs: u64,
    /// Lines of the identifier's program whose stamp is not a valid time.
    pub bad_stamps: u64,
    /// Lines of the identifier's program outside the time window.
    pub outside_window: u64,
    /// Lines longer than [`MAX_LINE_BYTES`], cut there (and then treated like any other).
    pub truncated_lines: u64,
}

impl TextSummary {
    fn add(&mut self, other: &TextSummary) {
        self.lines += other.lines;
        self.entries += other.entries;
        self.other_programs += other.other_programs;
        self.bad_stamps += other.bad_stamps;
        self.outside_window += other.outside_window;
        self.truncated_lines += other.truncated_lines;
    }
}

/// Reads every file of `spec` and hands each line of its program within `window` to
/// `on_entry`, as an [`Origin::Unknown`] entry. Several files are read at once and merged in
/// time order (see [`super::merged_in_time`]): the logs of several MX hosts, or a log and its
/// rotated siblings in any order. Traditional stamps are local time of the system's time zone
/// (`TZ` is honoured). An error from `on_entry` stops reading and is returned.
pub fn read<P: Send>(
    spec: &TextSpec,
    window: Window,
    mut consumer: Consumer<'_, P>,
) -> Result<TextSummary> {
    let tz = TimeZone::system();
    if spec.paths.len() > 1 {
        // Each file is read on a thread of its own already.
        return read_in_zone(spec, window, &tz, &mut consumer.inline());
    }
    // Inflating keeps the reading thread busy; searching a plain log leaves it time to parse.
    let prepare_on = match spec.paths.first() {
        Some(path) if is_gzip_file(path) => PrepareOn::Consumer,
        _ => PrepareOn::Reader,
    };
    super::pipelined(
        move |on_entry| read_in_zone(spec, window, &tz, on_entry),
        consumer,
        prepare_on,
    )
}

/// Whether `path` is a regular file that starts with gzip's magic bytes. Only a hint: a file
/// that cannot be read here fails with its error when it is opened to be read. A FIFO or
/// standard input is never opened here: what was read to peek would be gone.
fn is_gzip_file(path: &Path) -> bool {
    if path.as_os_str() == "-" || !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0; GZIP_MAGIC.len()];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .is_ok_and(|()| head == GZIP_MAGIC)
}

/// [`read`], with traditional stamps in time zone `tz`.
pub fn read_in_zone(
    spec: &TextSpec,
    window: Window,
    tz: &TimeZone,
    on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
) -> Result<TextSummary> {
    let matcher = LineMatcher::new(&spec.identifier);
    let matcher = &matcher;
    let read_file = move |path: &Path, on_entry: &mut super::OnEntry<'_>| {
        let mut summary = TextSummary::default();
        let input = Input::open(path)?;
        let year = match spec.year {
            Some(year) => YearRule::Fixed(year),
            None => YearRule::infer_from(input.reference, tz),
        };
        let file = FileReader {
            matcher,
            year,
            tz,
            window,
        };
        file.read(input, &mut summary, on_entry)?;
        Ok(summary)
    };
    let summaries = match spec.paths.as_slice() {
        [path] => vec![read_file(path, on_entry)?],
        paths => {
            let reads = paths
                .iter()
                .map(|path| {
                    Box::new(move |on_entry: &mut super::OnEntry<'_>| read_file(path, on_entry))
                        as super::merge::Read<'_, TextSummary>
                })
                .collect();
            super::merged_in_time(reads, on_entry)?
        }
    };
    let mut summary = TextSummary::default();
    for one in &summaries {
        summary.add(one);
    }
    Ok(summary)
}

/// One opened file or standard input, decompressed.
struct Input {
    name: String,
    reader: Box<dyn BufRead>,
    /// When the file was last written: the end of the time its lines can be from.
    reference: Timestamp,
}

impl Input {
    fn open(path: &Path) -> Result<Input> {
        if path.as_os_str() == "-" {
            let name = "standard input".to_string();
            let reader = decompressing(Box::new(io::stdin().lock()))
                .with_context(|| format!("reading {name}"))?;
            return Ok(Input {
                name,
                reader,
                reference: Timestamp::now(),
            });
        }
        let name = path.display().to_string();
        let file = File::open(path).with_context(|| format!("opening {name}"))?;
        let metadata = file.metadata().with_context(|| format!("opening {name}"))?;
        if metadata.is_dir() {
            anyhow::bail!("opening {name}: is a directory");
        }
        // A file system without modification times leaves "now", the best guess there is.
        let reference = metadata
            .modified()
            .ok()
            .and_then(|modified| Timestamp::try_from(modified).ok())
            .unwrap_or_else(Timestamp::now);
        let raw = Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file));
        let reader = decompressing(raw).with_context(|| format!("reading {name}"))?;
        Ok(Input {
            name,
            reader,
            reference,
        })
    }
}

/// `raw`, gunzipped when it starts with gzip's magic bytes.
fn decompressing(mut raw: Box<dyn BufRead>) -> io::Result<Box<dyn BufRead>> {
    let mut head = Vec::with_capacity(GZIP_MAGIC.len());
    while head.len() < GZIP_MAGIC.len() {
        let available = match raw.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            break;
        }
        let take = available.len().min(GZIP_MAGIC.len() - head.len());
        head.extend_from_slice(&available[..take]);
        raw.consume(take);
    }
    let is_gzip = head == GZIP_MAGIC;
    let stream = io::Cursor::new(head).chain(raw);
    if is_gzip {
        let decoder = MultiGzDecoder::new(stream);
        Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER_BYTES,
            decoder,
        )))
    } else {
        Ok(Box::new(stream))
    }
}

/// Which lines belong to the identifier's program.
struct LineMatcher {
    identifier: Vec<u8>,
    finder: memmem::Finder<'static>,
}

impl LineMatcher {
    fn new(identifier: &str) -> LineMatcher {
        LineMatcher {
            identifier: identifier.as_bytes().to_vec(),
            finder: memmem::Finder::new(identifier.as_bytes()).into_owned(),
        }
    }

    /// The parts of `line` when it is the program's line; cheap for other lines.
    #[cfg(test)]
    fn matching<'a>(&self, line: &'a [u8]) -> Option<SyslogLine<'a>> {
        self.finder.find(line)?;
        self.parts_of(line)
    }

    /// [`LineMatcher::matching`] for a line the identifier was found in already.
    fn parts_of<'a>(&self, line: &'a [u8]) -> Option<SyslogLine<'a>> {
        let parts = SyslogLine::split(line)?;
        (program_of(parts.tag) == self.identifier.as_slice()).then_some(parts)
    }
}

/// How the year of a traditional stamp is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YearRule {
    Fixed(i16),
    /// The file was last written in this year and month (local time).
    Before {
        year: i16,
        month: i8,
    },
}

impl YearRule {
    fn infer_from(reference: Timestamp, tz: &TimeZone) -> YearRule {
        let local = reference.to_zoned_datetime(tz.clone());
        YearRule::Before {
            year: local.year(),
            month: local.month(),
        }
    }

    fn year_of(self, month: i8) -> i16 {
        match self {
            YearRule::Fixed(year) => year,
            // A log does not reach into the future: a later month is last year's.
            YearRule::Before { year, month: last } if month > last => year - 1,
            YearRule::Before { year, .. } => year,
        }
    }
}

struct FileReader<'a> {
    matcher: &'a LineMatcher,
    year: YearRule,
    tz: &'a TimeZone,
    window: Window,
}

/// Lines seen by [`scan_lines`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LineCounts {
    lines: u64,
    /// Lines longer than the cap, cut there.
    truncated: u64,
}

/// Reads `reader` into a block of `block_bytes` and hands `on_line` each line (without its
/// newline, cut at `cap` bytes) that `finder` finds in: the needle is searched for in the whole
/// lines read so far, and other lines are only counted, so that a mail log costs about what
/// `grep -c` does.
/// A line longer than the block is cut and the rest of it skipped; memory stays one block.
/// `block_bytes` must be more than `cap`.
fn scan_lines(
    reader: &mut dyn Read,
    finder: &memmem::Finder<'_>,
    cap: usize,
    block_bytes: usize,
    counts: &mut LineCounts,
    on_line: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0; block_bytes];
    let mut filled = 0;
    let mut eof = false;
    // Inside the rest of a line longer than the block, already counted and cut.
    let mut skipping = false;
    loop {
        if !eof {
            // A chunk at a time, its lines searched while they are still in the cache.
            let end = (filled + READ_CHUNK_BYTES).min(buf.len());
            match reader.read(&mut buf[filled..end]) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error.into()),
            }
        }
        if eof && filled == 0 {
            return Ok(());
        }
        let complete = if eof {
            filled
        } else {
            memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |at| at + 1)
        };
        if complete == 0 {
            if filled < buf.len() {
                // The line goes on in the next chunk.
                continue;
            }
            // A full block without a newline: a line longer than the cap.
            if !skipping {
                counts.truncated += 1;
                scan_block(&buf[..cap], finder, cap, counts, on_line)?;
                skipping = true;
            }
            filled = 0;
            continue;
        }
        let mut block = &buf[..complete];
        if skipping {
            let rest_end = memchr::memchr(b'\n', block).map_or(block.len(), |at| at + 1);
            block = &block[rest_end..];
            skipping = false;
        }
        scan_block(block, finder, cap, counts, on_line)?;
        buf.copy_within(complete..filled, 0);
        filled -= complete;
    }
}

/// Counts the lines of `block` (whole lines; the last one may lack its newline) and hands on
/// those `finder` finds in.
fn scan_block(
    block: &[u8],
    finder: &memmem::Finder<'_>,
    cap: usize,
    counts: &mut LineCounts,
    on_line: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    count_lines(block, cap, counts);
    let mut from = 0;
    while from < block.len() {
        let Some(found) = finder.find(&block[from..]) else {
            break;
        };
        let at = from + found;
        let start = memchr::memrchr(b'\n', &block[..at]).map_or(0, |nl| nl + 1);
        let end = memchr::memchr(b'\n', &block[at..]).map_or(block.len(), |nl| at + nl);
        on_line(&block[start..end.min(start + cap)])?;
        from = end + 1;
    }
    Ok(())
}

/// Counts the lines of `block` and those longer than `cap`.
fn count_lines(block: &[u8], cap: usize, counts: &mut LineCounts) {
    let newlines = memchr::memchr_iter(b'\n', block).count();
    let unterminated = block.last().is_some_and(|&last| last != b'\n');
    counts.lines += (newlines + usize::from(unterminated)) as u64;
    // A line longer than `cap` holds a whole stretch of `cap / 2` bytes of any fixed grid: when
    // every stretch has a newline, no line is that long, and the lines need no walk one by
    // one (which cost a mail log more than counting them).
    let stretch = (cap / 2).max(1);
    if block
        .chunks(stretch)
        .all(|bytes| memchr::memchr(b'\n', bytes).is_some())
    {
        return;
    }
    let mut line_start = 0;
    for newline in memchr::memchr_iter(b'\n', block) {
        if newline - line_start > cap {
            counts.truncated += 1;
        }
        line_start = newline + 1;
    }
    if block.len() - line_start > cap {
        counts.truncated += 1;
    }
}

impl FileReader<'_> {
    fn read(
        &self,
        mut input: Input,
        summary: &mut TextSummary,
        on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut counts = LineCounts::default();
        let mut ours = 0;
        let mut on_line = |line: &[u8]| {
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            // `scan_lines` hands on only lines the identifier is in.
            match self.matcher.parts_of(text) {
                Some(parts) => {
                    ours += 1;
                    self.hand_on(parts, summary, on_entry)
                }
                None => Ok(()),
            }
        };
        let scanned = scan_lines(
            input.reader.as_mut(),
            &self.matcher.finder,
            MAX_LINE_BYTES,
            BLOCK_BYTES,
            &mut counts,
            &mut on_line,
        );
        summary.lines += counts.lines;
        summary.truncated_lines += counts.truncated;
        summary.other_programs += counts.lines - ours;
        scanned.with_context(|| format!("reading {} (line {})", input.name, counts.lines + 1))
    }

    fn hand_on(
        &self,
        parts: SyslogLine<'_>,
        summary: &mut TextSummary,
        on_entry: &mut dyn FnMut(Entry<'_>) -> Result<()>,
    ) -> Result<()> {
        let Some(realtime_us) = parse_stamp(parts.stamp, self.year, self.tz) else {
            summary.bad_stamps += 1;
            return Ok(());
        };
        if !self.window.contains(realtime_us) {
            summary.outside_window += 1;
            return Ok(());
        }
        summary.entries += 1;
        on_entry(Entry {
            realtime_us,
            message: parts.message,
            origin: Origin::Unknown,
            host: Some(parts.host),
            cursor: None,
        })
    }
}

/// A syslog line cut into its parts, not yet validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SyslogLine<'a> {
    stamp: &'a [u8],
    host: &'a [u8],
    /// `postgrey[123]` or `postgrey`.
    tag: &'a [u8],
    message: &'a [u8],
}

impl<'a> SyslogLine<'a> {
    fn split(line: &'a [u8]) -> Option<SyslogLine<'a>> {
        let stamp_end = match line.first()? {
            // RFC 3339 or seconds since the epoch: one token.
            b'0'..=b'9' => memchr::memchr(b' ', line)?,
            // `Mmm dd hh:mm:ss[.ffffff]`: the day may be space-padded.
            b'A'..=b'Z' if line.get(3) == Some(&b' ') && line.get(6) == Some(&b' ') => {
                7 + memchr::memchr(b' ', line.get(7..)?)?
            }
            _ => return None,
        };
        let stamp = &line[..stamp_end];
        let rest = &line[stamp_end + 1..];
        let host_end = memchr::memchr(b' ', rest)?;
        let host = &rest[..host_end];
        let rest = &rest[host_end + 1..];
        let colon = memchr::memchr(b':', rest)?;
        let tag = &rest[..colon];
        if host.is_empty() || tag.is_empty() || tag.contains(&b' ') {
            return None;
        }
        let message = &rest[colon + 1..];
        let message = message.strip_prefix(b" ").unwrap_or(message);
        Some(SyslogLine {
            stamp,
            host,
            tag,
            message,
        })
    }
}

/// The program name of a syslog tag: `postgrey[123]` → `postgrey`.
fn program_of(tag: &[u8]) -> &[u8] {
    match (tag.last(), memchr::memchr(b'[', tag)) {
        (Some(b']'), Some(open)) => &tag[..open],
        _ => tag,
    }
}

/// The stamp as µs since the epoch, or `None` when it is not a valid time.
fn parse_stamp(stamp: &[u8], year: YearRule, tz: &TimeZone) -> Option<i64> {
    match stamp.first()? {
        b'0'..=b'9' if stamp.contains(&b'-') => {
            let timestamp: Timestamp = std::str::from_utf8(stamp).ok()?.parse().ok()?;
            Some(timestamp.as_microsecond())
        }
        b'0'..=b'9' => parse_epoch(stamp),
        _ => {
            let civil = parse_traditional(stamp)?;
            let year = year.year_of(civil.month);
            let datetime = DateTime::new(
                year,
                civil.month,
                civil.day,
                civil.hour,
                civil.minute,
                civil.second,
                civil.nanosecond,
            )
            .ok()?;
            // In the hour repeated when clocks go back, the earlier one (as `date` does).
            let timestamp = tz.to_ambiguous_timestamp(datetime).compatible().ok()?;
            Some(timestamp.as_microsecond())
        }
    }
}

/// A traditional stamp's fields; the year is not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CivilStamp {
    month: i8,
    day: i8,
    hour: i8,
    minute: i8,
    second: i8,
    nanosecond: i32,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// `Nov 27 10:00:01`, `Nov  7 10:00:01`, `Nov 07 10:00:01.123456`.
fn parse_traditional(stamp: &[u8]) -> Option<CivilStamp> {
    let (fixed, fraction) = stamp.split_at_checked(15)?;
    let month = MONTHS.iter().position(|name| fixed[..3] == name[..])?;
    let day = match &fixed[4..6] {
        [b' ', digit] => two_digits(&[b'0', *digit])?,
        digits => two_digits(digits)?,
    };
    if fixed[3] != b' ' || fixed[6] != b' ' || fixed[9] != b':' || fixed[12] != b':' {
        return None;
    }
    Some(CivilStamp {
        month: i8::try_from(month + 1).ok()?,
        day,
        hour: two_digits(&fixed[7..9])?,
        minute: two_digits(&fixed[10..12])?,
        second: two_digits(&fixed[13..15])?,
        nanosecond: match fraction {
            [] => 0,
            [b'.', digits @ ..] => fraction_nanos(digits)?,
            _ => return None,
        },
    })
}

/// `1795773601.123456` (journalctl `-o short-unix`).
fn parse_epoch(stamp: &[u8]) -> Option<i64> {
    let (seconds, fraction) = match memchr::memchr(b'.', stamp) {
        Some(dot) => (&stamp[..dot], Some(&stamp[dot + 1..])),
        None => (stamp, None),
    };
    if seconds.is_empty() || !seconds.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let seconds: i64 = std::str::from_utf8(seconds).ok()?.parse().ok()?;
    let micros = match fraction {
        None => 0,
        Some(digits) => i64::from(fraction_nanos(digits)? / 1000),
    };
    let micros = seconds.checked_mul(1_000_000)?.checked_add(micros)?;
    // Only times jiff can represent, like the other stamp forms.
    Timestamp::from_microsecond(micros).ok()?;
    Some(micros)
}

fn two_digits(digits: &[u8]) -> Option<i8> {
    match digits {
        [tens @ b'0'..=b'9', ones @ b'0'..=b'9'] => {
            i8::try_from((tens - b'0') * 10 + (ones - b'0')).ok()
        }
        _ => None,
    }
}

/// Nanoseconds of a decimal fraction of 1 to 9 digits.
fn fraction_nanos(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut nanos: i32 = 0;
    for place in 0..9 {
        let digit = digits.get(place).map_or(0, |digit| i32::from(digit - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::OwnedEntry;
    use std::io::Write;
    use std::process::Command;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn us(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_microsecond()
    }

    const Y2026_DEC: YearRule = YearRule::Before {
        year: 2026,
        month: 12,
    };

    #[test]
    fn splits_syslog_lines() {
        let line = b"Nov  7 10:00:01 mx1 postgrey[123]: action=greylist, reason=new";
        assert_eq!(
            SyslogLine::split(line),
            Some(SyslogLine {
                stamp: b"Nov  7 10:00:01",
                host: b"mx1",
                tag: b"postgrey[123]",
                message: b"action=greylist, reason=new",
            })
        );
        let line = b"2026-11-27T10:00:01.123456+01:00 mail.example.org postgrey: x: y";
        assert_eq!(
            SyslogLine::split(line),
            Some(SyslogLine {
                stamp: b"2026-11-27T10:00:01.123456+01:00",
                host: b"mail.example.org",
                tag: b"postgrey",
                message: b"x: y",
            })
        );
        let line = b"Nov 27 10:00:01.000042 mx1 postfix/smtpd[9]:";
        assert_eq!(
            SyslogLine::split(line).map(|l| (l.tag, l.message)),
            Some((&b"postfix/smtpd[9]"[..], &b""[..]))
        );
        for not_syslog in [
            &b"-- Boot 5f0c1d2e3a4b4c5d8e9f0a1b2c3d4e5f --"[..],
            b"-- No entries --",
            b"",
            b"Nov 27 10:00:01",
            b"Nov 27 10:00:01 mx1 no tag here",
            b"Nov 27 10:00:01 mx1  postgrey[1]: empty host",
            b"nov 27 10:00:01 mx1 postgrey[1]: lower-case month",
        ] {
            assert_eq!(
                SyslogLine::split(not_syslog),
                None,
                "{}",
                String::from_utf8_lossy(not_syslog)
            );
        }
    }

    #[test]
    fn program_is_the_tag_without_pid() {
        assert_eq!(program_of(b"postgrey[1234]"), b"postgrey");
        assert_eq!(program_of(b"postgrey"), b"postgrey");
        assert_eq!(program_of(b"postfix/smtpd[9]"), b"postfix/smtpd");
        assert_eq!(program_of(b"postgrey[1234"), b"postgrey[1234");
    }

    #[test]
    fn matches_only_the_identifiers_program() {
        let matcher = LineMatcher::new("postgrey");
        let ours = b"Nov 27 10:00:01 mx1 postgrey[1]: cleaning up old logs...";
        assert_eq!(
            matcher.matching(ours).map(|l| l.message),
            Some(&b"cleaning up old logs..."[..])
        );
        for other in [
            &b"Nov 27 10:00:01 mx1 postfix/smtpd[9]: connect from postgrey.example[192.0.2.1]"[..],
            b"Nov 27 10:00:01 mx1 postgrey-advisor[5]: postgrey",
            b"Nov 27 10:00:01 mx1 CRON[7]: (root) CMD (logger postgrey[1]: fake)",
            b"Nov 27 10:00:01 postgrey sshd[7]: host named postgrey",
            b"Nov 27 10:00:01 mx1 apostgrey[1]: near miss",
        ] {
            assert_eq!(
                matcher.matching(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn traditional_stamps() {
        let tz = berlin();
        let parse = |stamp: &[u8]| parse_stamp(stamp, Y2026_DEC, &tz);
        assert_eq!(parse(b"Nov 27 10:00:01"), Some(us("2026-11-27T09:00:01Z")));
        assert_eq!(parse(b"Nov  7 10:00:01"), Some(us("2026-11-07T09:00:01Z")));
        assert_eq!(parse(b"Nov 07 10:00:01"), Some(us("2026-11-07T09:00:01Z")));
        assert_eq!(parse(b"Jul 14 23:59:59"), Some(us("2026-07-14T21:59:59Z")));
        assert_eq!(
            parse(b"Nov 27 10:00:01.123456"),
            Some(us("2026-11-27T09:00:01.123456Z"))
        );
        assert_eq!(
            parse(b"Nov 27 10:00:01.5"),
            Some(us("2026-11-27T09:00:01.5Z"))
        );
        // The hour repeated in autumn: the first one; the hour skipped in spring: after it.
        assert_eq!(parse(b"Oct 25 02:30:00"), Some(us("2026-10-25T00:30:00Z")));
        assert_eq!(parse(b"Mar 29 02:30:00"), Some(us("2026-03-29T01:30:00Z")));
        for bad in [
            &b"Foo 27 10:00:01"[..],
            b"Nov 31 10:00:01",
            b"Nov 00 10:00:01",
            b"Nov 27 24:00:00",
            b"Nov 27 10:60:00",
            b"Nov 27 10:00:60",
            b"Nov 27 10:00:0x",
            b"Nov 27 10-00-01",
            b"Feb 29 10:00:00",
            b"Nov 27 10:00:01.",
            b"Nov 27 10:00:01.1234567890",
            b"Nov 27 10:00:01,5",
            b"Nov  27 10:00:01",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_stamp(b"Feb 29 10:00:00", YearRule::Fixed(2028), &tz),
            Some(us("2028-02-29T09:00:00Z"))
        );
    }

    #[test]
    fn absolute_stamps() {
        let tz = berlin();
        let parse = |stamp: &[u8]| parse_stamp(stamp, YearRule::Fixed(1999), &tz);
        assert_eq!(
            parse(b"2026-11-27T10:00:01.123456+01:00"),
            Some(us("2026-11-27T09:00:01.123456Z"))
        );
        assert_eq!(
            parse(b"2026-11-27T10:00:01+0100"),
            Some(us("2026-11-27T09:00:01Z"))
        );
        assert_eq!(
            parse(b"2026-11-27T10:00:01.000007+0100"),
            Some(us("2026-11-27T09:00:01.000007Z"))
        );
        assert_eq!(
            parse(b"2026-11-27T09:00:01Z"),
            Some(us("2026-11-27T09:00:01Z"))
        );
        assert_eq!(
            parse(b"2026-11-27T04:00:01-05:00"),
            Some(us("2026-11-27T09:00:01Z"))
        );
        assert_eq!(
            parse(b"1795773601.123456"),
            Some(us("2026-11-27T10:00:01.123456Z"))
        );
        assert_eq!(parse(b"1795773601"), Some(us("2026-11-27T10:00:01Z")));
        for bad in [
            &b"2026-11-27T10:00:01"[..],
            b"2026-13-27T10:00:01Z",
            b"2026-11-27T10:00:01+01:00junk",
            b"2026-11-27",
            b"1795773601.",
            b"1795773601.12a",
            b"99999999999999999999",
            b"9223372036854775807",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn year_is_inferred_across_new_year() {
        let tz = berlin();
        let january = YearRule::infer_from("2027-01-02T11:00:00Z".parse().unwrap(), &tz);
        assert_eq!(
            january,
            YearRule::Before {
                year: 2027,
                month: 1
            }
        );
        assert_eq!(january.year_of(12), 2026);
        assert_eq!(january.year_of(2), 2026);
        assert_eq!(january.year_of(1), 2027);
        // 23:30 UTC on New Year's Eve is already January in Berlin.
        let eve = YearRule::infer_from("2026-12-31T23:30:00Z".parse().unwrap(), &tz);
        assert_eq!(
            eve,
            YearRule::Before {
                year: 2027,
                month: 1
            }
        );
        let december = YearRule::infer_from("2026-12-31T12:00:00Z".parse().unwrap(), &tz);
        assert_eq!(december.year_of(12), 2026);
        assert_eq!(december.year_of(1), 2026);
        assert_eq!(YearRule::Fixed(2020).year_of(12), 2020);
        assert_eq!(
            parse_stamp(b"Dec 31 23:59:59", january, &tz),
            Some(us("2026-12-31T22:59:59Z"))
        );
        assert_eq!(
            parse_stamp(b"Jan  1 00:00:01", january, &tz),
            Some(us("2026-12-31T23:00:01Z"))
        );
    }

    /// Every line of `input` through [`scan_lines`] (the empty needle finds every line).
    fn all_lines(input: &mut dyn Read, cap: usize, block: usize) -> (Vec<Vec<u8>>, LineCounts) {
        let finder = memmem::Finder::new(b"");
        let mut counts = LineCounts::default();
        let mut lines = Vec::new();
        scan_lines(input, &finder, cap, block, &mut counts, &mut |line| {
            lines.push(line.to_vec());
            Ok(())
        })
        .unwrap();
        (lines, counts)
    }

    #[test]
    fn line_reader_caps_long_lines_and_keeps_bytes() {
        let mut input = Vec::new();
        input.extend_from_slice(b"short\r\n");
        input.extend(std::iter::repeat_n(b'x', 25));
        input.extend_from_slice(b"\n\xff\xfe\n\nlast without newline");
        // Blocks of 16: the line of 25 is longer than a block, the last one is not.
        let (lines, counts) = all_lines(&mut &input[..], 10, 16);
        assert_eq!(
            lines,
            vec![
                b"short\r".to_vec(),
                b"xxxxxxxxxx".to_vec(),
                b"\xff\xfe".to_vec(),
                b"".to_vec(),
                b"last witho".to_vec(),
            ]
        );
        assert_eq!(
            counts,
            LineCounts {
                lines: 5,
                truncated: 2
            }
        );
        // Blocks larger than every line: the same.
        assert_eq!(all_lines(&mut &input[..], 10, 64), (lines, counts));
    }

    #[test]
    fn an_empty_input_and_a_block_that_ends_the_input_have_no_cut_line() {
        assert_eq!(
            all_lines(&mut &b""[..], 10, 16),
            (Vec::new(), LineCounts::default())
        );
        // Exactly one block, ending in a newline: nothing is left to read after it.
        let input = b"01234567\nabcdef\n";
        assert_eq!(input.len(), 16);
        assert_eq!(
            all_lines(&mut &input[..], 10, 16),
            (
                vec![b"01234567".to_vec(), b"abcdef".to_vec()],
                LineCounts {
                    lines: 2,
                    truncated: 0
                }
            )
        );
    }

    #[test]
    fn the_needle_picks_the_lines_anywhere_in_a_block() {
        let input = b"a postgrey b\nnone\npostgrey\n\nend postgrey";
        for block in [16, 20, 64] {
            let finder = memmem::Finder::new(b"postgrey");
            let mut counts = LineCounts::default();
            let mut lines = Vec::new();
            scan_lines(
                &mut &input[..],
                &finder,
                14,
                block,
                &mut counts,
                &mut |line| {
                    lines.push(line.to_vec());
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(
                lines,
                [&b"a postgrey b"[..], b"postgrey", b"end postgrey"],
                "{block}"
            );
            assert_eq!(counts.lines, 5);
        }
    }

    /// A reader that yields `left` bytes of `x` without ever a newline, without holding them.
    struct Endless {
        left: usize,
    }
    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_gigabyte_without_newline_stays_bounded() {
        let mut reader = Endless { left: 1 << 30 };
        let (lines, counts) = all_lines(&mut reader, MAX_LINE_BYTES, BLOCK_BYTES);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(
            counts,
            LineCounts {
                lines: 1,
                truncated: 1
            }
        );
    }

    fn set_mtime(path: &Path, rfc3339: &str) {
        let time: Timestamp = rfc3339.parse().unwrap();
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(std::time::SystemTime::try_from(time).unwrap())
            .unwrap();
    }

    fn gzip(members: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for member in members {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(member).unwrap();
            out.extend(encoder.finish().unwrap());
        }
        out
    }

    fn read_paths(spec: &TextSpec, window: Window) -> (Vec<OwnedEntry>, TextSummary) {
        let mut entries = Vec::new();
        let summary = read_in_zone(spec, window, &berlin(), &mut |entry| {
            entries.push(entry.to_owned());
            Ok(())
        })
        .unwrap();
        (entries, summary)
    }

    fn stamps(entries: &[OwnedEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|entry| {
                Timestamp::from_microsecond(entry.realtime_us)
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn spec(paths: Vec<PathBuf>) -> TextSpec {
        TextSpec {
            paths,
            identifier: "postgrey".to_string(),
            year: None,
        }
    }

    /// `text/mail.log` (traditional stamps, Dec 30 to Jan 2) written on 2 January 2027, and
    /// the rsyslog high-precision file as a two-member `.gz`: merged in time order.
    #[test]
    fn reads_plain_and_gzip_files_across_new_year() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("mail.log");
        std::fs::copy(Path::new(FIXTURES).join("text/mail.log"), &plain).unwrap();
        set_mtime(&plain, "2027-01-02T07:00:02Z");
        let precise = std::fs::read(Path::new(FIXTURES).join("text/mail-precise.log")).unwrap();
        let split = precise.len() / 2 + 1;
        let gz = dir.path().join("mail.log.1.gz");
        std::fs::write(&gz, gzip(&[&precise[..split], &precise[split..]])).unwrap();
        set_mtime(&gz, "2027-06-01T00:00:00Z");

        let (entries, summary) =
            read_paths(&spec(vec![plain.clone(), gz.clone()]), Window::default());
        assert_eq!(
            stamps(&entries),
            vec![
                "2026-12-30T22:59:59Z",
                "2026-12-31T09:00:00Z",
                "2026-12-31T22:59:59.25Z",
                "2026-12-31T23:00:00.000001Z",
                "2026-12-31T23:00:01Z",
                "2027-01-01T00:00:01Z",
                "2027-01-02T07:00:00Z",
                "2027-01-02T07:00:01Z",
            ]
        );
        let hosts: Vec<&str> = entries.iter().map(|e| e.host.as_deref().unwrap()).collect();
        assert_eq!(
            hosts,
            vec!["mx1", "mx1", "mx1", "mx2", "mx1", "mx2", "mx1", "mx1"]
        );
        assert_eq!(
            entries[0].message,
            b"action=greylist, reason=new, client_name=a.mail.example.com, \
              client_address=192.0.2.1/32, sender=alice@example.com, recipient=bob@example.net"
        );
        assert_eq!(entries[6].message, b"cleaning up old entries...");
        assert_eq!(
            entries[7].message,
            b"action=greylist, reason=new, client_name=j\xfcrgen.example, \
              client_address=192.0.2.77/32, recipient=bob@example.net"
        );
        assert!(
            entries
                .iter()
                .all(|e| e.origin == Origin::Unknown && e.cursor.is_none())
        );
        assert_eq!(
            summary,
            TextSummary {
                lines: 15,
                entries: 8,
                other_programs: 5,
                bad_stamps: 2,
                outside_window: 0,
                truncated_lines: 0,
            }
        );

        // --year overrides the inference; the window is half-open.
        let mut fixed = spec(vec![plain]);
        fixed.year = Some(2030);
        let window = Window {
            since_us: Some(us("2030-12-31T09:00:00Z")),
            until_us: Some(us("2031-01-01T00:00:00Z")),
        };
        let (entries, summary) = read_paths(&fixed, window);
        assert_eq!(stamps(&entries), vec!["2030-12-31T09:00:00Z"]);
        assert_eq!(summary.outside_window, 4);
    }

    #[test]
    fn journalctl_markers_are_not_entries() {
        let mut spec = spec(vec![Path::new(FIXTURES).join("text/journalctl-short.log")]);
        spec.year = Some(2026);
        let (entries, summary) = read_paths(&spec, Window::default());
        assert_eq!(
            stamps(&entries),
            vec!["2026-11-27T10:00:01Z", "2026-11-27T10:00:09Z"]
        );
        assert_eq!(
            (summary.lines, summary.other_programs, summary.bad_stamps),
            (5, 3, 0)
        );
    }

    #[test]
    fn gzip_is_recognised_however_the_input_trickles_in() {
        let content =
            b"Nov 27 10:00:01 mx1 postgrey[1]: one\nNov 27 10:00:02 mx1 postgrey[1]: two\n";
        for data in [
            gzip(&[content]),
            content.to_vec(),
            b"N".to_vec(),
            Vec::new(),
        ] {
            let trickle = BufReader::with_capacity(1, io::Cursor::new(data.clone()));
            let mut reader = decompressing(Box::new(trickle)).unwrap();
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            let plain = if data.starts_with(&GZIP_MAGIC) {
                content.to_vec()
            } else {
                data
            };
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn long_lines_are_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.log");
        let mut content = b"Nov 27 10:00:01 mx1 postgrey[1]: ".to_vec();
        content.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES * 3));
        content.extend_from_slice(b"\nNov 27 10:00:02 mx1 postgrey[1]: next\n");
        std::fs::write(&path, content).unwrap();
        let mut spec = spec(vec![path]);
        spec.year = Some(2026);
        let (entries, summary) = read_paths(&spec, Window::default());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].message.len(), MAX_LINE_BYTES - 33);
        assert_eq!(entries[1].message, b"next");
        assert_eq!((summary.lines, summary.truncated_lines), (2, 1));
    }

    #[test]
    fn gzip_files_are_told_by_their_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let zipped = dir.path().join("mail.log.1");
        std::fs::write(&zipped, gzip(&[b"x\n"])).unwrap();
        let plain = dir.path().join("mail.log.gz");
        std::fs::write(&plain, b"Nov 27 10:00:01 mx1 postgrey[1]: x\n").unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, [GZIP_MAGIC[0]]).unwrap();
        let told: Vec<bool> = [&zipped, &plain, &short, &dir.path().join("missing")]
            .iter()
            .map(|path| is_gzip_file(path))
            .collect();
        assert_eq!(told, [true, false, false, false]);
        assert!(!is_gzip_file(Path::new("-")));
        // A FIFO is not opened to peek: opening it would block until a writer comes.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(!is_gzip_file(&fifo));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.log");
        let error = read_in_zone(
            &spec(vec![missing.clone()]),
            Window::default(),
            &berlin(),
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "opening {}: No such file or directory (os error 2)",
                missing.display()
            )
        );

        let broken = dir.path().join("broken.gz");
        let mut data = gzip(&[b"Nov 27 10:00:01 mx1 postgrey[1]: one\n"
            .repeat(50)
            .as_slice()]);
        data.truncate(data.len() - 12);
        std::fs::write(&broken, data).unwrap();
        let error = read_in_zone(
            &spec(vec![broken.clone()]),
            Window::default(),
            &berlin(),
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").starts_with(&format!("reading {} (line ", broken.display())),
            "{error:#}"
        );
    }

    /// The real `journalctl -o short…` formats, from a real journal file, read back as text:
    /// same times (to the precision printed) and messages as the journal source reads.
    #[test]
    fn reads_journalctl_output() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("a.journal");
        let status = Command::new("/lib/systemd/systemd-journal-remote")
            .arg(format!("--output={}", journal.display()))
            .arg(Path::new(FIXTURES).join("journal/source-a.export"))
            .status()
            .unwrap();
        assert!(status.success());
        let first = us("2026-11-27T10:00:00Z");
        let expected: Vec<(i64, &[u8])> = vec![
            (1, b"action=greylist, reason=new, client_name=a.mail.example.com, client_address=192.0.2.1/32, sender=alice@example.com, recipient=bob@example.net"),
            (2, b"2026/11/27-10:00:02 postgrey (type Net::Server::Multiplex) starting! pid(26267)"),
            (3, b"action=pass, reason=triplet found, delay=3600, client_name=mail.forged.example, client_address=203.0.113.9/32, sender=spam@forged.example, recipient=bob@example.net"),
            (5, b"action=greylist, reason=new, client_name=b\xffc.example.org, client_address=198.51.100.7/32, sender=x@example.org, recipient=bob@example.net"),
            (7, b"action=greylist, reason=new, client_name=mx.other.example, client_address=192.0.2.200/32, sender=carol@other.example, recipient=bob@example.net"),
            (8, b"cleaning up old logs..."),
            (9, b"action=pass, reason=triplet found, delay=305, client_name=a.mail.example.com, client_address=192.0.2.1/32, sender=alice@example.com, recipient=bob@example.net"),
            (10, b"cleaning up old entries..."),
        ];
        for format in [
            "short",
            "short-precise",
            "short-iso",
            "short-iso-precise",
            "short-unix",
        ] {
            let output = Command::new("journalctl")
                .args(["--all", "--no-pager", "-o", format, "--file"])
                .arg(&journal)
                .env("TZ", "Europe/Berlin")
                .output()
                .unwrap();
            assert!(output.status.success(), "journalctl -o {format}");
            let path = dir.path().join(format!("{format}.txt"));
            std::fs::write(&path, &output.stdout).unwrap();
            let mut text_spec = spec(vec![path]);
            text_spec.year = Some(2026);
            let (entries, summary) = read_paths(&text_spec, Window::default());
            let got: Vec<(i64, &[u8])> = entries
                .iter()
                .map(|e| (e.realtime_us - first, e.message.as_slice()))
                .collect();
            let fraction = if matches!(format, "short" | "short-iso") {
                0
            } else {
                123_456
            };
            let want: Vec<(i64, &[u8])> = expected
                .iter()
                .map(|(second, message)| (second * 1_000_000 + fraction, *message))
                .collect();
            assert_eq!(got, want, "journalctl -o {format}");
            assert_eq!(
                (summary.lines, summary.other_programs, summary.bad_stamps),
                (10, 2, 0),
                "journalctl -o {format}"
            );
            let hosts: Vec<&str> = entries.iter().map(|e| e.host.as_deref().unwrap()).collect();
            assert_eq!(
                hosts,
                ["mx1", "mx1", "mx1", "mx1", "mx2", "mx1", "mx1", "mx1"]
            );
        }
    }
}
