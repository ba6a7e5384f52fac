//! Nothing one call writes is visible to the next, whichever way the pool slot
//! is reset between them (issue 15): request 1 writes a secret across its memory
//! (the data segment, the first page, pages it grew), request 2 on the same slot
//! scans all of its memory for it.

use crate::support::{stdout, Scratch, MAX_MEMORY};
use gojinn_runtime::{Bounds, Runtime, RuntimeOptions, SandboxReset, StdioCalls};

/// The secret request 1 writes, as one little-endian i64.
pub(crate) const SECRET: i64 = 0x5ec2_e75e_c2e7_5ec2;

/// Pages request 1 grows its memory to: past the 1 MiB that the `memset` reset
/// keeps resident, so both that prefix and the `madvise`d rest are checked.
const GROWN_PAGES: i32 = 40;

/// WAT functions over memory: `$fill (from, to)` writes [`SECRET`] into every
/// 8-byte word of `[from, to)`; `$count` answers how many words of the whole
/// memory hold it.
pub(crate) fn secret_funcs() -> String {
    format!(
        r#"(func $fill (param $from i32) (param $to i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
        (i64.store (local.get $from) (i64.const {SECRET}))
        (local.set $from (i32.add (local.get $from) (i32.const 8)))
        (br $next))))
  (func $count (result i64)
    (local $at i32) (local $end i32) (local $found i64)
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (if (i64.eq (i64.load (local.get $at)) (i64.const {SECRET}))
          (then (local.set $found (i64.add (local.get $found) (i64.const 1)))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $next)))
    (local.get $found))"#
    )
}

/// A WASI command that reads one byte of stdin: `w` writes [`SECRET`] into every
/// 8-byte word of pages 1.. of a memory grown to [`GROWN_PAGES`], over its data
/// segment and after the scratch words of page 0; `s` answers three i64s: how
/// many words of its whole memory hold the secret, its size in pages, and
/// whether the data segment still holds its original bytes (1) or not (0).
fn module() -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 {max_pages})
  (data (i32.const 1024) "original")
  {secret_funcs}
  (func (export "_start")
    ;; iovec at 0: one byte into 32
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 119)) ;; 'w'
      (then
        (drop (memory.grow (i32.sub (i32.const {GROWN_PAGES}) (memory.size))))
        (call $fill (i32.const 1024) (i32.mul (memory.size) (i32.const 65536)))
        (return)))
    ;; 's': the answer goes at 64..88, written after the count so the count
    ;; never sees it.
    (i64.store (i32.const 64) (call $count))
    (i64.store (i32.const 72) (i64.extend_i32_u (memory.size)))
    (i64.store (i32.const 80)
      (i64.extend_i32_u (i64.eq (i64.load (i32.const 1024)) (i64.const 0x6c616e696769726f))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 24))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
"#,
        max_pages = MAX_MEMORY / 65536,
        secret_funcs = secret_funcs(),
    )
}

/// Writes on one call and scans on the next, on an engine with one pool slot
/// (so the second call gets the slot the first one dirtied) reset by `reset`,
/// its code checking memory accesses by `bounds`.
fn nothing_survives(reset: SandboxReset, bounds: Bounds) {
    let runtime = Runtime::new(&RuntimeOptions {
        total_slots: 1,
        max_memory_bytes: MAX_MEMORY,
        cache_dir: None,
        deadlines: true,
        reset,
        fuel: false,
        bounds,
        stdio: StdioCalls::Direct,
    })
    .expect("runtime");
    assert_eq!(runtime.reset(), reset);
    let dir = Scratch::new("isolation");
    let path = dir.path().join("secret.wat");
    std::fs::write(&path, module()).expect("write module");
    let mut spec = crate::support::spec(path);
    spec.pool_size = 1;
    let function = runtime.load(spec).expect("module loads");
    assert_eq!(function.bounds(), bounds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");

    for round in 0..3 {
        stdout(rt.block_on(function.call(b"w".to_vec())));
        let out = stdout(rt.block_on(function.call(b"s".to_vec())));
        let words: Vec<i64> = out
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(words.len(), 3, "round {round}: answer {out:?}");
        assert_eq!(
            words[0],
            0,
            "round {round}, {} reset, {} bounds: the next call found the secret in {} words \
             of its memory",
            reset.name(),
            bounds.name(),
            words[0]
        );
        assert_eq!(
            words[1], 1,
            "round {round}: memory is back to its declared page"
        );
        assert_eq!(
            words[2], 1,
            "round {round}: the data segment holds `original` again"
        );
    }
}

#[test]
fn a_memset_reset_leaves_nothing_for_the_next_call() {
    nothing_survives(SandboxReset::Memset, Bounds::Guard);
}

#[test]
fn a_memset_reset_leaves_nothing_for_the_next_call_with_explicit_checks() {
    nothing_survives(SandboxReset::Memset, Bounds::Checked);
}

#[test]
fn a_pagemap_scan_reset_leaves_nothing_for_the_next_call() {
    if SandboxReset::detect() != SandboxReset::PagemapScan {
        // Runtime::new refuses PagemapScan here; what serves is the memset reset,
        // tested above. Say so in the test output rather than pass silently.
        eprintln!("this kernel has no PAGEMAP_SCAN: only the memset reset is in use and tested");
        assert!(Runtime::new(&RuntimeOptions {
            total_slots: 1,
            max_memory_bytes: MAX_MEMORY,
            cache_dir: None,
            deadlines: true,
            reset: SandboxReset::PagemapScan,
            fuel: false,
            bounds: Bounds::Guard,
            stdio: StdioCalls::Direct,
        })
        .is_err());
        return;
    }
    nothing_survives(SandboxReset::PagemapScan, Bounds::Guard);
    nothing_survives(SandboxReset::PagemapScan, Bounds::Checked);
}
