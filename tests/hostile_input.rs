//! Hostile input never makes the binary panic, and what it refuses it refuses clearly.
//!
//! Randomized but deterministic: every test draws from a seeded xorshift generator and prints
//! its seed (`cargo test --test hostile_input -- --nocapture` shows it; a failure message
//! repeats it). `HOSTILE_SEED=N` replays a seed in every test of this file.
//!
//! - `report` on mutated postgrey lines (standard input, plain and gzip files), on a truncated
//!   gzip file and on random bytes: exit 0 with JSON that parses and holds no raw control
//!   character, or exit 1 naming the input.
//! - `run` on a mutated state file (bytes flipped, cut short, or hostile values in the compact
//!   tally layout of `tally::stored`): exit 1 naming the state file, which stays byte-identical,
//!   or, for an edit that is still a sound state, exit 0 and a state the next run reads again.
//! - `check` on mutated summaries: one `POSTGREY WHITELIST UNKNOWN` line with exit 3, or a
//!   normal plugin result.
//! - Whitelist files of random bytes and regex garbage given to `report`, `check` and `audit`.
//!
//! Every run of the binary is bounded (`RUN_LIMIT`, and 2 GB of address space under `prlimit`
//! when it is installed): a hang or a huge allocation is a failure (killed by a signal), never
//! an assertion about speed.

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

const SAMPLE_LOG: &str = "tests/fixtures/sample/mail.log";
const REAL_MESSAGES: &str = "tests/fixtures/real-messages.txt";
/// Bound on one run of the binary: a run that needs it has hung.
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// Address space a run may map: a huge allocation fails (and aborts) instead of swapping.
const ADDRESS_SPACE_LIMIT: &str = "--as=2000000000";
/// Lines of one mutated log.
const LINES_PER_LOG: usize = 2000;
/// Size of a "huge field".
const HUGE_FIELD_BYTES: usize = 100 * 1024;

// ---------------------------------------------------------------------------------------------
// Randomness

