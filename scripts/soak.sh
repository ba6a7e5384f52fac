#!/usr/bin/env bash
# Soak test: 10 minutes (or SECONDS) of mixed traffic — ok, faulting and slow
# routes — against a release build, reloading the config with SIGHUP every 30 s.
# Prints a line per reload and a summary; exits non-zero on any unexpected status,
# any connection error, or RSS growth of 10 MiB or more after warm-up.
#
#   scripts/soak.sh [SECONDS] [CLIENTS]
#
# Not part of CI (it takes 10 minutes); docs/reliability.md has the last figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-600}"
clients="${2:-16}"
# As deployed (deploy/gojinn.service): without it glibc's per-thread arenas add
# ~25 MiB of RSS over the first reloads; run with MALLOC_ARENA_MAX= to see that.
if [[ -z "${MALLOC_ARENA_MAX-2}" ]]; then
    unset MALLOC_ARENA_MAX
else
    export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX-2}"
fi
echo "soak: MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-<unset>}"

scripts/build-examples.sh
cargo build --release --quiet --bin gojinn -p gojinn
cargo build --release --quiet --bin gojinn-soak -p gojinn-bench-baseline
cargo build --release --quiet --target wasm32-wasip1 \
    --manifest-path tests/guest/Cargo.toml --target-dir target/guests

target/release/gojinn-soak \
    --gojinn target/release/gojinn \
    --guest target/guests/wasm32-wasip1/release/gojinn-test-guest.wasm \
    --hello examples/rust-hello/rust-hello.wasm \
    --duration "$seconds" --clients "$clients" --reload-every 30
