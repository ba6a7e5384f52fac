//! Calls one module N times in a loop on one thread, for instruction-count
//! profiling that machine noise does not disturb:
//!
//! ```text
//! cargo build --release -p gojinn-runtime --example call_loop
//! valgrind --tool=callgrind target/release/examples/call_loop MODULE N
//! ```
//!
//! Two runs with different N give the per-call instruction count as the
//! difference of their totals divided by the difference of N. Outside valgrind
//! it also prints the wall-clock µs per call of the loop (`us_per_call=`), after
//! one call that warms the pool slot (`bench/run.sh` reads that), the thread's CPU
//! µs per call (`cpu_us_per_call=`, user and kernel, steadier on a shared machine)
//! and how much the first call made resident (`first_call_rss_kib=`). A third argument,
//! `--no-deadlines`, runs on an engine without deadlines (see
//! `RuntimeOptions::deadlines`), so that the two counts give their cost free of
//! machine noise; `--reset=memset` or `--reset=pagemap_scan` picks how the pool
//! slot is reset between calls (default: what the kernel allows, as the server);
//! `--snapshot` starts every call from a pre-initialised snapshot (the route
//! option), and `--snapshot-ignoring-randomness` does so even when the module's
//! initialisation reads random bytes, which the server refuses: it measures what a
//! snapshot would save such a module (Go), not something to serve. `--bounds=guard`,
//! `--bounds=checked` or `--bounds=adaptive` (the default, as the server) picks how
//! guest memory accesses are checked (`Bounds`); the loop starts after adaptive
//! bounds have settled, and prints what they settled on (`bounds=`) and how many
//! times a call grew memory (`grows_per_call=`). `--stdio=wasi` leaves every
//! stdio call to wasmtime-wasi (`StdioCalls::Wasi`). `--idle-us=U` sleeps U µs
//! after each measured call, so that the core idles between calls as a server's
//! does between requests (the thread's CPU then includes what sleeping and waking
//! cost it; docs/performance.md).

use gojinn_runtime::{
    default_cache_dir, Bounds, FunctionSpec, Runtime, RuntimeOptions, SandboxReset, Snapshot,
    StdioCalls, DEFAULT_MAX_STDERR_BYTES, DEFAULT_QUEUE_WAIT,
};
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str =
    "usage: call_loop MODULE N [--no-deadlines] [--reset=memset|--reset=pagemap_scan] [--snapshot|--snapshot-ignoring-randomness] [--bounds=guard|checked|adaptive] [--stdio=wasi] [--idle-us=U]";

/// Calls made after the first, before measuring.
const WARM_CALLS: u32 = 32;

const REQUEST: &[u8] = br#"{"method":"GET","uri":"/rust/hello","headers":{},"body":"","trace_id":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(module), Some(n)) = (args.next(), args.next()) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let n: u32 = n.parse().expect("N is a number");
    let mut deadlines = true;
    let mut reset = SandboxReset::detect();
    let mut snapshot = Snapshot::Off;
    let mut bounds = Bounds::Adaptive;
    let mut stdio = StdioCalls::Direct;
    let mut idle = None;
    for arg in args {
        match arg.as_str() {
            "--no-deadlines" => deadlines = false,
            "--reset=memset" => reset = SandboxReset::Memset,
            "--reset=pagemap_scan" => reset = SandboxReset::PagemapScan,
            "--snapshot" => snapshot = Snapshot::On,
            "--bounds=guard" => bounds = Bounds::Guard,
            "--bounds=checked" => bounds = Bounds::Checked,
            "--bounds=adaptive" => bounds = Bounds::Adaptive,
            "--stdio=wasi" => stdio = StdioCalls::Wasi,
            "--snapshot-ignoring-randomness" => snapshot = Snapshot::IgnoreRandomness,
            other => match other.strip_prefix("--idle-us=").map(str::parse) {
                Some(Ok(us)) => idle = Some(Duration::from_micros(us)),
                Some(Err(_)) => {
                    eprintln!("`{other}`: the µs to idle is a whole number; {USAGE}");
                    std::process::exit(2);
                }
                None => {
                    eprintln!("unknown argument `{other}`; {USAGE}");
                    std::process::exit(2);
                }
            },
        }
    }
    let spec = FunctionSpec {
        module: PathBuf::from(module),
        timeout: Duration::from_secs(2),
        memory_limit: 64_000_000,
        env: Vec::new(),
        args: Vec::new(),
        pool_size: 1,
        max_output_bytes: 16 << 20,
        max_stderr_bytes: DEFAULT_MAX_STDERR_BYTES,
        queue_wait: DEFAULT_QUEUE_WAIT,
        fuel: None,
        capabilities: None,
        mounts: Vec::new(),
        snapshot,
        signature: None,
    };
    // The compile cache of `$GOJINN_CACHE_DIR` when set (bench/run.sh shares its
    // own), else none: a profile should not count reading a cache it filled.
    let cache_dir = std::env::var_os("GOJINN_CACHE_DIR").and_then(|_| default_cache_dir());
    let options = RuntimeOptions {
        cache_dir,
        deadlines,
        reset,
        bounds,
        stdio,
        ..RuntimeOptions::for_functions([&spec])
    };
    let runtime = Runtime::new(&options).expect("engine");
    let function = runtime.load(spec).expect("module loads");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    // The first call of a fresh slot pays for its page faults once; a server's
    // calls mostly find a warm one.
    let rss_before = rss_kib();
    let warm = rt.block_on(function.call(REQUEST.to_vec()));
    if let Err(fault) = warm.result {
        eprintln!("the module does not answer: {fault}");
        std::process::exit(1);
    }
    // What the first call made resident: the pages the guest touched in its
    // slot (memory, stack, tables), plus what the host allocated for the call.
    let first_call_kib = rss_kib().saturating_sub(rss_before);
    // Enough calls for adaptive bounds to decide, then until a move's code is
    // compiled: what is measured is what a server settles on.
    for _ in 0..WARM_CALLS {
        let _ = rt.block_on(function.call(REQUEST.to_vec()));
    }
    let bounds = rt.block_on(function.settled_bounds());
    let mut ok = 0u32;
    let mut grows = 0u64;
    let cpu_started = thread_cpu_ns();
    let started = std::time::Instant::now();
    for _ in 0..n {
        let outcome = rt.block_on(function.call(REQUEST.to_vec()));
        ok += u32::from(outcome.result.is_ok());
        grows += u64::from(outcome.memory_grows);
        if let Some(idle) = idle {
            std::thread::sleep(idle);
        }
    }
    let per_call = started.elapsed().as_secs_f64() * 1e6 / f64::from(n.max(1));
    // CPU time of this thread (user and kernel): unlike the wall clock it does
    // not count the time other processes of a shared machine held the core.
    let cpu_per_call =
        thread_cpu_ns().saturating_sub(cpu_started) as f64 / 1e3 / f64::from(n.max(1));
    println!(
        "{ok}/{n} calls answered us_per_call={per_call:.1} cpu_us_per_call={cpu_per_call:.1} \
         first_call_rss_kib={first_call_kib} grows_per_call={:.1} bounds={}",
        grows as f64 / f64::from(n.max(1)),
        bounds.name()
    );
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`; 0 where
/// it cannot say).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// This process's resident set in KiB (0 where `/proc` cannot say).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
