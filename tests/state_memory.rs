//! A state file is loaded within 8× its size + 64 MiB of peak memory, whatever its content:
//! the stored form refers to addresses and names by position, so a few bytes of file can stand
//! for much more in memory. A file that would expand beyond that is refused as corrupt before
//! it is expanded. Measured on the release binary (the build that ships; a debug build needs
//! more) with GNU time's peak RSS.

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

/// What a run over `state_bytes` (and an empty log) did.
struct Run {
    file_bytes: u64,
    peak_rss: u64,
    succeeded: bool,
    stderr: String,
}

/// Runs the timer job over the state `state_bytes` and an empty log, measuring its peak RSS.
fn run_over(dir: &Path, state_bytes: &[u8], extra: &[&str]) -> Run {
    let path = dir.join("state.json");
    std::fs::write(&path, state_bytes).expect("the state file is written");
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
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let kib: u64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss-kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    Run {
        file_bytes: state_bytes.len() as u64,
        peak_rss: kib * 1024,
        succeeded: output.status.success(),
        stderr,
    }
}

/// Runs the timer job over `state`, which must load; (file size, peak RSS) in bytes.
fn peak_rss_of_run(dir: &Path, state: &Value, extra: &[&str]) -> (u64, u64) {
    let bytes = serde_json::to_vec(state).expect("a state serialises");
    let run = run_over(dir, &bytes, extra);
    assert!(run.succeeded, "the run failed: {}", run.stderr);
    (run.file_bytes, run.peak_rss)
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

#[test]
fn a_state_of_twenty_thousand_groups_loads_within_the_bound() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ips, hosts) = lists(140);
    let first_day = today() - 8;
    // A 7.6 KB group: eight days of 25 of its 140 clients, each day others.
    let days: serde_json::Map<String, Value> = (0..8)
        .map(|d| {
            let mut seen: Vec<usize> = (0..25).map(|i| (i * 5 + d) % 140).collect();
            seen.sort_unstable();
            ((first_day + d as i64).to_string(), day(&seen, 600))
        })
        .collect();
    let group = json!({"i": ips, "h": hosts, "d": days}).to_string();
    // Written out as text: the same group 20,000 times under other names.
    let mut groups = String::new();
    for g in 0..20_000 {
        if g > 0 {
            groups.push(',');
        }
        groups.push_str(&format!("\"sender{g}.example\":{group}"));
    }
    let skeleton = state(serde_json::Map::new()).to_string();
    let bytes = skeleton.replacen("\"groups\":{}", &format!("\"groups\":{{{groups}}}"), 1);
    assert!(
        bytes.len() > 140_000_000,
        "the crafted state has {} bytes",
        bytes.len()
    );
    let run = run_over(dir.path(), bytes.as_bytes(), &["--max-state-size", "1GB"]);
    assert!(run.succeeded, "the run failed: {}", run.stderr);
    assert_within_bound("20,000 groups", run.file_bytes, run.peak_rss);
    drop(bytes);
    // Every group is kept (counted in the text: parsing 143 MB into a `Value` takes a debug
    // build of this test longer than the run itself).
    let saved =
        std::fs::read_to_string(dir.path().join("state.json")).expect("the state was saved");
    assert_eq!(saved.matches(".example\":{\"i\":").count(), 20_000);
}

#[test]
fn a_state_whose_days_stand_for_far_more_than_it_lists_is_refused_unexpanded() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A group of 256 addresses (as many as a day keeps) and one name, and 20,000 days that
    // list neither: each such day saw every address with the name, about 19 KB in memory
    // from 60 bytes of file.
    let (ips, hosts) = lists(256);
    let first_day = today() - 20_000;
    let days: serde_json::Map<String, Value> = (0..20_000)
        .map(|d| {
            let day = json!({"n": 1, "h": [1], "f": 600_000_000u64, "l": 1});
            ((first_day + d).to_string(), day)
        })
        .collect();
    let mut groups = serde_json::Map::new();
    groups.insert(
        "dense.example".into(),
        json!({"i": ips, "h": &hosts[..1], "d": days}),
    );
    let bytes = serde_json::to_vec(&state(groups)).expect("a state serialises");
    let run = run_over(dir.path(), &bytes, &[]);
    assert!(!run.succeeded, "a run over the crafted state succeeded");
    let path = dir.path().join("state.json");
    assert!(
        run.stderr.contains(&format!(
            "state file {} is corrupt (left untouched; --reset-state starts over)",
            path.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "it would take more memory than a state file of its size can need \
             (its days refer to far more addresses and names than it lists)"
        ),
        "{}",
        run.stderr
    );
    assert_within_bound("20,000 dense days", run.file_bytes, run.peak_rss);
    assert_eq!(
        std::fs::read(&path).expect("the state is still there"),
        bytes,
        "the refused state was changed"
    );
}
