//! `timespec::parse_timestamp` against the reference: `systemd-analyze timestamp`, which runs the
//! parser journalctl uses for `--since`. Each string is given to both under the same `TZ`.
//!
//! Strings that depend on the current time are bracketed, not compared with a tolerance: our
//! parser runs with the time read just before and just after systemd-analyze ran, and
//! systemd-analyze's answer must lie between (relative spans) or equal one of the two (local
//! midnights, times of day). Absolute strings must agree to the microsecond.

use std::process::Command;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use postgrey_advisor::timespec::parse_timestamp;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dependence {
    /// The same instant whenever it is parsed.
    Absolute,
    /// A midnight or a time of day, which moves only when the date changes.
    Day,
    /// A span away from now.
    Relative,
}
use Dependence::*;

const ZONES: &[&str] = &["Europe/Berlin", "UTC", "America/Havana"];

/// Parsed alike in every zone.
const SAME_SYNTAX: &[(&str, Dependence)] = &[
    ("@1764000000", Absolute),
    ("@1764000000.5", Absolute),
    ("@1.5h", Absolute),
    ("@0", Absolute),
    ("2026-11-01", Absolute),
    ("2026-11-01 10:00", Absolute),
    ("2026-11-01 10:00:00", Absolute),
    ("2026-11-01 10:00:00.123", Absolute),
    ("2026-11-01 10:00:00.1234565", Absolute),
    ("2026-11-01 10:00:00.1234564", Absolute),
    ("2026-12-31 23:59:59.999999", Absolute),
    ("2026-11-01 10:00 UTC", Absolute),
    ("2026-11-01 10:00 utc", Absolute),
    ("2026-07-01 10:00:00 UTC", Absolute),
    ("1970-01-01 00:00:00 UTC", Absolute),
    ("2038-01-19 03:14:08 UTC", Absolute),
    ("2100-02-28", Absolute),
    ("26-11-01", Absolute),
    ("99-11-01 08:00", Absolute),
    ("68-01-01", Absolute),
    ("70-01-01 UTC", Absolute),
    ("2026-1-1 1:2", Absolute),
    ("Sat 2026-11-28", Absolute),
    ("saturday 2026-11-28 10:00", Absolute),
    ("Sun 2026-11-29 23:00:01", Absolute),
    // Berlin skips 02:00–03:00 on 2026-03-29, Havana 00:00–01:00 on 2026-03-08.
    ("2026-03-29 02:30", Absolute),
    ("2026-03-08", Absolute),
    ("2026-03-08 00:30", Absolute),
    ("2026-10-25 01:59:59", Absolute),
    // Havana repeats 00:00–01:00 on 2026-11-01; glibc, like us, takes the earlier here.
    ("2026-11-01 00:30", Absolute),
    ("today", Day),
    ("yesterday", Day),
    ("tomorrow", Day),
    ("today UTC", Day),
    ("yesterday UTC", Day),
    ("tomorrow UTC", Day),
    ("10:00", Day),
    ("00:00:01", Day),
    ("23:59:59.5", Day),
    ("10:00 UTC", Day),
    ("now", Relative),
    ("-2d", Relative),
    ("+3h", Relative),
    ("2 days ago", Relative),
    ("2days ago", Relative),
    ("1 week ago", Relative),
    ("3 weeks ago", Relative),
    ("8w ago", Relative),
    ("1h 30min ago", Relative),
    ("-1d12h", Relative),
    ("2h left", Relative),
    ("1M ago", Relative),
    ("1y ago", Relative),
    ("1 year 2 months ago", Relative),
    ("1.5h ago", Relative),
    (".5h ago", Relative),
    ("12.34s.56 ago", Relative),
    ("5 6 ago", Relative),
    ("250ms ago", Relative),
    ("10us ago", Relative),
    ("+0", Relative),
    ("-0", Relative),
];

/// The local zone's abbreviations.
const LOCAL_ABBREVIATIONS: &[(&str, &str)] = &[
    ("Europe/Berlin", "2026-11-01 10:00 cet"),
    ("Europe/Berlin", "2026-07-01 10:00 cet"),
    ("Europe/Berlin", "2026-10-25 02:30 cet"),
    ("Europe/Berlin", "2026-07-01 10:00 CEST"),
    ("Europe/Berlin", "2026-11-01 10:00 CEST"),
    ("Europe/Berlin", "2026-10-25 02:30 CEST"),
    ("America/Havana", "2026-11-01 10:00 CST"),
    ("America/Havana", "2026-07-01 10:00 CDT"),
];

/// systemd 252 refuses `CET` because it also names a zone file; `cet` means the same.
const UPPER_CASE_CET: (&str, &str) = ("2026-07-01 10:00 CET", "2026-07-01 10:00 cet");

/// Accepted here but not by systemd 252: compared with the spelling systemd 252 accepts.
const EXTENSIONS: &[(&str, &str)] = &[
    // systemd 252 refuses every suffix that is also a zone file name.
    ("2026-07-01 10:00 Etc/UTC", "2026-07-01 10:00 UTC"),
    ("2026-11-01T10:00:00", "2026-11-01 10:00:00"),
    ("2026-11-01T10:00:00.25", "2026-11-01 10:00:00.25"),
    ("2026-11-01T10:00", "2026-11-01 10:00"),
    ("2026-11-01T10:00:00Z", "2026-11-01 10:00:00 UTC"),
    ("2026-11-01 10:00:00z", "2026-11-01 10:00:00 UTC"),
    ("2026-11-01T10:00:00+01:00", "2026-11-01 09:00:00 UTC"),
    ("2026-11-01T10:00:00.5-03:30", "2026-11-01 13:30:00.5 UTC"),
    ("2026-11-01 10:00 Asia/Tokyo", "2026-11-01 01:00 UTC"),
    ("  2026-11-01  ", "2026-11-01"),
];

