#!/usr/bin/env bash
# Quick start: install what the build needs, build, and run postgrey-advisor on the bundled sample
# week (tests/fixtures/sample/mail.log, a Debian mail.log of 2026-11-21..27) — no postgrey needed.
#   1. `report`: the ad-hoc question "who did postgrey delay, and should I whitelist them?"
#   2. `run`:    the weekly timer job (state file + summary.json in a temporary directory)
#   3. `check`:  the Nagios/Icinga plugin reading that summary
set -euo pipefail
cd "$(dirname "$0")/.."

if ! pkg-config --exists libsystemd 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo > /dev/null || {
            echo "libsystemd-dev and a C compiler are needed: run this as root, or install sudo" >&2
            exit 1
        }
        sudo=sudo
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        gcc libc6-dev pkg-config libsystemd-dev > /dev/null
fi
command -v cargo > /dev/null || { echo "Rust is needed: https://rustup.rs" >&2; exit 1; }
cargo build --release --locked --quiet

bin=target/release/postgrey-advisor
sample=tests/fixtures/sample
export TZ=UTC
files=(--year 2026 --file "$sample/mail.log"
       --whitelist-clients "$sample/whitelist_clients" --ignore-file "$sample/ignore")

echo "== postgrey-advisor report (the sample week)"
"$bin" report "${files[@]}"

echo
echo "== postgrey-advisor run (the timer job; state in a temporary directory)"
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
"$bin" run "${files[@]}" --state "$state/state.json" --initial-since 2026-11-21 --window 100000d --keep 100000d \
    --format counts
echo "summary: $(wc -c < "$state/summary.json") bytes in $state/summary.json"

echo
echo "== postgrey-advisor check (the Nagios plugin, reading that summary)"
"$bin" check --summary "$state/summary.json" --window 100000d \
    --whitelist-clients "$sample/whitelist_clients" --ignore-file "$sample/ignore" || true
