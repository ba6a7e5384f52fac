#!/usr/bin/env bash
# Runs the whole test suite: unit, golden-file and end-to-end tests.
# Installs the example toolchains first (Rust wasm32-wasip1 target, C, Go, Zig,
# AssemblyScript; each step is skipped when already there), then builds the examples.
# A toolchain that cannot be installed is not fatal here: its examples are not built,
# and the end-to-end tests print a SKIPPED line with the reason for that language.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$SECONDS
scripts/toolchains.sh all || echo "test.sh: some toolchains are missing (see above); their languages will be SKIPPED" >&2
echo "test.sh: toolchains ready in $((SECONDS - start))s" >&2
scripts/build-examples.sh
cargo test --workspace "$@"