/// Refused by both.
const BOTH_REFUSE: &[&str] = &[
    "",
    "next tuesday",
    "5 mins ago",
    "5secs ago",
    "2 Days ago",
    "NOW",
    "Today",
    "yesterday 10:00",
    "Sun 2026-11-28",
    "2026-13-01",
    "2026-11-01 25:00",
    "2026-11-01 10:00.5",
    "2026/11/01",
    "2026-11-01 foo",
    "1969-12-31 UTC",
    "69-12-31 23:59:59 UTC",
    "-60y",
    "+",
    "@-5",
    "3. ago",
    "ago",
];

/// Accepted by systemd 252 because glibc's strptime and mktime normalise them, refused here.
const STRICTER_THAN_SYSTEMD: &[&str] = &["2026-02-31", "2026-11-01 10:00:60", "2026-11-0110:00"];

/// systemd-analyze's answer in microseconds since the epoch, or `None` when it refused.
fn systemd_analyze(zone: &str, input: &str) -> Option<i64> {
    let output = Command::new("systemd-analyze")
        .env("TZ", zone)
        .args(["timestamp", "--", input])
        .output()
        .expect("systemd-analyze must be installed (Debian package systemd) for this test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        assert!(
            stderr.contains("Failed to parse"),
            "systemd-analyze failed for another reason on {input:?}: {stderr}"
        );
        return None;
    }
    let seconds = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("UNIX seconds: @"))
        .unwrap_or_else(|| panic!("no \"UNIX seconds:\" line for {input:?} in {stdout}"));
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, "0"));
    assert!(fraction.len() <= 6, "{seconds}");
    let fraction: i64 = format!("{fraction:0<6}").parse().expect("digits");
    Some(whole.parse::<i64>().expect("digits") * 1_000_000 + fraction)
}

/// The current time cut to microseconds, like systemd's `now(CLOCK_REALTIME)`.
fn now_micros() -> Timestamp {
    Timestamp::from_microsecond(Timestamp::now().as_microsecond()).expect("now is in range")
}

/// Our answer in microseconds for `input` at `now`, or `None` when refused.
fn ours(zone: &TimeZone, input: &str, now: Timestamp) -> Option<i64> {
    parse_timestamp(input, now, zone)
        .ok()
        .map(Timestamp::as_microsecond)
}

/// Compares one string and returns a description of any disagreement.
fn compare(
    zone_name: &str,
    ours_input: &str,
    systemd_input: &str,
    dependence: Dependence,
) -> Option<String> {
    let zone = TimeZone::get(zone_name).expect("tzdata has the zone");
    let before = now_micros();
    let systemd = systemd_analyze(zone_name, systemd_input);
    let after = now_micros();
    let (early, late) = (
        ours(&zone, ours_input, before),
        ours(&zone, ours_input, after),
    );
    let agree = match (dependence, systemd, early, late) {
        (_, None, _, _) => false,
        (Absolute, Some(reference), Some(early), Some(late)) => {
            early == reference && late == reference
        }
        (Day, Some(reference), Some(early), Some(late)) => early == reference || late == reference,
        (Relative, Some(reference), Some(early), Some(late)) => {
            early <= reference && reference <= late
        }
        _ => false,
    };
    (!agree).then(|| {
        format!(
            "TZ={zone_name} {ours_input:?} ({dependence:?}): ours {early:?}..{late:?}, \
             systemd-analyze {systemd_input:?} {systemd:?}"
        )
    })
}

#[test]
fn accepted_strings_give_the_instant_systemd_analyze_gives() {
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for &zone in ZONES {
        for &(input, dependence) in SAME_SYNTAX {
            disagreements.extend(compare(zone, input, input, dependence));
            compared += 1;
        }
        for &(ours_input, systemd_input) in EXTENSIONS {
            disagreements.extend(compare(zone, ours_input, systemd_input, Absolute));
            compared += 1;
        }
    }
    for &(zone, input) in LOCAL_ABBREVIATIONS {
        disagreements.extend(compare(zone, input, input, Absolute));
        compared += 1;
    }
    let (ours_input, systemd_input) = UPPER_CASE_CET;
    disagreements.extend(compare(
        "Europe/Berlin",
        ours_input,
        systemd_input,
        Absolute,
    ));
    compared += 1;
    assert_eq!(
        compared,
        3 * (SAME_SYNTAX.len() + EXTENSIONS.len()) + LOCAL_ABBREVIATIONS.len() + 1
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn refused_strings_are_refused_by_both_with_the_value_named() {
    let now = Timestamp::now();
    for &zone_name in ZONES {
        let zone = TimeZone::get(zone_name).expect("tzdata has the zone");
        for &input in BOTH_REFUSE {
            assert_eq!(
                systemd_analyze(zone_name, input),
                None,
                "TZ={zone_name} {input:?}"
            );
            let error = parse_timestamp(input, now, &zone).expect_err(input);
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("cannot parse time {input:?}: ")),
                "{error}"
            );
        }
    }
}

#[test]
fn stricter_than_systemd_where_glibc_normalises() {
    let now = Timestamp::now();
    let zone = TimeZone::get("Europe/Berlin").expect("tzdata has the zone");
    for &input in STRICTER_THAN_SYSTEMD {
        assert!(
            systemd_analyze("Europe/Berlin", input).is_some(),
            "{input:?}"
        );
        assert!(parse_timestamp(input, now, &zone).is_err(), "{input:?}");
    }
}