/// xorshift64: small, fixed, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // xorshift never leaves 0.
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A copy of one of `items`.
    fn one<T: Clone>(&mut self, items: &[T]) -> T {
        self.pick(items).clone()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The test's generator: `HOSTILE_SEED` when set, else the test's own fixed seed. Prints it.
fn seeded(test: &str, default_seed: u64) -> (Rng, u64) {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(default_seed);
    println!("{test}: seed {seed} (HOSTILE_SEED={seed} replays it)");
    (Rng::new(seed), seed)
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// What one run of the binary did, and what it was given (for failure messages).
struct Outcome {
    what: String,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Outcome {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Everything about the run, for an assertion message.
    fn describe(&self) -> String {
        let stdout = self.stdout_text();
        let shown: String = stdout.chars().take(2000).collect();
        format!(
            "{}\nexit: {:?}\nstdout: {shown}\nstderr: {}",
            self.what, self.code, self.stderr
        )
    }
}

fn prlimit() -> Option<&'static Path> {
    ["/usr/bin/prlimit", "/bin/prlimit"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

/// The binary (under `prlimit` when installed), in UTC, bounded by [`RUN_LIMIT`].
fn advisor(args: &[OsString]) -> assert_cmd::Command {
    let mut cmd = match prlimit() {
        Some(prlimit) => {
            let mut cmd = assert_cmd::Command::new(prlimit);
            cmd.arg(ADDRESS_SPACE_LIMIT)
                .arg("--")
                .arg(common::bin_path())
                .env_remove("JOURNAL_STREAM");
            cmd
        }
        None => common::bin(),
    };
    cmd.env("TZ", "UTC").args(args).timeout(RUN_LIMIT);
    cmd
}

/// Runs the binary and fails the test on a panic, a signal (a hang past [`RUN_LIMIT`], an
/// allocation beyond the address space limit) or an exit code outside `allowed`.
fn run_advisor(args: &[OsString], stdin: Option<Vec<u8>>, what: String) -> Outcome {
    let mut cmd = advisor(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the binary: {e}\n{what}"));
    let outcome = Outcome {
        what,
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        outcome.code.is_some(),
        "killed by a signal (hung past {RUN_LIMIT:?} or ran out of address space): {}",
        outcome.describe()
    );
    assert!(
        outcome.code != Some(101) && !outcome.stderr.contains("panicked"),
        "the binary panicked: {}",
        outcome.describe()
    );
    outcome
}

fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    items.into_iter().map(Into::into).collect()
}

/// The first control character in `text` other than a line feed, if any.
fn control_character(text: &str) -> Option<(usize, char)> {
    text.char_indices()
        .find(|(_, c)| c.is_control() && *c != '\n')
}

fn assert_no_control_characters(outcome: &Outcome) {
    let text = std::str::from_utf8(&outcome.stdout)
        .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}): {}", outcome.describe()));
    if let Some((at, c)) = control_character(text) {
        panic!(
            "raw control character {c:?} at byte {at} of stdout: {}",
            outcome.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Mutated postgrey lines

/// A line of the corpus and what the unmutated line counts as (see
/// `the_unmutated_corpus_gives_exactly_its_counts`).
#[derive(Clone)]
struct CorpusLine {
    bytes: Vec<u8>,
    /// A line of postgrey's own: an entry.
    entry: bool,
    /// A greylisting decision.
    greylisted: bool,
    /// One of the sample week's deliberately broken decisions (a client name with a space).
    malformed: bool,
}

impl CorpusLine {
    fn new(bytes: Vec<u8>) -> Self {
        let entry = contains(&bytes, b" postgrey[");
        let malformed = entry && contains(&bytes, b"client_name=bad name!");
        let greylisted = entry && !malformed && contains(&bytes, b": action=greylist, ");
        CorpusLine {
            bytes,
            entry,
            greylisted,
            malformed,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn positions(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// The sample week's lines, and real postgrey messages (the MESSAGE column of
/// real-messages.txt) as syslog lines of postgrey.
fn corpus() -> Vec<CorpusLine> {
    let sample = fs::read(common::project_file(SAMPLE_LOG)).expect("read the sample log");
    let real = common::read_project_file(REAL_MESSAGES);
    let mut lines: Vec<CorpusLine> = sample
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| CorpusLine::new(l.to_vec()))
        .collect();
    lines.extend(
        real.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.rsplit('\t').next())
            .map(|message| {
                CorpusLine::new(format!("Nov 28 01:05:39 mx1 postgrey[26267]: {message}").into())
            }),
    );
    lines
}

/// Bytes that break naive parsers and terminals.
const NASTY: &[&[u8]] = &[
    b"\0",
    b"\r",
    b"\x1b",
    b"\xff",
    b"\x1b[31m",
    b"\x1b]0;owned\x07",
    b"\xc3\x28",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xc2\x9b",
    b"\x7f",
    b"\t",
    b"\n",
    b"|",
    b"\\",
    b"\"",
    b"\xe2\x80\xae",
];

/// Field names of postgrey's decisions.
const FIELDS: &[&[u8]] = &[
    b"action=",
    b"reason=",
    b"delay=",
    b"client_name=",
    b"client_address=",
    b"sender=",
    b"recipient=",
];

/// Values that overflow or confuse number and address parsers.
const HOSTILE_VALUES: &[&[u8]] = &[
    b"99999999999999999999999999",
    b"18446744073709551616",
    b"-1",
    b"",
    b"0x10",
    b"1e9",
    b"300.1.2.3",
    b"::ffff:1.2.3.4",
    b"1:2:3:4:5:6:7:8:9",
    b"unknown",
    b"UNKNOWN",
    b"a..b",
    b"-.example",
    b"early-retry (99999999999999999999s missing)",
    b"early-retry (",
    b"triplet found",
    b"client whitelist",
];

/// Time stamps of every style the text reader knows, valid and not.
const STAMPS: &[&[u8]] = &[
    b"2026-11-21T01:17:00.123456+01:00",
    b"2026-11-21T01:17:00Z",
    b"1795820400.123456",
    b"1795820400",
    b"Nov  7 10:00:00",
    b"Nov 07 10:00:00.999999",
    b"Feb 29 10:00:00",
    b"Dec 31 24:00:00",
    b"Jan 00 00:00:00",
    b"Nov 21 99:99:99",
    b"2026-13-45T99:99:99Z",
    b"-9999-01-01T00:00:00Z",
    b"9999-12-31T23:59:59.9999999999+14:00",
    b"99999999999999999999.5",
    b"-1",
    b"Nov 21 10:00:00.",
    b"Nov 21 10:00:00.1234567890123",
    b"",
    b"\xff\xfe 21 10:00:00",
];

/// Applies one random mutation to `line`.
fn mutate_once(line: &mut Vec<u8>, rng: &mut Rng) {
    let at = |rng: &mut Rng, line: &Vec<u8>| rng.below(line.len() + 1);
    match rng.below(100) {
        // A bit flipped.
        0..=14 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] ^= 1 << rng.below(8);
        }
        // A byte replaced by any byte (often not UTF-8).
        15..=24 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] = rng.next() as u8;
        }
        // Cut short.
        25..=34 => {
            let keep = rng.below(line.len() + 1);
            line.truncate(keep);
        }
        // NUL, CR, ESC, 0xff, broken UTF-8… inserted.
        35..=54 => {
            let i = at(rng, line);
            let nasty = rng.pick(NASTY);
            line.splice(i..i, nasty.iter().copied());
        }
        // A `, ` separator doubled (or tripled).
        55..=64 => {
            let separators = positions(line, b", ");
            if !separators.is_empty() {
                let i = *rng.pick(&separators);
                let extra: &[u8] = if rng.chance(50) { b", " } else { b", , " };
                line.splice(i..i, extra.iter().copied());
            }
        }
        // A field's value replaced by a hostile one.
        65..=74 => {
            let field = rng.pick(FIELDS);
            let starts = positions(line, field);
            if !starts.is_empty() {
                let start = rng.pick(&starts) + field.len();
                let end = line[start..]
                    .windows(2)
                    .position(|w| w == b", ")
                    .map_or(line.len(), |n| start + n);
                let value = rng.pick(HOSTILE_VALUES);
                line.splice(start..end, value.iter().copied());
            }
        }
        // A field repeated or a stray one appended.
        75..=82 => {
            let field = rng.pick(FIELDS);
            let value = rng.pick(HOSTILE_VALUES);
            let i = at(rng, line);
            let mut extra = b", ".to_vec();
            extra.extend_from_slice(field);
            extra.extend_from_slice(value);
            line.splice(i..i, extra);
        }
        // A field cut out.
        83..=89 => {
            let separators = positions(line, b", ");
            if separators.len() >= 2 {
                let i = rng.below(separators.len() - 1);
                line.drain(separators[i]..separators[i + 1]);
            }
        }
        // The time stamp replaced by another style or an impossible time.
        90..=93 => {
            if let Some(end) = positions(line, b" mx1 ").first().copied() {
                let stamp = rng.pick(STAMPS);
                line.splice(..end, stamp.iter().copied());
            }
        }
        // Random bytes inserted.
        94..=97 => {
            let i = at(rng, line);
            let len = rng.below(16) + 1;
            let noise = rng.bytes(len);
            line.splice(i..i, noise);
        }
        // A huge field (rare: each is 100 KB).
        98 | 99 if rng.chance(25) => {
            let filler = *rng.pick(&[b'a', b'.', b'9', 0xff, b' ', b',']);
            let field = rng.pick(FIELDS);
            let mut huge = b", ".to_vec();
            huge.extend_from_slice(field);
            huge.resize(huge.len() + HUGE_FIELD_BYTES, filler);
            let i = at(rng, line);
            line.splice(i..i, huge);
        }
        _ => {}
    }
}

/// A log of [`LINES_PER_LOG`] corpus lines, about half of them mutated, and the counts its
/// unmutated lines alone are known to give.
struct MutatedLog {
    bytes: Vec<u8>,
    lines: u64,
    clean_entries: u64,
    clean_greylisted: u64,
}

fn mutated_log(corpus: &[CorpusLine], rng: &mut Rng) -> MutatedLog {
    let mut bytes = Vec::new();
    let (mut clean_entries, mut clean_greylisted) = (0, 0);
    for _ in 0..LINES_PER_LOG {
        let line = rng.pick(corpus);
        let mut text = line.bytes.clone();
        if rng.chance(55) {
            for _ in 0..=rng.below(3) {
                mutate_once(&mut text, rng);
            }
        }
        if text == line.bytes {
            clean_entries += u64::from(line.entry);
            clean_greylisted += u64::from(line.greylisted);
        }
        bytes.extend_from_slice(&text);
        bytes.push(b'\n');
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    MutatedLog {
        bytes,
        lines,
        clean_entries,
        clean_greylisted,
    }
}

/// How a log reaches `report`.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    Stdin,
    Plain,
    Gzip,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// `report --file SOURCE --year 2026` with no whitelist or ignore file, in `format`.
fn report_args(source: &Path, format: &str) -> Vec<OsString> {
    let mut list = args(["report", "--file"]);
    list.push(source.into());
    list.extend(args([
        "--year",
        "2026",
        "--format",
        format,
        "--whitelist-clients",
        "/dev/null",
        "--ignore-file",
        "/dev/null",
    ]));
    list
}

/// The report's JSON: UTF-8, no raw control character, parses, with the four totals.
fn report_json(outcome: &Outcome) -> (Value, [u64; 4]) {
    assert_eq!(outcome.code, Some(0), "{}", outcome.describe());
    assert_no_control_characters(outcome);
    let value: Value = serde_json::from_slice(&outcome.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", outcome.describe()));
    let total = |name: &str| {
        value["totals"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("totals.{name} missing: {}", outcome.describe()))
    };
    let totals = [
        total("entries"),
        total("postgrey_lines"),
        total("greylisted"),
        total("malformed"),
    ];
    (value, totals)
}

/// Writes `log` for `delivery` into `dir` and runs `report` on it.
fn report_on(dir: &Path, bytes: &[u8], delivery: Delivery, format: &str, what: &str) -> Outcome {
    let what = format!("{what}, {delivery:?}, --format {format}");
    match delivery {
        Delivery::Stdin => run_advisor(
            &report_args(Path::new("-"), format),
            Some(bytes.to_vec()),
            what,
        ),
        Delivery::Plain | Delivery::Gzip => {
            let (name, content) = match delivery {
                Delivery::Gzip => ("mail.log.1.gz", gzip(bytes)),
                _ => ("mail.log", bytes.to_vec()),
            };
            let path = dir.join(name);
            fs::write(&path, content).expect("write the log");
            run_advisor(&report_args(&path, format), None, what)
        }
    }
}

#[test]
fn the_unmutated_corpus_gives_exactly_its_counts() {
    // The classification the mutation tests rely on for their lower bounds.
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for line in &corpus {
        bytes.extend_from_slice(&line.bytes);
        bytes.push(b'\n');
    }
    let entries = corpus.iter().filter(|l| l.entry).count() as u64;
    let greylisted = corpus.iter().filter(|l| l.greylisted).count() as u64;
    let malformed = corpus.iter().filter(|l| l.malformed).count() as u64;
    let outcome = report_on(dir.path(), &bytes, Delivery::Plain, "json", "unmutated");
    let (_, [got_entries, got_lines, got_greylisted, got_malformed]) = report_json(&outcome);
    assert_eq!(
        (got_entries, got_lines, got_greylisted, got_malformed),
        (entries, entries, greylisted, malformed),
        "{}",
        outcome.describe()
    );
    // The sample week's 411 postgrey lines (7 of them broken) and the 137 real messages.
    assert_eq!((entries, malformed), (411 + 137, 7));
}

#[test]
fn report_survives_mutated_postgrey_lines() {
    let (mut rng, seed) = seeded("report_survives_mutated_postgrey_lines", 0x5eed_0001);
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let deliveries = [Delivery::Stdin, Delivery::Plain, Delivery::Gzip];
    for round in 0..6 {
        let log = mutated_log(&corpus, &mut rng);
        let delivery = deliveries[round % deliveries.len()];
        let what = format!("seed {seed}, round {round}");
        let outcome = report_on(dir.path(), &log.bytes, delivery, "json", &what);
        let (report, [entries, postgrey_lines, greylisted, malformed]) = report_json(&outcome);
        println!(
            "round {round}, {delivery:?}: {} lines, {entries} entries, {greylisted} greylisted, \
             {malformed} malformed; notes {}",
            log.lines, report["notes"]
        );
        let context = outcome.describe();
        assert!(entries <= log.lines, "more entries than lines: {context}");
        assert!(postgrey_lines <= entries, "{context}");
        assert!(greylisted + malformed <= postgrey_lines, "{context}");
        assert!(
            entries >= log.clean_entries,
            "{} unmutated postgrey lines, {entries} entries: {context}",
            log.clean_entries
        );
        assert!(
            greylisted >= log.clean_greylisted,
            "{} unmutated greylistings, {greylisted} counted: {context}",
            log.clean_greylisted
        );
        assert!(malformed > 0, "mutations left nothing malformed: {context}");
        // What a person reads is escaped as well.
        if round < 2 {
            for format in ["table", "counts"] {
                let outcome = report_on(dir.path(), &log.bytes, delivery, format, &what);
                assert_eq!(outcome.code, Some(0), "{}", outcome.describe());
                assert_no_control_characters(&outcome);
            }
        }
    }
}

/// `report` on input that is not a log at all: exit 0 with a sound report, or exit 1 with a
/// message naming the input.
fn assert_report_or_error_naming(outcome: &Outcome, name: &str) {
    match outcome.code {
        Some(0) => {
            report_json(outcome);
        }
        Some(1) => {
            assert!(
                outcome.stderr.starts_with("postgrey-advisor: ") && outcome.stderr.contains(name),
                "the error does not name {name}: {}",
                outcome.describe()
            );
            assert!(
                outcome.stderr.trim_end().lines().count() == 1,
                "one line expected: {}",
                outcome.describe()
            );
        }
        _ => panic!("exit 0 or 1 expected: {}", outcome.describe()),
    }
}

#[test]
fn report_survives_truncated_gzip_and_random_bytes() {
    let (mut rng, seed) = seeded(
        "report_survives_truncated_gzip_and_random_bytes",
        0x5eed_0002,
    );
    let dir = tempfile::tempdir().unwrap();
    let sample = fs::read(common::project_file(SAMPLE_LOG)).unwrap();
    let whole = gzip(&sample);
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..4 {
        let cut = 10 + rng.below(whole.len() - 20);
        inputs.push((format!("cut{i}.gz"), whole[..cut].to_vec()));
    }
    let mut flipped = whole.clone();
    for _ in 0..3 {
        let i = 10 + rng.below(flipped.len() - 10);
        flipped[i] ^= 1 << rng.below(8);
    }
    inputs.push(("flipped.gz".into(), flipped));
    let mut magic_then_noise = vec![0x1f, 0x8b];
    magic_then_noise.extend(rng.bytes(4096));
    inputs.push(("magic-then-noise.gz".into(), magic_then_noise));
    inputs.push(("noise".into(), rng.bytes(300 * 1024)));
    inputs.push(("empty".into(), Vec::new()));
    inputs.push(("only-gzip-magic".into(), vec![0x1f]));
    let mut long_line =
        b"Nov 21 00:02:00 mx1 postgrey[4242]: action=greylist, reason=new, client_name=".to_vec();
    long_line.resize(1024 * 1024, b'a');
    inputs.push(("one-megabyte-line".into(), long_line));
    let mut gzip_bomb_ish = gzip(&vec![b'\n'; 4 * 1024 * 1024]);
    gzip_bomb_ish.extend(rng.bytes(64));
    inputs.push(("newlines-then-garbage.gz".into(), gzip_bomb_ish));

    for (name, bytes) in &inputs {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let what = format!("seed {seed}, file {name}");
        let outcome = run_advisor(&report_args(&path, "json"), None, what.clone());
        assert_report_or_error_naming(&outcome, &path.display().to_string());
        let outcome = run_advisor(
            &report_args(Path::new("-"), "json"),
            Some(bytes.clone()),
            format!("{what} on standard input"),
        );
        assert_report_or_error_naming(&outcome, "standard input");
    }
    // A cut gzip file is an error, not a short report.
    let outcome = run_advisor(
        &report_args(&dir.path().join("cut0.gz"), "json"),
        None,
        format!("seed {seed}, cut0.gz"),
    );
    assert_eq!(outcome.code, Some(1), "{}", outcome.describe());
    for missing in [dir.path().join("does-not-exist"), dir.path().to_path_buf()] {
        let outcome = run_advisor(
            &report_args(&missing, "json"),
            None,
            format!("{}", missing.display()),
        );
        assert_eq!(outcome.code, Some(1), "{}", outcome.describe());
        assert_report_or_error_naming(&outcome, &missing.display().to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Mutated state files

/// `run` on the sample week with the state file `state`.
fn run_args(state: &Path) -> Vec<OsString> {
    let mut list = args(["run", "--file"]);
    list.push(common::project_file(SAMPLE_LOG).into());
    list.extend(args([
        "--year",
        "2026",
        "--initial-since",
        "@0",
        "--window",
        "100000d",
        "--keep",
        "100000d",
        "--whitelist-clients",
        "/dev/null",
        "--ignore-file",
        "/dev/null",
        "--lock-timeout",
        "0",
        "--format",
        "json",
        "--state",
    ]));
    list.push(state.into());
    list
}

/// A state file and summary written by a real run over the sample week.
fn real_run(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let state = dir.join("state.json");
    let outcome = run_advisor(&run_args(&state), None, "the real run".into());
    assert_eq!(outcome.code, Some(0), "{}", outcome.describe());
    let state_bytes = fs::read(&state).unwrap();
    let summary = fs::read(dir.join("summary.json")).unwrap();
    (state_bytes, summary)
}

/// What a mutated state file must lead to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Exit 1 naming the state file, which stays as it was.
    Refused,
    /// Refused, or accepted when the edit still makes a sound state.
    Either,
}

/// A JSON edit of a state file.
type Edit = Box<dyn Fn(&mut Value, &mut Rng)>;

/// A day bucket of some group of the state (`tally.groups.G.d.DAY`).
fn some_day<'a>(state: &'a mut Value, rng: &mut Rng) -> &'a mut serde_json::Map<String, Value> {
    let group = some_group(state, rng);
    let days = group["d"].as_object_mut().expect("days");
    let keys: Vec<String> = days.keys().cloned().collect();
    let key = rng.pick(&keys).clone();
    days[&key].as_object_mut().expect("a day")
}

fn some_group<'a>(state: &'a mut Value, rng: &mut Rng) -> &'a mut serde_json::Map<String, Value> {
    let groups = state["tally"]["groups"].as_object_mut().expect("groups");
    // Groups with addresses and names, where positions mean something.
    let keys: Vec<String> = groups
        .iter()
        .filter(|(_, g)| g.get("i").is_some() && g.get("h").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    let key = rng.pick(&keys).clone();
    groups[&key].as_object_mut().expect("a group")
}

/// The first stored day of a group in a state file's compact tally.
fn first_day(group: &mut serde_json::Map<String, Value>) -> &mut Value {
    group["d"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap()
}

fn list_len(group: &serde_json::Map<String, Value>, field: &str) -> i64 {
    group
        .get(field)
        .and_then(Value::as_array)
        .map_or(0, |a| a.len() as i64)
}

fn hostile_number(rng: &mut Rng) -> Value {
    let numbers = [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!("7"),
        json!(null),
        json!([]),
        json!({}),
        json!(true),
    ];
    rng.pick(&numbers).clone()
}

/// Edits a state file can suffer, each with what it must lead to.
fn state_edits() -> Vec<(&'static str, Expect, Edit)> {
    let counters = ["n", "e", "p", "k", "w", "r"];
    let totals = [
        "entries",
        "postgrey_lines",
        "greylisted",
        "untrusted_skipped",
        "malformed",
    ];
    vec![
        (
            "a day's counter is not a count",
            Expect::Refused,
            Box::new(move |s, rng| {
                let field = *rng.pick(&counters);
                let value = loop {
                    let v = hostile_number(rng);
                    if !v.is_u64() || v == json!(u64::MAX) {
                        break v;
                    }
                };
                some_day(s, rng).insert(field.into(), value);
            }),
        ),
        (
            "every day's counter at u64::MAX",
            Expect::Refused,
            Box::new(move |s, rng| {
                let field = *rng.pick(&counters);
                for group in s["tally"]["groups"].as_object_mut().unwrap().values_mut() {
                    for day in group["d"].as_object_mut().unwrap().values_mut() {
                        day[field] = json!(u64::MAX);
                    }
                }
            }),
        ),
        (
            "the totals at u64::MAX",
            Expect::Refused,
            Box::new(move |s, rng| {
                let field = *rng.pick(&totals);
                for day in s["tally"]["totals"].as_object_mut().unwrap().values_mut() {
                    day[field] = json!(u64::MAX);
                }
            }),
        ),
        (
            "host counts summing past u64::MAX",
            Expect::Refused,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                let names = list_len(group, "h") as usize;
                for day in group["d"].as_object_mut().unwrap().values_mut() {
                    day["h"] = json!(vec![i64::MAX; names]);
                }
            }),
        ),
        (
            "an address position out of range",
            Expect::Refused,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                let len = list_len(group, "i");
                let bad = *rng.pick(&[len, len + 1, 1 << 40, -1]);
                let day = first_day(group);
                day["i"] = json!([0, bad]);
            }),
        ),
        (
            "more host counts than names",
            Expect::Refused,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                let len = list_len(group, "h") as usize;
                let counts = match rng.below(3) {
                    0 => json!(vec![1; len + 1]),
                    1 => json!([-(len as i64), 1]),
                    _ => json!([i64::MIN, 1]),
                };
                let day = first_day(group);
                day["h"] = counts;
            }),
        ),
        (
            "a client name position out of range",
            Expect::Refused,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                let len = list_len(group, "h");
                let bad = *rng.pick(&[len, len + 7, -2, i64::MIN, i64::MAX]);
                let names = if rng.chance(50) {
                    json!([bad])
                } else {
                    json!([[0, bad]])
                };
                let day = first_day(group);
                day["a"] = names;
            }),
        ),
        (
            "more client names than addresses",
            Expect::Refused,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                let len = list_len(group, "i") as usize;
                let day = first_day(group);
                day["a"] = json!(vec![0; len + 1]);
            }),
        ),
        (
            "caps that are no combination of 1, 2 and 4",
            Expect::Refused,
            Box::new(|s, rng| {
                let bits = 8 + rng.below(300);
                some_day(s, rng).insert("c".into(), json!(bits));
            }),
        ),
        (
            "a time no clock reaches",
            Expect::Refused,
            Box::new(|s, rng| {
                let field = *rng.pick(&["f", "l"]);
                some_day(s, rng).insert(field.into(), json!(i64::MAX));
            }),
        ),
        (
            "a day key that is no day",
            Expect::Refused,
            Box::new(|s, rng| {
                let key = *rng.pick(&["x", "1.5", "", "99999999999999999999999", "-"]);
                let group = some_group(s, rng);
                group["d"]
                    .as_object_mut()
                    .unwrap()
                    .insert(key.into(), json!({"n": 1, "f": 0}));
            }),
        ),
        (
            "a day without its first-seen time",
            Expect::Refused,
            Box::new(|s, rng| {
                some_day(s, rng).remove("f");
            }),
        ),
        (
            "an address that is none",
            Expect::Refused,
            Box::new(|s, rng| {
                let bad = rng.one(&[json!("256.1.1.1"), json!(""), json!(7), json!(null)]);
                let group = some_group(s, rng);
                group["i"].as_array_mut().unwrap().push(bad);
            }),
        ),
        (
            "a pair hash that is none",
            Expect::Refused,
            Box::new(|s, rng| {
                let bad = rng.pick(&["zz", "", "0123456789abcdef0", "-123456789abcdef"]);
                let group = some_group(s, rng);
                group.insert("p".into(), json!({"192.0.2.0/24": [bad]}));
            }),
        ),
        (
            "another schema",
            Expect::Refused,
            Box::new(|s, rng| {
                let schema = rng.one(&[
                    json!(1),
                    json!(3),
                    json!(0),
                    json!(u64::MAX),
                    json!("2"),
                    json!(null),
                ]);
                s["schema"] = schema;
            }),
        ),
        (
            "a field of the wrong type",
            Expect::Refused,
            Box::new(|s, rng| {
                let (path, value) = rng.one(&[
                    ("machines", json!([1, 2])),
                    ("machines", json!({"m": {"cursor": 5, "last_entry_us": 1}})),
                    (
                        "machines",
                        json!({"m": {"cursor": "c", "last_entry_us": 1e300}}),
                    ),
                    ("last_entry_us", json!("yesterday")),
                    ("last_run_us", json!(1e300)),
                    ("last_mailed_us", json!([])),
                    ("tally", json!(5)),
                    ("tally", json!({"groups": [1]})),
                    ("tally", json!({"totals": {"x": {}}})),
                    ("tally", json!({"groups": {"example.com": {"d": [1]}}})),
                    ("tally", json!({"groups": {"example.com": 5}})),
                ]);
                s[path] = value;
            }),
        ),
        (
            "schema 2 but nothing else of a state",
            Expect::Refused,
            Box::new(|s, rng| {
                *s = rng.one(&[
                    json!({"schema": 2, "tally": null}),
                    json!({"schema": 2, "machines": null}),
                ]);
            }),
        ),
        (
            "a day far away",
            Expect::Either,
            Box::new(|s, rng| {
                let key = rng.pick(&["-9223372036854775808", "-1", "100000000", "2932896"]);
                let group = some_group(s, rng);
                group["d"]
                    .as_object_mut()
                    .unwrap()
                    .insert(key.to_string(), json!({"n": 3, "f": 0}));
            }),
        ),
        (
            "extreme times that still add up",
            Expect::Either,
            Box::new(|s, rng| {
                let (field, value) =
                    *rng.pick(&[("f", i64::MIN), ("l", i64::MIN), ("f", -1), ("l", -1)]);
                some_day(s, rng).insert(field.into(), json!(value));
            }),
        ),
        (
            "extreme run times",
            Expect::Either,
            Box::new(|s, rng| {
                let field = *rng.pick(&["last_entry_us", "last_run_us", "last_mailed_us"]);
                s[field] = json!(*rng.pick(&[i64::MIN, i64::MAX, 0, -1]));
            }),
        ),
        (
            "huge delays",
            Expect::Either,
            Box::new(|s, rng| {
                let day = some_day(s, rng);
                day.insert("dl".into(), json!([u64::MAX, 0, u64::MAX - 1]));
                day.insert("mx".into(), json!(u64::MAX));
            }),
        ),
        (
            "very large arrays",
            Expect::Either,
            Box::new(|s, rng| {
                let group = some_group(s, rng);
                match rng.below(3) {
                    0 => {
                        let day = first_day(group);
                        day["dl"] = json!(vec![3600; 200_000]);
                    }
                    1 => {
                        let hashes: Vec<String> = (0..50_000u64)
                            .map(|h| format!("{:016x}", h * 7919))
                            .collect();
                        group.insert("p".into(), json!({"192.0.2.0/24": hashes}));
                    }
                    _ => {
                        let nets: Vec<String> = (0..20_000u32)
                            .map(|n| format!("10.{}.{}.0/24", n >> 8, n & 255))
                            .collect();
                        let day = first_day(group);
                        day["nt"] = json!(nets);
                    }
                }
            }),
        ),
        (
            "a day that saw more than a day keeps",
            Expect::Refused,
            Box::new(|s, rng| {
                // Thousands of addresses and names, every day "saw every one": a few hundred KB
                // of file that would stand for millions of clients.
                let group = some_group(s, rng);
                let n = 2000 + rng.below(2000);
                let ips: Vec<String> = (0..n)
                    .map(|i| format!("10.{}.{}.1", i >> 8, i & 255))
                    .collect();
                let hosts: Vec<String> = (0..n).map(|i| format!("h{i}")).collect();
                group.insert("i".into(), json!(ips));
                group.insert("h".into(), json!(hosts));
                for day in group["d"].as_object_mut().unwrap().values_mut() {
                    let day = day.as_object_mut().unwrap();
                    day.remove("i");
                    day.remove("a");
                    day.insert("h".into(), json!(vec![1; n]));
                }
            }),
        ),
        (
            "groups keyed oddly",
            Expect::Either,
            Box::new(|s, rng| {
                let key = *rng.pick(&["", "0.0.0.0/0", "::/0", "evil\u{1b}[31m.example", "a|b\nc"]);
                let group = some_group(s, rng).clone();
                s["tally"]["groups"]
                    .as_object_mut()
                    .unwrap()
                    .insert(key.into(), Value::Object(group));
            }),
        ),
    ]
}

