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
# The shared-store tests start their own redis-server and a throwaway PostgreSQL
# cluster, the automatic-HTTPS tests a throwaway ACME CA (pebble, whose package also
# has pebble-challtestsrv), and each skips, saying so, when it cannot; install the
# Debian packages when they are missing and apt-get is there to do it.
sudo_if() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v pebble >/dev/null || missing+=(pebble)
if [[ ${#missing[@]} -gt 0 ]] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]} for the shared-store and ACME tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    sudo_if apt-get update -qq && sudo_if apt-get install -y -qq "${missing[@]}" >/dev/null ||
        echo "test.sh: could not install ${missing[*]}; their tests will be skipped" >&2
fi

# The examples are built by the gojinn binary the tests run (target/debug/gojinn,
# which `cargo test --no-run` builds), so no second build of it is made.
cargo test --workspace --no-run
GOJINN="${CARGO_TARGET_DIR:-$PWD/target}/debug/gojinn" scripts/build-examples.sh
cargo test --workspace "$@"
