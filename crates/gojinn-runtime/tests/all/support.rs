//! What the tests share: a scratch directory, a runtime, `.wat` modules built
//! around a `_start` body, and a TCP peer that holds a host call open.

use gojinn_runtime::{
    Bounds, CallOutcome, Function, FunctionSpec, HostFn, Runtime, RuntimeOptions, SandboxReset,
    Snapshot, StdioCalls, DEFAULT_MAX_STDERR_BYTES, DEFAULT_QUEUE_WAIT, HOST_FUNCTIONS,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A directory under the system temp dir, removed on drop.
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "gojinn-runtime-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Linear memory the tests' runtime may give one sandbox.
pub(crate) const MAX_MEMORY: u64 = 4 << 20;

/// A runtime with deadlines on and no compile cache.
pub(crate) fn runtime() -> Runtime {
    runtime_with_fuel(false)
}

/// [`runtime`], with fuel counted (as when some route has a `fuel_limit`).
pub(crate) fn runtime_with_fuel(fuel: bool) -> Runtime {
    runtime_with(fuel, StdioCalls::Direct)
}

/// [`runtime`], with fuel counted or not and `stdio` answering stdio calls.
pub(crate) fn runtime_with(fuel: bool, stdio: StdioCalls) -> Runtime {
    Runtime::new(&RuntimeOptions {
        total_slots: 8,
        max_memory_bytes: MAX_MEMORY,
        cache_dir: None,
        deadlines: true,
        reset: SandboxReset::detect(),
        fuel,
        bounds: Bounds::Adaptive,
        stdio,
    })
    .expect("runtime")
}

/// A spec for `module` with generous limits; tests narrow what they test.
pub(crate) fn spec(module: PathBuf) -> FunctionSpec {
    FunctionSpec {
        module,
        timeout: Duration::from_secs(10),
        memory_limit: MAX_MEMORY,
        env: Vec::new(),
        args: Vec::new(),
        pool_size: 4,
        max_output_bytes: 1 << 20,
        max_stderr_bytes: DEFAULT_MAX_STDERR_BYTES,
        queue_wait: DEFAULT_QUEUE_WAIT,
        fuel: None,
        signature: None,
        capabilities: None,
        mounts: Vec::new(),
        snapshot: Snapshot::Off,
    }
}

/// Writes `wat` to `dir` and loads it with the spec `tune` adjusts.
pub(crate) fn load(
    rt: &Runtime,
    dir: &Scratch,
    wat: &str,
    tune: impl FnOnce(&mut FunctionSpec),
) -> Function {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir
        .path()
        .join(format!("m{}.wat", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, wat).expect("write module");
    let mut s = spec(path);
    tune(&mut s);
    match rt.load(s) {
        Ok(f) => f,
        Err(e) => panic!("module does not load: {e}\n{wat}"),
    }
}

/// A WASI command around `start` (the body of `_start`), with every `gojinn`
/// function imported as `$host_…`, one page of memory, `data` segments and
/// helpers:
/// - `$emit (ptr len)`: writes `[ptr, ptr+len)` to stdout;
/// - `$emit_to (fd ptr len)`: the same to any descriptor;
/// - `$emit_i64 (v)`: writes `v` as 8 little-endian bytes to stdout (see [`i64s`]).
///
/// Addresses 0..64 are the helpers' scratch space; tests put their data at 1024+.
pub(crate) fn command(data: &[(u32, &[u8])], start: &str) -> String {
    command_importing(HOST_FUNCTIONS, data, start)
}

/// [`command`], importing `functions` (each bound to `$name`) instead of every
/// table entry: a module may import only one signature of a name.
pub(crate) fn command_importing<'a>(
    functions: impl IntoIterator<Item = &'a HostFn>,
    data: &[(u32, &[u8])],
    start: &str,
) -> String {
    let imports: String = functions
        .into_iter()
        .map(|f| format!("  {}\n", f.wat_import()))
        .collect();
    let data: String = data
        .iter()
        .map(|(at, bytes)| format!("  (data (i32.const {at}) \"{}\")\n", wat_bytes(bytes)))
        .collect();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
{imports}  (memory (export "memory") 1)
{data}  (func $emit_to (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $emit (param $ptr i32) (param $len i32)
    (call $emit_to (i32.const 1) (local.get $ptr) (local.get $len)))
  (func $emit_i64 (param $v i64)
    (i64.store (i32.const 16) (local.get $v))
    (call $emit (i32.const 16) (i32.const 8)))
  (func (export "_start")
{start}
  )
)
"#
    )
}

/// `bytes` as a `.wat` string literal body.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The stdout of a call that must have succeeded.
pub(crate) fn stdout(outcome: CallOutcome) -> Vec<u8> {
    match outcome.result {
        Ok(out) => out,
        Err(fault) => panic!(
            "call faulted: {fault}; stderr: {}",
            String::from_utf8_lossy(&outcome.stderr)
        ),
    }
}

/// Stdout as the sequence of `$emit_i64` values.
pub(crate) fn i64s(out: &[u8]) -> Vec<i64> {
    assert_eq!(out.len() % 8, 0, "stdout is not whole i64s: {out:?}");
    out.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// A bounded wait for a test that would otherwise hang when what it tests breaks.
pub(crate) async fn within<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

/// A TCP listener on a free loopback port that host calls can be pointed at.
pub(crate) struct Peer {
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) port: u16,
}

impl Peer {
    pub(crate) async fn bind() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        Peer { listener, port }
    }

    /// The grant `host_http_request` needs to reach this peer.
    pub(crate) fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The JSON request `host_http_request` takes, for a GET of this peer.
    pub(crate) fn request_json(&self) -> Vec<u8> {
        format!(r#"{{"url": "http://127.0.0.1:{}/"}}"#, self.port).into_bytes()
    }
}