/// Runs `run` on a state file holding `bytes` and checks the outcome against `expect`.
fn run_on_state(dir: &Path, bytes: &[u8], expect: Expect, what: String) {
    fs::create_dir_all(dir).unwrap();
    let state = dir.join("state.json");
    fs::write(&state, bytes).unwrap();
    let outcome = run_advisor(&run_args(&state), None, what);
    let after = fs::read(&state).unwrap();
    match outcome.code {
        Some(1) => {
            let message = outcome.stderr.trim_end();
            println!("{}: {message}", outcome.what);
            assert!(
                message.starts_with(&format!("postgrey-advisor: state file {}", state.display()))
                    && message.lines().count() == 1,
                "one line naming the state file expected: {}",
                outcome.describe()
            );
            assert!(
                after == bytes,
                "the refused state file changed: {}",
                outcome.describe()
            );
            assert!(
                !dir.join("summary.json").exists(),
                "a summary was written from a refused state: {}",
                outcome.describe()
            );
        }
        Some(0) if expect == Expect::Either => {
            // Accepted: what it saved must be read again.
            let again = run_advisor(
                &run_args(&state),
                None,
                format!("{} (second run)", outcome.what),
            );
            assert_eq!(again.code, Some(0), "{}", again.describe());
        }
        _ => panic!("expected {expect:?}: {}", outcome.describe()),
    }
}

