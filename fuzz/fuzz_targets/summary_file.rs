//! The summary loader of `check` (the Nagios plugin): any `summary.json` gives a plugin
//! result or an error, never a panic.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use postgrey_advisor::app;
use postgrey_advisor::cli::{Cli, Command};

struct Scratch {
    summary: PathBuf,
    args: postgrey_advisor::cli::CheckArgs,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let summary = dir.join("summary.json");
        let empty = dir.join("empty");
        std::fs::write(&empty, "").expect("empty whitelist");
        let cli = Cli::try_parse_from([
            "postgrey-advisor".as_ref(),
            "check".as_ref(),
            "--summary".as_ref(),
            summary.as_os_str(),
            "--whitelist-clients".as_ref(),
            empty.as_os_str(),
            "--ignore-file".as_ref(),
            empty.as_os_str(),
            "--window".as_ref(),
            "100000d".as_ref(),
            "--max-age".as_ref(),
            "100000d".as_ref(),
            "-v".as_ref(),
        ])
        .expect("check arguments");
        let Command::Check(args) = cli.command else {
            panic!("not the check command");
        };
        Scratch { summary, args }
    })
}

fuzz_target!(|data: &[u8]| {
    let scratch = scratch();
    if std::fs::write(&scratch.summary, data).is_err() {
        return;
    }
    // Without check()'s watchdog thread, which would end the fuzzing process after -t seconds.
    if let Ok((_, text)) = app::check::evaluate(&scratch.args) {
        assert!(text.starts_with("POSTGREY WHITELIST "), "{text}");
    }
});
