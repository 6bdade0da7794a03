//! A postgrey log line, as the journal or a text log hands it over: any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postgrey_advisor::event;

fuzz_target!(|line: &[u8]| {
    let _ = event::parse(line);
});