#[test]
fn run_refuses_corrupt_state_files_and_leaves_them_untouched() {
    let (mut rng, seed) = seeded(
        "run_refuses_corrupt_state_files_and_leaves_them_untouched",
        0x5eed_0003,
    );
    let dir = tempfile::tempdir().unwrap();
    let (state, _) = real_run(&dir.path().join("real"));
    let mut case = 0;
    let mut next_dir = || {
        case += 1;
        dir.path().join(format!("case{case}"))
    };
    // Bytes flipped: usually no JSON any more, sometimes a different number.
    for _ in 0..25 {
        let mut bytes = state.clone();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let i = rng.below(bytes.len());
            if rng.chance(50) {
                bytes[i] ^= 1 << rng.below(8);
            } else {
                bytes[i] = *rng.pick(&[b'"', b'{', b']', b'-', b'9', b',', 0, 0xff, b'e']);
            }
        }
        run_on_state(
            &next_dir(),
            &bytes,
            Expect::Either,
            format!("seed {seed}, {flips} bytes changed"),
        );
    }
    // Cut short anywhere (the whole file is a valid state: never cut there).
    for _ in 0..15 {
        let cut = rng.below(state.len() - 1);
        run_on_state(
            &next_dir(),
            &state[..cut],
            Expect::Refused,
            format!("seed {seed}, cut at byte {cut} of {}", state.len()),
        );
    }
    // Valid JSON with hostile values, each kind of edit twice.
    let original: Value = serde_json::from_slice(&state).unwrap();
    for (name, expect, edit) in state_edits() {
        for _ in 0..2 {
            let mut value = original.clone();
            edit(&mut value, &mut rng);
            let bytes = serde_json::to_vec(&value).unwrap();
            run_on_state(&next_dir(), &bytes, expect, format!("seed {seed}, {name}"));
        }
    }
    // Not JSON, or not a state, at all.
    for bytes in [
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"schema\"".to_vec(),
        vec![0; 4096],
        rng.bytes(8192),
        b"{\"schema\":2}\xff".to_vec(),
        [
            b"{\"schema\":2,\"x\":\"".as_slice(),
            &[b'a'; 300_000],
            b"\"}",
        ]
        .concat(),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        format!(
            "{{\"schema\":2,\"tally\":{}{}}}",
            "{\"groups\":".repeat(50_000),
            "}".repeat(50_000)
        )
        .into_bytes(),
    ] {
        let what = format!(
            "seed {seed}, not a state: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
        run_on_state(&next_dir(), &bytes, Expect::Refused, what);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Mutated summaries

/// `check` on `summary`, with whitelist `whitelist`.
fn check_args(summary: &Path, whitelist: &Path) -> Vec<OsString> {
    let mut list = args(["check", "--summary"]);
    list.push(summary.into());
    list.push("--whitelist-clients".into());
    list.push(whitelist.into());
    // The run's window: the sample week lies in the past, whatever the day.
    list.extend(args([
        "--ignore-file",
        "/dev/null",
        "--window",
        "100000d",
        "-v",
    ]));
    list
}

/// A plugin result: exit 0–3, the first line `POSTGREY WHITELIST …`; UNKNOWN is exit 3 and
/// one line; nothing that could forge a line or perfdata.
fn assert_plugin_result(outcome: &Outcome) {
    assert_no_control_characters(outcome);
    let text = outcome.stdout_text();
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("POSTGREY WHITELIST "),
        "{}",
        outcome.describe()
    );
    match outcome.code {
        Some(3) => {
            assert!(
                first.starts_with("POSTGREY WHITELIST UNKNOWN - ")
                    && text.lines().count() == 1
                    && !first.contains('|'),
                "one UNKNOWN line without perfdata expected: {}",
                outcome.describe()
            );
        }
        Some(0..=2) => {
            assert_eq!(
                first.matches('|').count(),
                1,
                "one perfdata separator expected: {}",
                outcome.describe()
            );
            assert!(
                text.lines().skip(1).all(|l| !l.contains('|')),
                "{}",
                outcome.describe()
            );
        }
        _ => panic!("a plugin exits 0–3: {}", outcome.describe()),
    }
}

/// Sets `key` of the object at `parent` (a JSON pointer) when there is such an object: an
/// earlier edit may have replaced it by something else.
fn set(root: &mut Value, parent: &str, key: &str, new: Value) {
    if let Some(Value::Object(object)) = root.pointer_mut(parent) {
        object.insert(key.into(), new);
    }
}

/// Kinds of [`summary_edit`].
const SUMMARY_EDITS: usize = 20;

/// Edits a summary can suffer: edit `kind` (`0..SUMMARY_EDITS`), its details drawn from `rng`.
fn summary_edit(kind: usize, rng: &mut Rng, summary: &mut Value) {
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let groups_len = summary
        .get("groups")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let group = format!("/groups/{}", rng.below(groups_len.max(1)));
    let every_group = |summary: &mut Value, key: &str, new: Value| {
        for group in summary
            .get_mut("groups")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(object) = group.as_object_mut() {
                object.insert(key.into(), new.clone());
            }
        }
    };
    let hostile_name = rng.one(&[
        json!("evil\u{1b}[31m.example"),
        json!("a|b\nc.example"),
        json!("x".repeat(10_000)),
        json!(""),
        json!(7),
        json!(null),
        json!("\u{202e}moc.elpmaxe"),
    ]);
    match kind {
        0 => set(summary, &group, "greylisted", hostile_number(rng)),
        1 => {
            every_group(summary, "greylisted", json!(u64::MAX));
            every_group(summary, "daily_greylisted", json!({}));
        }
        2 => every_group(
            summary,
            "daily_greylisted",
            json!({ today.clone(): u64::MAX, "2026-11-21": u64::MAX }),
        ),
        3 => {
            let daily = rng.one(&[
                json!({"not a date": 5}),
                json!({"9999-99-99": 1}),
                json!([1]),
                json!({ today.clone(): -1 }),
            ]);
            set(summary, &group, "daily_greylisted", daily);
        }
        4 => set(summary, &group, "domain", hostile_name),
        5 => {
            let network = rng.one(&[
                json!("x"),
                json!("300.0.0.0/8"),
                json!("::/129"),
                json!("10.0.0.0/8\n"),
            ]);
            set(summary, "/unresolved/0", "network", network);
        }
        6 => {
            let addresses = rng.one(&[json!(["x"]), json!([1]), json!("1.2.3.4")]);
            set(summary, &group, "addresses", addresses);
        }
        7 => {
            let clients = rng.one(&[
                json!([[null, "x"]]),
                json!([["a"]]),
                json!([[5, "1.2.3.4"]]),
                json!([["\u{1b}]0;x\u{7}", "192.0.2.1"]]),
            ]);
            set(summary, &group, "clients", clients);
        }
        8 => {
            let hosts = rng.one(&[json!([5]), json!(["a\nb"]), json!("x")]);
            set(summary, &group, "hosts", hosts);
        }
        9 => {
            let last_run = rng.one(&[
                json!("yesterday"),
                json!("9999-12-31T23:59:59Z"),
                json!("0001-01-01T00:00:00Z"),
                json!(""),
                json!(1),
                json!("2099-01-01T00:00:00Z"),
            ]);
            set(summary, "", "last_run", last_run);
        }
        10 => {
            let since = rng.one(&[
                json!("garbage"),
                json!("9999-12-31T23:59:59Z"),
                json!("-009999-01-01T00:00:00Z"),
                json!(5),
            ]);
            set(summary, "", "since", since);
        }
        11 => {
            let verdict = rng.one(&[json!("\u{1b}]0;x\u{7}"), json!("whitelist|x"), json!(3)]);
            set(summary, &group, "verdict", verdict);
        }
        12 => set(summary, &group, "suggestion", hostile_name),
        13 => {
            let groups = rng.one(&[json!({}), json!(null), json!("x")]);
            set(summary, "", "groups", groups);
        }
        14 => {
            if let Some(one) = summary.pointer(&group).cloned() {
                set(summary, "", "groups", json!(vec![one; 20_000]));
            }
        }
        15 => {
            if let Some(object) = summary.as_object_mut() {
                let keys: Vec<String> = object.keys().cloned().collect();
                if !keys.is_empty() {
                    let key = rng.pick(&keys).clone();
                    object.remove(&key);
                }
            }
        }
        16 => *summary = rng.one(&[json!([]), json!(5), json!(null), json!({})]),
        17 => {
            if let Some(Value::Object(object)) = summary.pointer_mut(&group) {
                object.remove("domain");
                object.insert("network".into(), json!("192.0.2.0/24"));
            }
        }
        18 => set(summary, "", "min_count", hostile_number(rng)),
        _ => set(
            summary,
            &group,
            "daily_greylisted",
            json!({ today.clone(): 1_000_000 }),
        ),
    }
}

