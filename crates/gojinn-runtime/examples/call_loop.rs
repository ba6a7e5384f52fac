//! Calls one module N times in a loop on one thread, for instruction-count
//! profiling that machine noise does not disturb:
//!
//! ```text
//! cargo build --release -p gojinn-runtime --example call_loop
//! valgrind --tool=callgrind target/release/examples/call_loop MODULE N
//! ```
//!
//! Two runs with different N give the per-call instruction count as the
//! difference of their totals divided by the difference of N. A third argument,
//! `--no-deadlines`, runs on an engine without deadlines (see
//! `RuntimeOptions::deadlines`), so that the two counts give their cost free of
//! machine noise.

use gojinn_runtime::{
    FunctionSpec, Runtime, RuntimeOptions, DEFAULT_MAX_STDERR_BYTES, DEFAULT_QUEUE_WAIT,
};
use std::path::PathBuf;
use std::time::Duration;

const REQUEST: &[u8] = br#"{"method":"GET","uri":"/rust/hello","headers":{},"body":"","trace_id":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(module), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: call_loop MODULE N [--no-deadlines]");
        std::process::exit(2);
    };
    let n: u32 = n.parse().expect("N is a number");
    let deadlines = match args.next().as_deref() {
        None => true,
        Some("--no-deadlines") => false,
        Some(other) => {
            eprintln!("unknown argument `{other}`; usage: call_loop MODULE N [--no-deadlines]");
            std::process::exit(2);
        }
    };
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
        capabilities: None,
        mounts: Vec::new(),
        signature: None,
    };
    let options = RuntimeOptions {
        cache_dir: None,
        deadlines,
        ..RuntimeOptions::for_functions([&spec])
    };
    let runtime = Runtime::new(&options).expect("engine");
    let function = runtime.load(spec).expect("module loads");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut ok = 0u32;
    for _ in 0..n {
        let outcome = rt.block_on(function.call(REQUEST.to_vec()));
        ok += u32::from(outcome.result.is_ok());
    }
    println!("{ok}/{n} calls answered");
}
