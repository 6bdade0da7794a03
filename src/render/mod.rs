//! Renderers: each turns a [`Report`](crate::report::Report) into text for one sink. They do no
//! analysis; what came from a log is escaped for the sink here.

pub mod by_mx;
pub mod counts;
pub mod digest;
pub mod journal;
pub mod json;
pub mod prometheus;
pub mod table;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// RFC 3339 in UTC, for JSON.
pub fn rfc3339(realtime_us: i64) -> String {
    match Timestamp::from_microsecond(realtime_us) {
        Ok(ts) => ts.to_string(),
        Err(_) => String::from("invalid-time"),
    }
}

/// Local time to the minute, for tables and mail.
pub fn local_time(realtime_us: i64) -> String {
    match Timestamp::from_microsecond(realtime_us) {
        Ok(ts) => ts
            .to_zoned_datetime(TimeZone::system())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => String::from("?"),
    }
}
