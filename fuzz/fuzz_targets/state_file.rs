//! The state file loader: a corrupted or crafted `state.json` is refused with an error (never
//! a panic, and never expanded into far more memory than its size before it is refused).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use postgrey_advisor::state;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("fuzz-state-{}.json", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_err() {
        return;
    }
    let _ = state::load(path);
});
