//! The runtime's own `fd_read` and `fd_write` (`StdioCalls::Direct`) against
//! wasmtime-wasi's (`StdioCalls::Wasi`): every test runs its guest under both
//! and expects the same, stated, outcome — WASI's errors for bad pointers and
//! descriptors, nothing consumed or written by a call that fails, and stdio
//! that follows a closed or renumbered descriptor.

use crate::support::{i64s, load, runtime_with, stdout, Scratch};
use gojinn_runtime::{CallOutcome, Fault, StdioCalls};

/// WASI errno values the guests report.
const BADF: i64 = 8;
const INTR: i64 = 27;

/// A guest around `start` with the four stdio imports and two helpers:
/// - `$write (fd ptr len) -> errno`: one `fd_write` of `[ptr, ptr+len)`;
/// - `$read (ptr len) -> n`: one `fd_read` of stdin through an empty I/O
///   vector and then `[ptr, ptr+len)`; the count read, or `-errno`;
/// - `$errno (e)`: writes `e` to stdout as 8 little-endian bytes.
///
/// Memory: 0..16 `$write`'s vector, 16..24 `$errno`'s bytes, 96 the result
/// slot, 100..116 a two-entry vector array, 300.. a read buffer, 1024.. `data`.
fn guest(data: &str, start: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{data}")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
  (func $read (param $ptr i32) (param $len i32) (result i32)
    (local $e i32)
    (i32.store (i32.const 100) (i32.const 200))
    (i32.store (i32.const 104) (i32.const 0))
    (i32.store (i32.const 108) (local.get $ptr))
    (i32.store (i32.const 112) (local.get $len))
    (local.set $e (call $fd_read (i32.const 0) (i32.const 100) (i32.const 2) (i32.const 96)))
    (if (result i32) (local.get $e)
      (then (i32.sub (i32.const 0) (local.get $e)))
      (else (i32.load (i32.const 96)))))
  (func $errno (param $e i32)
    (i64.store (i32.const 16) (i64.extend_i32_s (local.get $e)))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 8))))
  ;; One I/O vector at 100: {{ buf, len }}.
  (func $iov (param $buf i32) (param $len i32)
    (i32.store (i32.const 100) (local.get $buf))
    (i32.store (i32.const 104) (local.get $len)))
  (func (export "_start") (local $n i32) (local $eofs i32)
{start}
  )
)
"#
    )
}

/// Runs `wat` with `stdin` under both kinds of stdio calls, checks they agree
/// (result, stdout, stderr) and returns the outcome.
async fn both(tag: &str, wat: &str, stdin: &[u8], cap: usize) -> CallOutcome {
    let dir = Scratch::new(tag);
    let call = |stdio| {
        let rt = runtime_with(false, stdio);
        let f = load(&rt, &dir, wat, |s| s.max_output_bytes = cap);
        // The runtime lives as long as the call (its epoch ticker).
        async move {
            let outcome = f.call(stdin.to_vec()).await;
            drop(rt);
            outcome
        }
    };
    let direct = call(StdioCalls::Direct).await;
    let wasi = call(StdioCalls::Wasi).await;
    assert_eq!(
        (&direct.result, &direct.stderr),
        (&wasi.result, &wasi.stderr),
        "{tag}: direct and WASI's stdio calls differ"
    );
    direct
}

/// Stdin read 3 bytes at a time through an empty first vector: every byte in
/// order, then end of file, and end of file again.
#[tokio::test]
async fn stdin_comes_in_pieces_then_end_of_file() {
    let wat = guest(
        "[]",
        "(loop $again
           (local.set $n (call $read (i32.const 300) (i32.const 3)))
           (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 1)))
           (if (i32.gt_s (local.get $n) (i32.const 0))
             (then (drop (call $write (i32.const 1) (i32.const 300) (local.get $n)))))
           (drop (call $write (i32.const 1) (i32.const 1025) (i32.const 1)))
           (if (i32.eqz (local.get $n))
             (then (local.set $eofs (i32.add (local.get $eofs) (i32.const 1)))))
           (br_if $again (i32.and (i32.ge_s (local.get $n) (i32.const 0))
                                  (i32.lt_u (local.get $eofs) (i32.const 2)))))",
    );
    let outcome = both("stdio-pieces", &wat, b"hello world", 1 << 20).await;
    assert_eq!(
        String::from_utf8_lossy(&stdout(outcome)),
        "[hel][lo ][wor][ld][][]"
    );
}

/// What a bad call gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gets {
    /// This errno.
    Errno(i64),
    /// A trap: wasmtime-wasi ends the call when a pointer it must follow is
    /// outside memory or misaligned.
    Trap,
}

