#!/usr/bin/env bash
# Fuzzes every target for SECONDS (default 60) each, from corpora seeded with the project's real
# data: postgrey lines captured from a real postgrey, the sample mail.log (plain and gzip), the
# whitelist files, a state file and summary written by a real run over the sample, and
# systemd.time strings. Any crash, leak, timeout or allocation past the limits fails the run,
# and libFuzzer leaves the input in fuzz/artifacts/TARGET/ (turn it into a regression test).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on stable Rust through RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
export RUSTC_BOOTSTRAP=1

targets=(postgrey_line text_log whitelist_file state_file summary_file timespec)
echo "== building ${#targets[@]} fuzz targets"
cargo fuzz build --release > /dev/null

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
fixtures=../tests/fixtures
for t in "${targets[@]}"; do mkdir -p "corpus/$t" "$seeds/$t"; done

n=0
tail -n +2 "$fixtures/real-messages.txt" | cut -f6- | while IFS= read -r line; do
    n=$((n + 1)); printf '%s' "$line" > "$seeds/postgrey_line/real-$n"
done
head -c 8000 "$fixtures/sample/mail.log" > "$seeds/text_log/sample"
gzip -c "$seeds/text_log/sample" > "$seeds/text_log/sample.gz"
for f in "$fixtures"/text/*; do head -c 8000 "$f" > "$seeds/text_log/$(basename "$f")"; done
cp "$fixtures"/whitelist/* "$fixtures/sample/whitelist_clients" "$seeds/whitelist_file/"
n=0
for s in now today yesterday -2d "2 days ago" "1 week ago" 2026-11-01 "2026-11-01 10:00:00" \
    @1764000000 "2026-11-01T10:00:00+01:00" 7d 8w "1h 30min" 600 "3 months" 1y; do
    n=$((n + 1)); printf '%s' "$s" > "$seeds/timespec/s$n"
done

# A state file and a summary as the timer job writes them.
bin=../target/debug/postgrey-advisor
[ -x "$bin" ] || cargo build --locked --quiet --manifest-path ../Cargo.toml
run=$(mktemp -d)
TZ=UTC "$bin" run --year 2026 --file "$fixtures/sample/mail.log" --state "$run/state.json" \
    --whitelist-clients "$fixtures/sample/whitelist_clients" --ignore-file "$fixtures/sample/ignore" \
    --initial-since @0 --window 100000d --keep 100000d --format counts > /dev/null
cp "$run/state.json" "$seeds/state_file/"
cp "$run/summary.json" "$seeds/summary_file/"
rm -rf "$run"

limits=(-rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=10 -close_fd_mask=1)
for t in "${targets[@]}"; do
    # State files and summaries are larger than libFuzzer's default 4 kB inputs.
    case $t in
        state_file | summary_file) max_len=-max_len=262144 ;;
        whitelist_file) max_len=-max_len=4096 ;; # every regex is compiled and audited
        *) max_len=-max_len=16384 ;;
    esac
    echo "== fuzzing $t for ${seconds}s"
    log="$seeds/$t.log"
    if ! cargo fuzz run --release "$t" "corpus/$t" "$seeds/$t" -- \
        -max_total_time="$seconds" "$max_len" "${limits[@]}" -print_final_stats=1 > "$log" 2>&1; then
        tail -n 60 "$log"
        echo "FAILED: fuzz target $t; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | tr '\n' ' '
    echo
done
echo "== fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
