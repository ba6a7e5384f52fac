#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for SECONDS (default 20).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (cargo-fuzz instruments with sanitizers); installs
# cargo-fuzz when missing. Without nightly it says SKIPPED and exits 0, so CI shows
# the skip instead of passing silently. A crash stops the run with exit 1 and
# leaves the input under fuzz/artifacts/TARGET/; turn it into a regression test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-20}"
shift || true
say() { printf 'fuzz: %s\n' "$*"; }

if ! rustup run nightly cargo --version >/dev/null 2>&1; then
    say "SKIPPED: the nightly toolchain is not installed (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

cd fuzz
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
say "building ${targets[*]}"
cargo +nightly fuzz build -O

# Seed corpora from the inputs the test suite already reviews, so the fuzzer starts
# from real configs instead of from nothing.
mkdir -p corpus/caddyfile corpus/json_config
cp -n ../crates/gojinn-config/tests/ui/*/*.Caddyfile corpus/caddyfile/ 2>/dev/null || true
cp -n ../crates/gojinn-config/tests/ui/*/*.json corpus/json_config/ 2>/dev/null || true

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    say "running $target for ${seconds}s"
    cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1 |
        grep -E '^(Done|stat::number_of_executed_units|INFO: -max_total_time)|panicked|SUMMARY|crash-' || true
    if compgen -G "artifacts/$target/crash-*" >/dev/null; then
        say "$target crashed; inputs in fuzz/artifacts/$target/"
        exit 1
    fi
done
say "all targets ran ${seconds}s without a crash"
