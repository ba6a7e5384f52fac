#!/usr/bin/env bash
# Builds the example functions, each with its own language's toolchain, and puts each
# module where examples/Caddyfile (or the seed Caddyfile) expects it:
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
# that is present but fails to build is an error (exit status 1).
#
# Usage: scripts/build-examples.sh [--out DIR] [rust|c|go|zig|as|seed|all]...
#   (default: all). With --out, each module goes to DIR/<lang>-hello.wasm instead
#   (the end-to-end tests build from source this way, into their scratch folder).
# Safe to re-run: cargo, go and zig cache their work, and modules are replaced
# atomically, only when they differ.
#
# Where the toolchains are looked up (each can be overridden):
#   GO    go on PATH, else /usr/lib/go-1.23/bin/go (Debian's golang-1.23-go)
#   ZIG   "zig" on PATH, else target/toolchains/zig-venv (scripts/toolchains.sh zig)
#   WASI_SYSROOT  wasi-libc sysroot for C (default /usr)

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
examples="$root/examples"

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

# Compilers write here; install_module then moves each module into place.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Where module $1 (default path $2) goes.
dest_for() {
    if [[ -n $out ]]; then
        echo "$out/$1.wasm"
    else
        echo "$2"
    fi
}

# Replaces $2 by $1 when they differ, atomically: a server or test reading the old
# module never sees half a file.
install_module() {
    local from="$1" to="$2"
    if ! cmp -s "$from" "$to"; then
        cp "$from" "$to.tmp.$$"
        mv -f "$to.tmp.$$" "$to"
    fi
    say "$(printf '%8d bytes  %s' "$(wc -c <"$to")" "${to#"$root"/}")"
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

build_cargo() {
    local dir="$1" crate="$2" dest="$3"
    if [[ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
        say "warning: RUSTFLAGS is set and replaces the examples' -zstack-size=65536"
    fi
    # Cargo reads .cargo/config.toml (target and the 64 KiB stack) from the current
    # directory, so build from inside the project rather than with --manifest-path.
    (cd "$dir" && cargo build --release --quiet)
    install_module "$CARGO_TARGET_DIR/wasm32-wasip1/release/$crate.wasm" "$dest"
}

build_rust() {
    build_cargo "$examples/rust-hello" rust-hello \
        "$(dest_for rust-hello "$examples/rust-hello/rust-hello.wasm")"
}

build_seed() {
    [[ -z $out ]] || return 0 # not a language example: only built in place
    build_cargo "$examples/seed/functions/processor" processor \
        "$examples/seed/functions/processor.wasm"
}

seed_missing() { rust_missing; }

# The host-capability examples (KV, SQLite, host_log) need Rust and C.
build_host() {
    [[ -z $out ]] || return 0 # not language examples: only built in place
    build_cargo "$examples/rust-counter" rust-counter \
        "$examples/rust-counter/rust-counter.wasm"
    build_cargo "$examples/rust-notes" rust-notes "$examples/rust-notes/rust-notes.wasm"
    make -C "$examples/c-log" --quiet OUT="$work/c-log.wasm" "$work/c-log.wasm"
    install_module "$work/c-log.wasm" "$examples/c-log/log.wasm"
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
    local dest
    dest="$(dest_for c-hello "$examples/c-hello/hello.wasm")"
    make -C "$examples/c-hello" --quiet OUT="$work/c.wasm" "$work/c.wasm"
    install_module "$work/c.wasm" "$dest"
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
    local dest go
    dest="$(dest_for go-hello "$examples/go-hello/go-hello.wasm")"
    go="$(go_bin)"
    # GOTOOLCHAIN=local: never download another Go; GOPROXY=off: the example uses
    # only the standard library, so no module may be fetched either.
    (cd "$examples/go-hello" &&
        GOTOOLCHAIN=local GOPROXY=off GOOS=wasip1 GOARCH=wasm \
            "$go" build -trimpath -ldflags=-s -o "$work/go.wasm" .)
    install_module "$work/go.wasm" "$dest"
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
    local dest
    dest="$(dest_for zig-hello "$examples/zig-hello/zig-hello.wasm")"
    find_zig
    # The local cache would otherwise land in the example folder as .zig-cache.
    ZIG_LOCAL_CACHE_DIR="$root/target/toolchains/zig-cache" \
        "${zig_cmd[@]}" build-exe "$examples/zig-hello/main.zig" \
        -target wasm32-wasi -O ReleaseSmall -fstrip --stack 65536 \
        -femit-bin="$work/zig.wasm"
    install_module "$work/zig.wasm" "$dest"
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
    local dest dir="$examples/as-hello"
    dest="$(dest_for as-hello "$dir/as-hello.wasm")"
    (cd "$dir" && node_modules/.bin/asc assembly/index.ts \
        --config node_modules/@assemblyscript/wasi-shim/asconfig.json \
        --optimize --outFile "$work/as.wasm")
    install_module "$work/as.wasm" "$dest"
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
