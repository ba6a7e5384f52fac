#!/usr/bin/env bash
# Runs the whole test suite: unit, golden-file and end-to-end tests.
# Builds what the tests need first (wasm32-wasip1 target, C toolchain, examples).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The shared-store tests start their own redis-server (and skip, saying so, when it
# cannot be found); install it when apt-get is there to do it.
if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null; then
    echo "test.sh: installing redis-server for the shared-store tests" >&2
    sudo_if() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
    export DEBIAN_FRONTEND=noninteractive
    sudo_if apt-get update -qq && sudo_if apt-get install -y -qq redis-server >/dev/null ||
        echo "test.sh: could not install redis-server; its tests will be skipped" >&2
fi

scripts/build-examples.sh
cargo test --workspace "$@"
