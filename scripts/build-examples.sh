#!/usr/bin/env bash
# Builds the example functions and puts each module where the example Caddyfiles
# expect it:
#
#   examples/rust-hello/rust-hello.wasm        (examples/Caddyfile, /rust/*)
#   examples/c-hello/hello.wasm                (examples/Caddyfile, /c/*)
#   examples/rust-counter/rust-counter.wasm    (examples/Caddyfile, /counter/*)
#   examples/rust-notes/rust-notes.wasm        (examples/Caddyfile, /notes*)
#   examples/c-log/log.wasm                    (examples/Caddyfile, /c-log/*)
#   examples/seed/functions/processor.wasm     (examples/seed/Caddyfile, /api/*)
#
# examples/wat-hello/hello.wat needs no build: the server compiles .wat itself.
#
# Installs what is missing first: the wasm32-wasip1 Rust target (rustup) and, for C,
# clang + lld + wasi-libc + the wasm32 compiler-rt builtins (apt-get; sudo when not
# root). Safe to re-run: every step checks before acting, cargo and make rebuild only
# what changed, and artifacts are copied only when they differ.
#
# Usage: scripts/build-examples.sh      (from any directory)
# WASI_SYSROOT selects another wasi-libc sysroot for the C example (default /usr).

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
examples="$root/examples"

# One target directory for both Rust guests: they share dependencies and release
# settings, so serde and serde_json compile once. It sits under the repository's
# ignored target/ but apart from the host build's own outputs.
export CARGO_TARGET_DIR="$root/target/guests"

say() { printf 'build-examples: %s\n' "$*" >&2; }

run_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        say "need root to run: $*"
        return 1
    fi
}

ensure_rust_target() {
    if ! command -v rustup >/dev/null; then
        say "rustup not found; assuming the toolchain already has wasm32-wasip1"
        return
    fi
    if ! rustup target list --installed | grep -qx wasm32-wasip1; then
        say "adding the wasm32-wasip1 Rust target"
        rustup --quiet target add wasm32-wasip1
    fi
}

# Compiling a one-line program is the only check that covers every piece clang needs
# for wasm (wasm-ld, wasi-libc headers and libs, compiler-rt builtins) at once.
c_toolchain_works() {
    command -v clang >/dev/null && command -v make >/dev/null || return 1
    local probe
    probe="$(mktemp -d)"
    local ok=0
    printf 'int main(void) { return 0; }\n' >"$probe/probe.c"
    clang --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -o "$probe/probe.wasm" "$probe/probe.c" \
        >/dev/null 2>&1 || ok=1
    rm -rf "$probe"
    return "$ok"
}

ensure_c_toolchain() {
    if c_toolchain_works; then
        return
    fi
    if ! command -v apt-get >/dev/null; then
        say "no working clang for wasm32-wasi and no apt-get to install one;"
        say "install clang, lld, wasi-libc and compiler-rt's wasm32 builtins by hand"
        return 1
    fi
    say "installing the C toolchain for wasm32-wasi (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    run_root apt-get update -qq
    run_root apt-get install -y -qq clang lld wasi-libc make >/dev/null
    # The builtins package carries clang's major version in its name
    # (libclang-rt-14-dev-wasm32 on Debian 12), so ask the clang just installed.
    local major
    major="$(clang -dumpversion | cut -d. -f1)"
    run_root apt-get install -y -qq "libclang-rt-${major}-dev-wasm32" >/dev/null
    if ! c_toolchain_works; then
        say "clang still cannot build for wasm32-wasi after installing its packages"
        return 1
    fi
}

build_rust() {
    local dir="$1" crate="$2" dest="$3"
    # Cargo reads .cargo/config.toml (target and the 64 KiB stack) from the current
    # directory, so build from inside the project rather than with --manifest-path.
    (cd "$dir" && cargo build --release --quiet)
    copy_if_changed "$CARGO_TARGET_DIR/wasm32-wasip1/release/$crate.wasm" "$dest"
}

copy_if_changed() {
    local from="$1" to="$2"
    if ! cmp -s "$from" "$to"; then
        cp "$from" "$to"
    fi
}

ensure_rust_target
ensure_c_toolchain

if [[ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
    say "warning: RUSTFLAGS is set and replaces the examples' -zstack-size=65536"
fi

say "building rust-hello"
build_rust "$examples/rust-hello" rust-hello "$examples/rust-hello/rust-hello.wasm"
say "building rust-counter"
build_rust "$examples/rust-counter" rust-counter "$examples/rust-counter/rust-counter.wasm"
say "building rust-notes"
build_rust "$examples/rust-notes" rust-notes "$examples/rust-notes/rust-notes.wasm"
say "building seed/functions/processor"
build_rust "$examples/seed/functions/processor" processor \
    "$examples/seed/functions/processor.wasm"
say "building c-hello"
make -C "$examples/c-hello" --quiet hello.wasm
say "building c-log"
make -C "$examples/c-log" --quiet log.wasm

for module in \
    "$examples/rust-hello/rust-hello.wasm" \
    "$examples/c-hello/hello.wasm" \
    "$examples/rust-counter/rust-counter.wasm" \
    "$examples/rust-notes/rust-notes.wasm" \
    "$examples/c-log/log.wasm" \
    "$examples/seed/functions/processor.wasm"; do
    say "$(printf '%8d bytes  %s' "$(wc -c <"$module")" "${module#"$root"/}")"
done
