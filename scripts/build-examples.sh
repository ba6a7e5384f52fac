#!/usr/bin/env bash
# Builds the example functions with `gojinn build DIR --output MODULE`, the command
# users run (it picks the language's toolchain and flags, then checks that the module
# loads), and puts each module where examples/Caddyfile (or the seed Caddyfile)
# expects it:
#
#   rust  examples/rust-hello/rust-hello.wasm     /rust/*   cargo, wasm32-wasip1 target
#   c     examples/c-hello/hello.wasm             /c/*      clang + wasi-libc (make)
#   go    examples/go-hello/go-hello.wasm         /go/*     Go >= 1.21 (GOOS=wasip1)
#   zig   examples/zig-hello/zig-hello.wasm       /zig/*    Zig 0.14 (PyPI ziglang venv)
#   as    examples/as-hello/as-hello.wasm         /as/*     AssemblyScript (npm, local)
#   seed  examples/seed/functions/processor.wasm  seed Caddyfile, /api/*
#   host  examples/rust-counter/rust-counter.wasm /counter/*  (host capabilities:
#         examples/rust-notes/rust-notes.wasm     /notes*      KV, SQLite, host_log;
#         examples/c-log/log.wasm                 /c-log/*     Rust and C)
#
# examples/wat-hello/hello.wat needs no build: the server compiles .wat itself.
#
# It installs nothing: scripts/toolchains.sh does that. A language whose toolchain is
# missing is not built, and the script says "<lang>: skipped: <reason>"; a toolchain
# that is present but fails to build is an error (exit status 1). The probes below
# check versions too (Go >= 1.21, Zig 0.14), which `gojinn build` leaves to the
# compiler's own errors.
#
# The gojinn binary: $GOJINN when set (the end-to-end tests pass the binary under
# test), else `cargo build --bin gojinn` (the debug build the tests use) before the
# first example that needs it.
#
# Usage: scripts/build-examples.sh [--out DIR] [rust|c|go|zig|as|seed|all]...
#   (default: all). With --out, each module goes to DIR/<lang>-hello.wasm instead
#   (the end-to-end tests build from source this way, into their scratch folder).
# Safe to re-run: cargo, go and zig cache their work, and `gojinn build` replaces
# modules atomically.
#
# Where the toolchains are looked up (each can be overridden; the script passes what
# it found on to `gojinn build`):
#   GO    go on PATH, else /usr/lib/go-1.23/bin/go (Debian's golang-1.23-go)
#   ZIG   "zig" on PATH, else target/toolchains/zig-venv (scripts/toolchains.sh zig)
#   WASI_SYSROOT  wasi-libc sysroot for C (default /usr)

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
examples="$root/examples"

