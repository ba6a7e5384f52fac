//! Requests started from a pre-initialised snapshot (`snapshot` on a route,
//! issue 15): the initialisation runs once, its state is in every request, and
//! nothing else crosses from one request to the next — not what a request
//! wrote, not a random seed. What cannot be shared safely is refused at load.

use crate::isolation::secret_funcs;
use crate::support::{stdout, Scratch, MAX_MEMORY};
use gojinn_runtime::snapshot::snapshot_dir;
use gojinn_runtime::{
    Bounds, LoadError, Runtime, RuntimeOptions, SandboxReset, Snapshot, StdioCalls,
};
use std::path::Path;

/// What the initialisation leaves at 2048, as one i64.
const INIT_MARK: i64 = 0x1417_1a11_5ed0_0001;

/// The module's data segment at 3000 (`segment!`), as one little-endian i64:
/// the snapshot keeps it though wizer re-encodes the data.
const SEGMENT: i64 = i64::from_le_bytes(*b"segment!");

/// Pages a request grows its memory to before writing the secret.
const GROWN_PAGES: i32 = 40;

/// What the initialisation does besides its marks: nothing, or one of the
/// things that make a snapshot unsafe.
#[derive(Clone, Copy)]
enum Init {
    Plain,
    ReadsRandom,
    WritesStdout,
    CallsHost,
}

/// A module with an initialisation (`wizer.initialize` for a command, else a
/// reactor's `_initialize`) that counts its runs at 2056, writes [`INIT_MARK`]
/// at 2048 and grows memory by two pages, marking the last word; and a request
/// entry (`_start` for a command, else `gojinn_handle`) that reads one byte of
/// stdin and counts requests at 2064:
/// - `i`: answers init runs, request count, the mark, memory pages, the last word,
///   the data segment;
/// - `w`: grows to [`GROWN_PAGES`] and writes `isolation`'s secret over all memory past 4096;
/// - `s`: answers how many words of all memory hold the secret, and the mark;
/// - `r`: answers 16 bytes of `random_get`.
fn module(init: Init, command: bool) -> String {
    let extra = match init {
        Init::Plain => "",
        Init::ReadsRandom => "(drop (call $random_get (i32.const 256) (i32.const 16)))",
        Init::WritesStdout => "(call $emit (i32.const 2048) (i32.const 8))",
        Init::CallsHost => "(call $host_log (i32.const 1) (i32.const 2048) (i32.const 8))",
    };
    let (init_name, entry) = if command {
        ("wizer.initialize", "_start")
    } else {
        ("_initialize", "gojinn_handle")
    };
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "gojinn" "host_log" (func $host_log (param i32 i32 i32)))
  (memory (export "memory") 1 {max_pages})
  (data (i32.const 3000) "segment!")
  (func $emit (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $last_word (result i32)
    (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 8)))
  (func (export "{init_name}")
    (i64.store (i32.const 2056) (i64.add (i64.load (i32.const 2056)) (i64.const 1)))
    (i64.store (i32.const 2048) (i64.const {INIT_MARK}))
    (drop (memory.grow (i32.const 2)))
    (i64.store (call $last_word) (i64.const {INIT_MARK}))
    {extra})
  {secret_funcs}
  (func (export "{entry}")
    (local $op i32)
    (i64.store (i32.const 2064) (i64.add (i64.load (i32.const 2064)) (i64.const 1)))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $op (i32.load8_u (i32.const 32)))
    (if (i32.eq (local.get $op) (i32.const 105)) ;; 'i'
      (then
        (i64.store (i32.const 64) (i64.load (i32.const 2056)))
        (i64.store (i32.const 72) (i64.load (i32.const 2064)))
        (i64.store (i32.const 80) (i64.load (i32.const 2048)))
        (i64.store (i32.const 88) (i64.extend_i32_u (memory.size)))
        (i64.store (i32.const 96) (i64.load (call $last_word)))
        (i64.store (i32.const 104) (i64.load (i32.const 3000)))
        (call $emit (i32.const 64) (i32.const 48))))
    (if (i32.eq (local.get $op) (i32.const 119)) ;; 'w'
      (then
        (drop (memory.grow (i32.sub (i32.const {GROWN_PAGES}) (memory.size))))
        (call $fill (i32.const 4096) (i32.mul (memory.size) (i32.const 65536)))))
    (if (i32.eq (local.get $op) (i32.const 115)) ;; 's'
      (then
        (i64.store (i32.const 64) (call $count))
        (i64.store (i32.const 72) (i64.load (i32.const 2048)))
        (call $emit (i32.const 64) (i32.const 16))))
    (if (i32.eq (local.get $op) (i32.const 114)) ;; 'r'
      (then
        (drop (call $random_get (i32.const 128) (i32.const 16)))
        (call $emit (i32.const 128) (i32.const 16)))))
)
"#,
        max_pages = MAX_MEMORY / 65536,
        secret_funcs = secret_funcs(),
    )
}

