//! Throughput of the pure pipeline (parse → group → tally) on the bundled sample week, as a
//! ratio to a baseline measured in the same run: splitting the same bytes into lines and
//! finding each line's `: ` (about what any log reader must do). Machines here are noisy, so
//! only the ratio means something; it is printed, never asserted.
//!
//! `cargo bench --bench pipeline`

use std::hint::black_box;
use std::time::{Duration, Instant};

use postgrey_advisor::group::Grouper;
use postgrey_advisor::source::{Entry, Origin};
use postgrey_advisor::tally::Tally;

const SAMPLE: &str = include_str!("../tests/fixtures/sample/mail.log");
const ROUNDS: usize = 200;

/// postgrey's messages from the sample, without the syslog prefix.
fn messages() -> Vec<Vec<u8>> {
    SAMPLE
        .lines()
        .filter_map(|line| {
            line.split_once(" postgrey[4242]: ")
                .map(|(_, m)| m.as_bytes().to_vec())
        })
        .collect()
}

fn best_of<F: FnMut()>(mut f: F) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let messages = messages();
    let grouper = Grouper::builtin();
    let baseline = best_of(|| {
        for _ in 0..ROUNDS {
            for line in SAMPLE.as_bytes().split(|&b| b == b'\n') {
                black_box(line.windows(2).position(|w| w == b": "));
            }
        }
    });
    let pipeline = best_of(|| {
        let mut tally = Tally::default();
        for round in 0..ROUNDS {
            for (i, message) in messages.iter().enumerate() {
                let entry = Entry {
                    realtime_us: 1_795_219_200_000_000
                        + (round * messages.len() + i) as i64 * 1_000_000,
                    message,
                    origin: Origin::Trusted,
                    host: None,
                    cursor: None,
                };
                tally.ingest(&grouper, &entry);
            }
        }
        black_box(tally);
    });
    let lines = (ROUNDS * messages.len()) as f64;
    println!(
        "baseline (split + find): {:>8.1} ns per postgrey line",
        baseline.as_nanos() as f64 / lines
    );
    println!(
        "pipeline (parse+group+tally): {:>8.1} ns per postgrey line",
        pipeline.as_nanos() as f64 / lines
    );
    println!(
        "ratio pipeline / baseline: {:.1}",
        pipeline.as_secs_f64() / baseline.as_secs_f64()
    );
}
