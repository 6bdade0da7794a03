//! systemd.time(7) points in time and spans, as `--since`, `--until`, `--window` and `--keep`
//! take them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgrey_advisor::timespec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_764_000_000).expect("a valid instant");
    for tz in [
        jiff::tz::TimeZone::UTC,
        jiff::tz::TimeZone::fixed(jiff::tz::offset(-11)),
    ] {
        let _ = timespec::parse_timestamp(text, now, &tz);
    }
    let _ = timespec::parse_span(text);
});