fn runtime(reset: SandboxReset, cache_dir: Option<&Path>) -> Runtime {
    runtime_checked_by(reset, Bounds::Adaptive, cache_dir)
}

fn runtime_checked_by(reset: SandboxReset, bounds: Bounds, cache_dir: Option<&Path>) -> Runtime {
    Runtime::new(&RuntimeOptions {
        total_slots: 1,
        max_memory_bytes: MAX_MEMORY,
        cache_dir: cache_dir.map(Path::to_path_buf),
        deadlines: true,
        reset,
        fuel: false,
        bounds,
        stdio: StdioCalls::Direct,
    })
    .expect("runtime")
}

fn load(
    rt: &Runtime,
    dir: &Scratch,
    init: Init,
    command: bool,
) -> Result<gojinn_runtime::Function, LoadError> {
    let path = dir.path().join("snap.wat");
    std::fs::write(&path, module(init, command)).expect("write module");
    let mut spec = crate::support::spec(path);
    spec.pool_size = 1;
    spec.snapshot = Snapshot::On;
    rt.load(spec)
}

fn executor() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn words(out: &[u8]) -> Vec<i64> {
    out.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// The resets this kernel can run.
fn resets() -> Vec<SandboxReset> {
    let mut r = vec![SandboxReset::Memset];
    if SandboxReset::detect() == SandboxReset::PagemapScan {
        r.push(SandboxReset::PagemapScan);
    } else {
        eprintln!("this kernel has no PAGEMAP_SCAN: snapshots tested with the memset reset only");
    }
    r
}

#[test]
fn the_initialisation_runs_once_and_its_state_is_in_every_request() {
    let dir = Scratch::new("snapshot-state");
    let rt = runtime(SandboxReset::detect(), None);
    let ex = executor();
    for command in [true, false] {
        let f = load(&rt, &dir, Init::Plain, command).expect("snapshot loads");
        for round in 0..3 {
            let w = words(&stdout(ex.block_on(f.call(b"i".to_vec()))));
            assert_eq!(
                w,
                [1, 1, INIT_MARK, 3, INIT_MARK, SEGMENT],
                "command={command} round {round}: [init runs, requests, mark, pages, \
                 mark in grown page, data segment]"
            );
        }
    }
}

#[test]
fn a_secret_one_request_writes_is_nowhere_in_the_next_one() {
    let dir = Scratch::new("snapshot-isolation");
    let ex = executor();
    for (reset, bounds) in resets()
        .into_iter()
        .flat_map(|r| [(r, Bounds::Guard), (r, Bounds::Checked)])
    {
        let rt = runtime_checked_by(reset, bounds, None);
        let f = load(&rt, &dir, Init::Plain, true).expect("snapshot loads");
        assert_eq!(f.bounds(), bounds);
        for round in 0..3 {
            stdout(ex.block_on(f.call(b"w".to_vec())));
            let w = words(&stdout(ex.block_on(f.call(b"s".to_vec()))));
            assert_eq!(
                w,
                [0, INIT_MARK],
                "{} reset, {} bounds, round {round}: [words holding the secret, init mark]",
                reset.name(),
                bounds.name()
            );
        }
    }
}

#[test]
fn two_requests_from_one_snapshot_read_different_random_bytes() {
    let dir = Scratch::new("snapshot-random");
    let rt = runtime(SandboxReset::detect(), None);
    let f = load(&rt, &dir, Init::Plain, true).expect("snapshot loads");
    let ex = executor();
    let draws: Vec<Vec<u8>> = (0..4)
        .map(|_| stdout(ex.block_on(f.call(b"r".to_vec()))))
        .collect();
    for (i, d) in draws.iter().enumerate() {
        assert_eq!(d.len(), 16);
        for e in &draws[i + 1..] {
            assert_ne!(d, e, "two requests drew the same 16 random bytes");
        }
    }
}

/// The reason a refused snapshot gives.
fn refusal(init: Init) -> String {
    let dir = Scratch::new("snapshot-refused");
    let rt = runtime(SandboxReset::detect(), None);
    match load(&rt, &dir, init, true) {
        Err(e @ LoadError::Snapshot { .. }) => e.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("snapshot accepted"),
    }
}

#[test]
fn an_initialisation_that_reads_random_bytes_is_refused() {
    let why = refusal(Init::ReadsRandom);
    assert!(why.contains("random_get"), "{why}");
    assert!(why.contains("wizer.initialize"), "{why}");
}

#[test]
fn an_initialisation_that_writes_stdout_is_refused() {
    let why = refusal(Init::WritesStdout);
    assert!(why.contains("stdout"), "{why}");
}

#[test]
fn an_initialisation_that_calls_the_host_is_refused() {
    let why = refusal(Init::CallsHost);
    assert!(why.contains("host_log"), "{why}");
}

#[test]
fn a_module_without_an_initialisation_is_refused() {
    let dir = Scratch::new("snapshot-no-init");
    let path = dir.path().join("plain.wat");
    std::fs::write(
        &path,
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .expect("write");
    let mut spec = crate::support::spec(path);
    spec.snapshot = Snapshot::On;
    let rt = runtime(SandboxReset::detect(), None);
    let err = rt.load(spec).err().expect("refused").to_string();
    assert!(
        err.contains("no initialisation function") && err.contains("wizer.initialize"),
        "{err}"
    );
}

#[test]
fn a_snapshot_is_cached_on_disk_and_keyed_by_what_initialisation_sees() {
    let dir = Scratch::new("snapshot-cache");
    let cache = dir.path().join("cache");
    let snapshots = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(snapshot_dir(&cache).expect("named"))
            .map(|d| d.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let path = dir.path().join("snap.wat");
    std::fs::write(&path, module(Init::Plain, true)).expect("write module");
    let spec = |env: &str| {
        let mut s = crate::support::spec(path.clone());
        s.snapshot = Snapshot::On;
        s.env = vec![("MODE".to_owned(), env.to_owned())];
        s
    };
    let ex = executor();
    let rt = runtime(SandboxReset::detect(), Some(&cache));
    rt.load(spec("a")).expect("first load");
    let first = snapshots();
    assert_eq!(first.len(), 1, "{first:?}");
    // Another runtime (a restart) finds it: still one entry.
    let rt2 = runtime(SandboxReset::detect(), Some(&cache));
    rt2.load(spec("a")).expect("second load");
    assert_eq!(snapshots(), first);
    // The environment is part of what initialisation sees: a second entry.
    rt2.load(spec("b")).expect("load with another environment");
    assert_eq!(snapshots().len(), 2);
    // And the cached file is what a load uses: replace it with the snapshot of
    // a module whose initialisation leaves another mark.
    let other = module(Init::Plain, true).replace(&INIT_MARK.to_string(), "7");
    let other_path = dir.path().join("other.wat");
    std::fs::write(&other_path, other).expect("write");
    let other_cache = dir.path().join("other-cache");
    let rt3 = runtime(SandboxReset::detect(), Some(&other_cache));
    let mut s = crate::support::spec(other_path);
    s.snapshot = Snapshot::On;
    s.env = vec![("MODE".to_owned(), "a".to_owned())];
    rt3.load(s).expect("other module");
    let made = std::fs::read_dir(snapshot_dir(&other_cache).expect("named"))
        .expect("other snapshots")
        .next()
        .expect("one")
        .expect("entry")
        .path();
    std::fs::copy(made, &first[0]).expect("replace the cached snapshot");
    let f = runtime(SandboxReset::detect(), Some(&cache))
        .load(spec("a"))
        .expect("load from the replaced entry");
    let w = words(&stdout(ex.block_on(f.call(b"i".to_vec()))));
    assert_eq!(w[2], 7, "the load used the cached snapshot: {w:?}");
}