# The host build's target directory, before CARGO_TARGET_DIR is pointed at the guests'.
host_target="${CARGO_TARGET_DIR:-$root/target}"
[[ $host_target == /* ]] || host_target="$PWD/$host_target"

# One target directory for every Rust guest: they share dependencies and release
# settings, so serde and serde_json compile once. It sits under the repository's
# ignored target/ but apart from the host build's own outputs.
export CARGO_TARGET_DIR="$root/target/guests"

# Go's and Zig's build caches default to ~/.cache, which may not exist (CI without
# HOME); keep them under target/ unless the caller chose a place.
export GOCACHE="${GOCACHE:-$root/target/toolchains/go-cache}"
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$root/target/toolchains/zig-cache}"

say() { printf 'build-examples: %s\n' "$*" >&2; }

out=""
langs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --out)
        out="${2:?--out needs a directory}"
        shift 2
        ;;
    rust | c | go | zig | as | seed | host) langs+=("$1") && shift ;;
    all) langs+=(rust c go zig as seed host) && shift ;;
    *)
        say "unknown argument \`$1\` (expected --out DIR, rust, c, go, zig, as, seed, host or all)"
        exit 2
        ;;
    esac
done
[[ ${#langs[@]} -gt 0 ]] || langs=(rust c go zig as seed host)
if [[ -n $out ]]; then
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
fi

# Where module $1 (default path $2) goes.
dest_for() {
    if [[ -n $out ]]; then
        echo "$out/$1.wasm"
    else
        echo "$2"
    fi
}

gojinn="${GOJINN:-}"
# `gojinn build DIR --output MODULE`, building gojinn first when needed.
gojinn_build() {
    if [[ -z $gojinn ]]; then
        say "building gojinn (cargo build --bin gojinn)"
        (cd "$root" && CARGO_TARGET_DIR="$host_target" cargo build --quiet --bin gojinn)
        gojinn="$host_target/debug/gojinn"
    fi
    "$gojinn" build "$1" --output "$2"
}

skipped() {
    say "$1: skipped: $2"
}

# ---- Rust -----------------------------------------------------------------------

rust_missing() {
    command -v cargo >/dev/null || {
        echo "cargo not found (install Rust with rustup)"
        return
    }
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip1; then
        echo "the wasm32-wasip1 target is not installed (scripts/toolchains.sh rust, or: rustup target add wasm32-wasip1)"
    fi
}

build_rust() {
    gojinn_build "$examples/rust-hello" \
        "$(dest_for rust-hello "$examples/rust-hello/rust-hello.wasm")"
}

build_seed() {
    [[ -z $out ]] || return 0 # not a language example: only built in place
    gojinn_build "$examples/seed/functions/processor" "$examples/seed/functions/processor.wasm"
}

seed_missing() { rust_missing; }

# The host-capability examples (KV, SQLite, host_log) need Rust and C.
build_host() {
    [[ -z $out ]] || return 0 # not language examples: only built in place
    gojinn_build "$examples/rust-counter" "$examples/rust-counter/rust-counter.wasm"
    gojinn_build "$examples/rust-notes" "$examples/rust-notes/rust-notes.wasm"
    gojinn_build "$examples/c-log" "$examples/c-log/log.wasm"
}

host_missing() {
    local reason
    reason="$(rust_missing)"
    if [[ -n $reason ]]; then
        echo "$reason"
        return
    fi
    c_missing
}

# ---- C --------------------------------------------------------------------------

# Compiling a one-line program is the only check that covers every piece clang needs
# for wasm (wasm-ld, wasi-libc headers and libs, compiler-rt builtins) at once.
c_missing() {
    command -v clang >/dev/null || {
        echo "clang not found (scripts/toolchains.sh c)"
        return
    }
    command -v make >/dev/null || {
        echo "make not found (scripts/toolchains.sh c)"
        return
    }
    local probe
    probe="$(mktemp -d)"
    printf 'int main(void) { return 0; }\n' >"$probe/probe.c"
    clang --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -o "$probe/probe.wasm" \
        "$probe/probe.c" >/dev/null 2>&1 ||
        echo "clang cannot link for wasm32-wasi: wasi-libc or the wasm32 compiler-rt builtins are missing (scripts/toolchains.sh c)"
    rm -rf "$probe"
}

build_c() {
    gojinn_build "$examples/c-hello" "$(dest_for c-hello "$examples/c-hello/hello.wasm")"
}

# ---- Go -------------------------------------------------------------------------

go_bin() {
    if [[ -n ${GO:-} ]]; then
        echo "$GO"
    elif command -v go >/dev/null; then
        command -v go
    elif [[ -x /usr/lib/go-1.23/bin/go ]]; then
        echo /usr/lib/go-1.23/bin/go
    fi
}

go_missing() {
    local go
    go="$(go_bin)"
    [[ -n $go ]] || {
        echo "go not found (scripts/toolchains.sh go installs Debian's golang-1.23-go)"
        return
    }
    local version minor
    version="$("$go" env GOVERSION 2>/dev/null || true)"
    if [[ -z $version ]]; then
        echo "\`$go env GOVERSION\` does not run (scripts/toolchains.sh go)"
        return
    fi
    # GOOS=wasip1 arrived in Go 1.21.
    minor="$(sed -n 's/^go1\.\([0-9]*\).*/\1/p' <<<"$version")"
    if [[ -z $minor || $minor -lt 21 ]]; then
        echo "$go is $version; GOOS=wasip1 needs Go 1.21 or later (scripts/toolchains.sh go)"
    fi
}

build_go() {
    # The Go the probe checked (gojinn build looks in the same places, in the same
    # order, but may as well be told).
    GO="$(go_bin)" gojinn_build "$examples/go-hello" \
        "$(dest_for go-hello "$examples/go-hello/go-hello.wasm")"
}

# ---- Zig ------------------------------------------------------------------------

zig_cmd=()
find_zig() {
    if [[ -n ${ZIG:-} ]]; then
        zig_cmd=("$ZIG")
    elif command -v zig >/dev/null; then
        zig_cmd=(zig)
    elif [[ -x $root/target/toolchains/zig-venv/bin/python ]]; then
        zig_cmd=("$root/target/toolchains/zig-venv/bin/python" -m ziglang)
    fi
}

zig_missing() {
    find_zig
    [[ ${#zig_cmd[@]} -gt 0 ]] || {
        echo "zig not found (scripts/toolchains.sh zig installs PyPI ziglang into target/toolchains/zig-venv)"
        return
    }
    local v
    v="$("${zig_cmd[@]}" version 2>/dev/null || true)"
    if [[ -z $v ]]; then
        echo "\`${zig_cmd[*]} version\` does not run (scripts/toolchains.sh zig)"
    elif [[ $v != 0.14.* ]]; then
        # std.json and std.ArrayList changed shape in 0.15; main.zig is written for 0.14.
        echo "zig is $v; zig-hello is written for Zig 0.14 (scripts/toolchains.sh zig)"
    fi
}

build_zig() {
    find_zig
    # gojinn build splits ZIG on spaces (it may be `python -m ziglang`). The local
    # cache stays under target/ rather than in gojinn's temporary-folder default.
    ZIG="${zig_cmd[*]}" ZIG_LOCAL_CACHE_DIR="$root/target/toolchains/zig-cache" \
        gojinn_build "$examples/zig-hello" \
        "$(dest_for zig-hello "$examples/zig-hello/zig-hello.wasm")"
}

# ---- AssemblyScript -------------------------------------------------------------

as_missing() {
    command -v node >/dev/null || {
        echo "node not found (install Node.js 18 or later, then scripts/toolchains.sh as)"
        return
    }
    [[ -x $examples/as-hello/node_modules/.bin/asc && -d $examples/as-hello/node_modules/@assemblyscript/wasi-shim ]] ||
        echo "assemblyscript is not installed in examples/as-hello/node_modules (scripts/toolchains.sh as, or: cd examples/as-hello && npm ci)"
}

build_as() {
    gojinn_build "$examples/as-hello" "$(dest_for as-hello "$examples/as-hello/as-hello.wasm")"
}

failed=0
for lang in "${langs[@]}"; do
    reason="$("${lang}_missing")"
    if [[ -n $reason ]]; then
        skipped "$lang" "$reason"
        continue
    fi
    say "building $lang"
    if ! "build_$lang"; then
        say "$lang: FAILED to build"
        failed=1
    fi
done
exit "$failed"