#[test]
fn check_survives_mutated_summaries() {
    let (mut rng, seed) = seeded("check_survives_mutated_summaries", 0x5eed_0004);
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = real_run(&dir.path().join("real"));
    let original: Value = serde_json::from_slice(&summary).unwrap();
    let path = dir.path().join("summary.json");
    let whitelist = dir.path().join("whitelist_clients");
    fs::write(&whitelist, "").unwrap();
    let check = |bytes: &[u8], what: String| {
        fs::write(&path, bytes).unwrap();
        let outcome = run_advisor(&check_args(&path, &whitelist), None, what);
        assert_plugin_result(&outcome);
        outcome
    };
    let outcome = check(&summary, format!("seed {seed}, the real summary"));
    assert_eq!(outcome.code, Some(1), "{}", outcome.describe());
    for round in 0..15 {
        let mut bytes = summary.clone();
        for _ in 0..=rng.below(3) {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        check(&bytes, format!("seed {seed}, bytes changed, round {round}"));
        let cut = rng.below(summary.len());
        let outcome = check(&summary[..cut], format!("seed {seed}, cut at {cut}"));
        assert_eq!(outcome.code, Some(3), "{}", outcome.describe());
    }
    // Every kind of edit twice, the second time with another one on top.
    for round in 0..2 * SUMMARY_EDITS {
        let mut value = original.clone();
        summary_edit(round % SUMMARY_EDITS, &mut rng, &mut value);
        if round >= SUMMARY_EDITS {
            let kind = rng.below(SUMMARY_EDITS);
            summary_edit(kind, &mut rng, &mut value);
        }
        let shown: String = value.to_string().chars().take(300).collect();
        check(
            &serde_json::to_vec(&value).unwrap(),
            format!("seed {seed}, edit round {round}: {shown}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Whitelist garbage

const REGEX_TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "{2,1}",
    "{99999}",
    "{1000}{1000}",
    "{,5}",
    "*",
    "+",
    "?",
    "*?",
    "++",
    "|",
    "^",
    "$",
    "\\",
    "\\d",
    "\\p{L}",
    "\\p{",
    "\\x{110000}",
    "\\x{ffffffff}",
    "\\Q",
    "\\E",
    "\\1",
    "\\k<a>",
    "(?<a>",
    "(?<=a)",
    "(?<!b)",
    "(?=",
    "(?!",
    "(?i)",
    "(?x)",
    "(?#c)",
    "(?P<n>",
    "(?:",
    "(?|",
    "(?>",
    "[[:alpha:]]",
    "[[:bogus:]]",
    "[z-a]",
    "[^]",
    "a",
    ".",
    "outlook",
    "\\.",
    "com",
    "é",
    "\u{202e}",
    "\0",
    "\u{1b}",
    "\\c",
    "\\z",
    "\\Z",
    "\\A",
    "\\G",
    "\\b",
    "\\B",
    "\\N{",
    "\\o{777}",
    "(?{ code })",
    "(??{x})",
    "\\g{-1}",
    "(?R)",
    "(*FAIL)",
    "(*ACCEPT)",
    "\\u",
    "\\U",
    "\\l",
    "\\L",
    "$&",
    "@x",
    "/",
    "#",
    " ",
    "\t",
    "\\/",
    "\\x",
    "\\0",
    "\\777",
    "[\\d-z]",
    "(?-i)",
    "(?^)",
    "(?a)",
    "\\h",
    "\\R",
    "\\X",
    "\\K",
    "(?(1)a|b)",
];

/// One line of a garbage whitelist.
fn garbage_line(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0 | 1 => {
            let len = rng.below(120);
            rng.bytes(len).into_iter().filter(|&b| b != b'\n').collect()
        }
        2..=5 => {
            let mut line = String::from("/");
            for _ in 0..rng.below(12) {
                line.push_str(rng.one(REGEX_TOKENS));
            }
            if rng.chance(80) {
                line.push('/');
            }
            if rng.chance(20) {
                line.push_str(rng.one(&["i", "x", "g", "gimsx", " # comment", "/"]));
            }
            line.into_bytes()
        }
        6 => rng
            .pick(&[
                "300.1.2.3/99",
                "::/200",
                "1.2.3.4/-1",
                "1.2.3.4/",
                "/24",
                "10.0.0.0/8/8",
                "1.2.3",
                "1.2.3.",
                "0.0.0.0/0",
                "::/0",
                "fe80::1%eth0",
                "::ffff:1.2.3.4/200",
            ])
            .as_bytes()
            .to_vec(),
        7 => {
            let mut line = Vec::new();
            for _ in 0..=rng.below(6) {
                let label = rng.pick(&[
                    "a", "*", "", "-", "xn--", "é", "com", "co.uk", "outlook", "..", "_", "%",
                ]);
                line.extend_from_slice(label.as_bytes());
                line.push(b'.');
            }
            if rng.chance(50) {
                line.pop();
            }
            line
        }
        8 if rng.chance(10) => vec![b'a'; 100 * 1024],
        8 => {
            let mut line = b"# ".to_vec();
            let len = rng.below(40);
            line.extend(rng.bytes(len).into_iter().filter(|&b| b != b'\n'));
            line
        }
        _ => rng
            .pick(&[
                " ",
                "\t",
                "\r",
                "   outlook.com   ",
                "outlook.com\r",
                "#",
                "",
            ])
            .as_bytes()
            .to_vec(),
    }
}

#[test]
fn whitelist_garbage_never_panics() {
    let (mut rng, seed) = seeded("whitelist_garbage_never_panics", 0x5eed_0005);
    let dir = tempfile::tempdir().unwrap();
    let (_, summary) = real_run(&dir.path().join("real"));
    let summary_path = dir.path().join("summary.json");
    fs::write(&summary_path, summary).unwrap();
    let sample = common::project_file(SAMPLE_LOG);
    for round in 0..10 {
        let path: PathBuf = dir.path().join(format!("whitelist_clients.{round}"));
        let mut text = Vec::new();
        for _ in 0..(20 + rng.below(150)) {
            text.extend(garbage_line(&mut rng));
            text.push(b'\n');
        }
        fs::write(&path, &text).unwrap();
        let what = format!("seed {seed}, round {round}, whitelist {}", path.display());

        let mut report = report_args(&sample, "json");
        // The garbage as the whitelist and as the ignore file.
        let len = report.len();
        report[len - 3] = path.clone().into();
        report[len - 1] = path.clone().into();
        let outcome = run_advisor(&report, None, format!("{what}: report"));
        report_json(&outcome);

        let mut audit = args(["audit", "--whitelist-clients"]);
        audit.push(path.clone().into());
        let outcome = run_advisor(&audit, None, format!("{what}: audit"));
        assert!(
            matches!(outcome.code, Some(0 | 1)),
            "{}",
            outcome.describe()
        );
        assert_no_control_characters(&outcome);
        let prefix = format!("{}:", path.display());
        assert!(
            outcome
                .stdout_text()
                .lines()
                .all(|l| l.starts_with(&prefix)),
            "every finding names the file: {}",
            outcome.describe()
        );

        let outcome = run_advisor(
            &check_args(&summary_path, &path),
            None,
            format!("{what}: check"),
        );
        assert_plugin_result(&outcome);
    }
}
