//! A state file is loaded within 8× its size + 64 MiB of peak memory, whatever its content:
//! the stored form refers to addresses and names by position, so a few bytes of file can stand
//! for much more in memory. Measured on the release binary (the build that ships; a debug
//! build needs more) with GNU time's peak RSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const MIB: u64 = 1 << 20;

fn today() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    (now.as_secs() / 86_400) as i64
}

/// A state around `groups`, with the fields every state has.
fn state(groups: serde_json::Map<String, Value>) -> Value {
    json!({
        "schema": 2,
        "machines": {},
        "last_entry_us": null,
        "last_run_us": null,
        "last_mailed_us": null,
        "tally": {"groups": groups, "totals": {}, "folded": {}},
    })
}

/// A busy group's lists: `n` addresses and `n` relative host names.
fn lists(n: usize) -> (Vec<String>, Vec<String>) {
    let ips = (0..n)
        .map(|i| format!("198.51.{}.{}", i / 200, i % 200 + 1))
        .collect();
    let hosts = (0..n).map(|i| format!("mail-out-{i}.smtp")).collect();
    (ips, hosts)
}

/// A day that saw `seen` of the group's addresses and names, each address with its own name,
/// written as the state file writes such a day: positions, counts with gaps, client names.
fn day(seen: &[usize], first_s: u64) -> Value {
    let mut counts = Vec::new();
    let mut next = 0;
    for &position in seen {
        if position > next {
            counts.push(-((position - next) as i64));
        }
        counts.push(1);
        next = position + 1;
    }
    json!({
        "n": seen.len(), "k": 1, "w": 3,
        "i": seen,
        "h": counts,
        "a": seen,
        "f": first_s * 1_000_000,
        "l": 3_600_000_000u64,
    })
}

/// The release binary, built by cargo if it is not up to date.
fn release_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--bin",
            "postgrey-advisor",
        ])
        .current_dir(root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --release failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("postgrey-advisor")
}

/// Runs the timer job over `state` and an empty log; its peak RSS in bytes.
fn peak_rss_of_run(dir: &Path, state: &Value, extra: &[&str]) -> (u64, u64) {
    let path = dir.join("state.json");
    let bytes = serde_json::to_vec(state).expect("a state serialises");
    std::fs::write(&path, &bytes).expect("the state file is written");
    let empty = dir.join("mail.log");
    std::fs::write(&empty, b"").expect("the log is written");
    let output = Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib=%M"])
        .arg(release_binary())
        .args(["run", "--window", "7d", "--keep", "100000d"])
        .args([
            "--whitelist-clients",
            "/dev/null",
            "--ignore-file",
            "/dev/null",
        ])
        .arg("--file")
        .arg(&empty)
        .arg("--state")
        .arg(&path)
        .args(extra)
        .output()
        .expect("GNU time runs (package time)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the run failed: {stderr}");
    let kib: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss-kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    (bytes.len() as u64, kib * 1024)
}

fn saved_state(dir: &Path) -> Value {
    let bytes = std::fs::read(dir.join("state.json")).expect("the state was saved");
    serde_json::from_slice(&bytes).expect("the saved state is JSON")
}

fn assert_within_bound(what: &str, size: u64, peak: u64) {
    let bound = 8 * size + 64 * MIB;
    eprintln!(
        "{what}: {:.1} MB of state, peak RSS {:.1} MiB, bound {:.1} MiB",
        size as f64 / 1e6,
        peak as f64 / MIB as f64,
        bound as f64 / MIB as f64
    );
    assert!(
        peak <= bound,
        "{what}: peak RSS {peak} B is over 8 × {size} B + 64 MiB = {bound} B"
    );
}

#[test]
fn a_state_of_fifteen_thousand_busy_days_loads_within_the_bound() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ips, hosts) = lists(171);
    // The same 24 of 171 clients every day: a 450-byte day, copied 15,000 times.
    let seen: Vec<usize> = (0..24).map(|i| i * 7).collect();
    let first_day = today() - 15_000;
    let days: serde_json::Map<String, Value> = (0..15_000)
        .map(|d| ((first_day + d).to_string(), day(&seen, 600)))
        .collect();
    let mut groups = serde_json::Map::new();
    groups.insert(
        "busy.example".into(),
        json!({"i": ips, "h": hosts, "d": days}),
    );
    let (size, peak) = peak_rss_of_run(dir.path(), &state(groups), &[]);
    assert!(size > 5_000_000, "the crafted state has {size} bytes");
    assert_within_bound("15,000 copies of one day", size, peak);
    let kept = &saved_state(dir.path())["tally"]["groups"]["busy.example"]["d"];
    assert_eq!(kept.as_object().map(|days| days.len()), Some(15_000));
}