/// Calls with bad pointers and descriptors get what WASI gives them, and one
/// that returns an error consumes nothing: stdin is whole afterwards and stdout
/// holds only the error code.
#[tokio::test]
async fn bad_calls_get_what_wasi_gives_and_change_nothing() {
    use Gets::{Errno, Trap};
    let calls = [
        // The vector array past the end of memory.
        (
            "(call $fd_read (i32.const 0) (i32.const 65536) (i32.const 1) (i32.const 96))",
            Trap,
        ),
        // A misaligned vector array.
        (
            "(call $fd_read (i32.const 0) (i32.const 102) (i32.const 1) (i32.const 96))",
            Trap,
        ),
        // A buffer that runs past the end of memory.
        (
            "(call $iov (i32.const 65530) (i32.const 100))
          (call $fd_read (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 96))",
            Trap,
        ),
        // A misaligned count slot.
        (
            "(call $iov (i32.const 300) (i32.const 4))
          (call $fd_read (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 97))",
            Trap,
        ),
        // A count slot past the end of memory.
        (
            "(call $iov (i32.const 300) (i32.const 4))
          (call $fd_read (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 65534))",
            Trap,
        ),
        // Descriptors that are not open, or not open that way.
        (
            "(call $fd_read (i32.const 5) (i32.const 100) (i32.const 1) (i32.const 96))",
            Errno(BADF),
        ),
        (
            "(call $fd_write (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 96))",
            Errno(BADF),
        ),
        (
            "(call $fd_read (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 96))",
            Errno(BADF),
        ),
        // Only empty vectors while stdin has bytes: WASI says "interrupted".
        (
            "(call $iov (i32.const 300) (i32.const 0))
          (call $fd_read (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 96))",
            Errno(INTR),
        ),
        // A write whose buffer runs past the end of memory.
        (
            "(call $iov (i32.const 65530) (i32.const 100))
          (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 96))",
            Trap,
        ),
        // A write with a misaligned count slot.
        (
            "(call $iov (i32.const 1024) (i32.const 2))
          (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 97))",
            Trap,
        ),
        // A vector array whose first (empty) entry is the last 8 bytes of memory.
        (
            "(call $fd_write (i32.const 1) (i32.const 65528) (i32.const 2) (i32.const 96))",
            Trap,
        ),
    ];
    let input = b"the whole request";
    let mut got = Vec::new();
    for (i, (call, _)) in calls.iter().enumerate() {
        let start = format!(
            "(call $errno {call})
             (loop $again
               (local.set $n (call $read (i32.const 300) (i32.const 4)))
               (if (i32.gt_s (local.get $n) (i32.const 0))
                 (then (drop (call $write (i32.const 1) (i32.const 300) (local.get $n)))))
               (br_if $again (i32.gt_s (local.get $n) (i32.const 0))))"
        );
        let outcome = both(
            &format!("stdio-bad-{i}"),
            &guest("ok", &start),
            input,
            1 << 20,
        )
        .await;
        got.push(match outcome.result {
            Err(Fault::Trap(_)) => Trap,
            Ok(out) => {
                let (code, rest) = out.split_at(8);
                assert_eq!(rest, input, "call {i}: stdin after it");
                Errno(i64s(code)[0])
            }
            Err(other) => panic!("call {i}: {other}"),
        });
    }
    let expected: Vec<Gets> = calls.iter().map(|(_, e)| *e).collect();
    assert_eq!(got, expected);
}

/// After `fd_renumber(2, 1)` a write to 1 goes to stderr, and 2 is closed.
#[tokio::test]
async fn stdio_follows_a_renumbered_descriptor() {
    let wat = guest(
        "to stderr",
        "(call $errno (call $fd_renumber (i32.const 2) (i32.const 1)))
         (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 9)))
         (call $errno (call $write (i32.const 2) (i32.const 1024) (i32.const 9)))",
    );
    let outcome = both("stdio-renumbered", &wat, b"", 1 << 20).await;
    // `$errno` writes to descriptor 1, which is stderr once renumbered.
    let mut stderr = 0i64.to_le_bytes().to_vec();
    stderr.extend_from_slice(b"to stderr");
    stderr.extend_from_slice(&BADF.to_le_bytes());
    assert_eq!(outcome.stderr, stderr);
    assert_eq!(stdout(outcome), b"");
}

/// After `fd_close(0)` stdin is gone, and after `fd_close(1)` stdout.
#[tokio::test]
async fn stdio_follows_closed_descriptors() {
    let wat = guest(
        "lost",
        "(call $errno (call $fd_close (i32.const 0)))
         (call $errno (call $read (i32.const 300) (i32.const 4)))
         (drop (call $fd_close (i32.const 1)))
         (i64.store (i32.const 16)
           (i64.extend_i32_s (call $write (i32.const 1) (i32.const 1024) (i32.const 4))))
         (drop (call $write (i32.const 2) (i32.const 16) (i32.const 8)))",
    );
    let outcome = both("stdio-closed", &wat, b"unread", 1 << 20).await;
    assert_eq!(outcome.stderr, BADF.to_le_bytes());
    assert_eq!(i64s(&stdout(outcome)), [0, -BADF]);
}

/// Two writes that together pass the stdout cap: the second is WASI's partial
/// write, and the call is an output-cap fault either way.
#[tokio::test]
async fn writes_past_the_stdout_cap_are_a_fault() {
    let wat = guest(
        &"x".repeat(60),
        "(drop (call $write (i32.const 1) (i32.const 1024) (i32.const 60)))
         (drop (call $write (i32.const 1) (i32.const 1024) (i32.const 60)))",
    );
    let outcome = both("stdio-cap", &wat, b"", 100).await;
    assert_eq!(outcome.result, Err(Fault::OutputCap { limit: 100 }));
}
