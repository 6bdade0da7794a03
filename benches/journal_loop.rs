//! The floor for reading postgrey's entries from a journal: a bare loop over sd-journal with the
//! systemd crate, reading what `report` reads (realtime, MESSAGE, `_SYSTEMD_UNIT`, `_UID` when
//! the unit does not decide), doing nothing with it. `scripts/bench` sets `report` against it.
//!
//! `cargo bench --bench journal_loop -- DIR [RUNS]` prints the median seconds of RUNS (5) loops.

use std::hint::black_box;
use std::time::Instant;

use systemd::journal::OpenDirectoryOptions;

fn one_loop(dir: &str) -> systemd::Result<u64> {
    let mut journal = OpenDirectoryOptions::default().open_directory(dir)?;
    journal.set_data_threshold(256 * 1024)?;
    journal.match_add("SYSLOG_IDENTIFIER", "postgrey")?;
    let mut message = Vec::new();
    let mut trusted = 0;
    while journal.next()? > 0 {
        black_box(journal.timestamp_usec()?);
        message.clear();
        if let Some(field) = journal.get_data(c"MESSAGE")? {
            message.extend_from_slice(field.value().unwrap_or_default());
        }
        let unit = journal
            .get_data(c"_SYSTEMD_UNIT")?
            .is_some_and(|field| field.value() == Some(b"postgrey.service"));
        let uid = !unit
            && journal
                .get_data(c"_UID")?
                .is_some_and(|field| field.value() == Some(b"0"));
        trusted += u64::from(unit || uid);
        black_box(&message);
    }
    Ok(trusted)
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let Some(dir) = args.next() else {
        eprintln!("usage: journal_loop DIR [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut times = Vec::new();
    for _ in 0..runs {
        let began = Instant::now();
        if let Err(error) = one_loop(&dir) {
            eprintln!("{dir}: {error}");
            std::process::exit(1);
        }
        times.push(began.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!("{:.4}", times[(times.len() - 1) / 2]);
}
