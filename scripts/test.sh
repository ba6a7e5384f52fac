#!/usr/bin/env bash
# Runs the whole test suite: unit, golden-file and end-to-end tests.
# Builds what the tests need first (wasm32-wasip1 target, C toolchain, examples).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/build-examples.sh
cargo test --workspace "$@"
