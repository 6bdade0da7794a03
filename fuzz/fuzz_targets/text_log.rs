//! A text log (`/var/log/mail.log`, plain or gzip-framed): stamps of both styles, the host
//! field, the syslog tag, `#012` escapes, cut lines. Every line handed on is parsed as
//! postgrey's.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use postgrey_advisor::event;
use postgrey_advisor::source::Window;
use postgrey_advisor::source::text::{TextSpec, read_in_zone};

/// The reader takes files; one per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("fuzz-text-{}.log", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let spec = TextSpec {
        paths: vec![path.clone()],
        identifier: "postgrey".to_string(),
        year: None,
    };
    let tz = jiff::tz::TimeZone::UTC;
    let _ = read_in_zone(&spec, Window::default(), &tz, &mut |entry| {
        let _ = event::parse(&entry.message);
        Ok(())
    });
});
