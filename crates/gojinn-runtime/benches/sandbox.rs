//! The in-process cost of one sandbox: instantiate from the pre-linked module, run
//! the guest on one request, drop the store. No HTTP, no logging, one thread.
//!
//! Run with `cargo bench -p gojinn-runtime --bench sandbox` after
//! `scripts/build-examples.sh`; `bench/run.sh` runs it when it is in place and
//! reports the median of each function. The benchmark ids (`sandbox/rust-hello`, …)
//! are what `bench/run.sh` reads back from `target/criterion/`, so keep them.
//!
//! The guests are the shipped examples, so the figure follows what our templates
//! and SDK produce (stack size, allocator, memory size), not a hand-tuned module.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gojinn_runtime::{
    FunctionSpec, Runtime, RuntimeOptions, Snapshot, DEFAULT_MAX_STDERR_BYTES, DEFAULT_QUEUE_WAIT,
};
use std::path::PathBuf;
use std::time::Duration;

/// What gojinn writes on stdin for wrk's request (`GET /rust/hello`, only a `Host`
/// header, which functions do not see), so the guest parses the real input.
const REQUEST: &[u8] = br#"{"method":"GET","uri":"/rust/hello","headers":{},"body":"","trace_id":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;

/// The example modules, relative to the repository root, and a piece of the
/// response each must print (checked once before timing, so a broken guest fails
/// the bench instead of timing a trap).
const GUESTS: [(&str, &str, &str); 4] = [
    (
        "rust-hello",
        "examples/rust-hello/rust-hello.wasm",
        "hello from rust",
    ),
    ("c-hello", "examples/c-hello/hello.wasm", "hello from c"),
    (
        "wat-hello",
        "examples/wat-hello/hello.wat",
        "hello from wat",
    ),
    // The same as `rust-hello` on an engine without deadlines: no epoch checks
    // compiled in and no timer per call. The difference is what deadlines cost.
    (
        "rust-hello-no-deadlines",
        "examples/rust-hello/rust-hello.wasm",
        "hello from rust",
    ),
];

/// Route settings of the benchmark's gojinn rows (bench/run.sh): deadlines on, as
/// in production, so their cost is part of the figure.
fn spec(module: PathBuf) -> FunctionSpec {
    FunctionSpec {
        module,
        timeout: Duration::from_secs(2),
        memory_limit: 64_000_000,
        env: Vec::new(),
        args: Vec::new(),
        pool_size: 64,
        max_output_bytes: 16 << 20,
        max_stderr_bytes: DEFAULT_MAX_STDERR_BYTES,
        queue_wait: DEFAULT_QUEUE_WAIT,
        fuel: None,
        capabilities: None,
        mounts: Vec::new(),
        snapshot: Snapshot::Off,
        signature: None,
    }
}

fn sandbox(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // One thread, as a single request sees it; `call` needs tokio's timer.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("sandbox");
    for (name, module, expect) in GUESTS {
        let spec = spec(root.join(module));
        assert!(
            spec.module.is_file(),
            "`{}` is missing: run scripts/build-examples.sh first",
            spec.module.display()
        );
        // Compile time is not what is measured here, so skip the on-disk cache.
        let options = RuntimeOptions {
            cache_dir: None,
            deadlines: !name.ends_with("-no-deadlines"),
            ..RuntimeOptions::for_functions([&spec])
        };
        let runtime = Runtime::new(&options).expect("engine");
        let function = runtime.load(spec).expect("module loads");

        let outcome = rt.block_on(function.call(REQUEST.to_vec()));
        let stdout = outcome.result.expect("the guest answers");
        assert!(
            String::from_utf8_lossy(&stdout).contains(expect),
            "{name} answered {:?}",
            String::from_utf8_lossy(&stdout)
        );

        group.bench_function(name, |b| {
            b.iter_batched(
                || REQUEST.to_vec(),
                |stdin| {
                    let outcome = rt.block_on(function.call(stdin));
                    std::hint::black_box(outcome.result.is_ok())
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, sandbox);
criterion_main!(benches);
