//! The stdout cap (exactly at it is kept, one byte past it is a fault) and the
//! stderr cap (the first bytes kept, the rest counted).

use crate::support::{command, load, runtime, stdout, Scratch};
use gojinn_runtime::Fault;

const CAP: usize = 100;

/// A module writing `n` distinct bytes to stdout in one write, with the cap at `CAP`.
fn writes(n: usize) -> (Vec<u8>, String) {
    let bytes: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
    let wat = command(
        &[(1024, &bytes)],
        &format!("(call $emit (i32.const 1024) (i32.const {n}))"),
    );
    (bytes, wat)
}

#[tokio::test]
async fn stdout_exactly_at_the_cap_is_kept_whole() {
    let (rt, dir) = (runtime(), Scratch::new("stdout-at"));
    let (bytes, wat) = writes(CAP);
    let f = load(&rt, &dir, &wat, |s| s.max_output_bytes = CAP);
    assert_eq!(stdout(f.call(Vec::new()).await), bytes);
}

#[tokio::test]
async fn stdout_one_byte_past_the_cap_is_a_fault() {
    let (rt, dir) = (runtime(), Scratch::new("stdout-past"));
    let (_, wat) = writes(CAP + 1);
    let f = load(&rt, &dir, &wat, |s| s.max_output_bytes = CAP);
    assert_eq!(
        f.call(Vec::new()).await.result,
        Err(Fault::OutputCap { limit: CAP })
    );
}

/// Two writes to stderr across the cap: the first `cap` bytes are kept, the rest
/// counted as dropped, and the call still succeeds.
#[tokio::test]
async fn stderr_keeps_its_first_bytes_and_counts_the_rest() {
    let (rt, dir) = (runtime(), Scratch::new("stderr"));
    let text = b"0123456789abcdefghijklmno"; // 25 bytes
    let wat = command(
        &[(1024, text)],
        "(call $emit_to (i32.const 2) (i32.const 1024) (i32.const 15))
         (call $emit_to (i32.const 2) (i32.const 1039) (i32.const 10))",
    );
    for (cap, kept, dropped) in [(10, &text[..10], 15), (25, &text[..], 0)] {
        let f = load(&rt, &dir, &wat, |s| s.max_stderr_bytes = cap);
        let outcome = f.call(Vec::new()).await;
        assert_eq!(outcome.stderr, kept, "cap {cap}");
        assert_eq!(outcome.stderr_dropped, dropped, "cap {cap}");
        assert_eq!(outcome.result, Ok(Vec::new()), "cap {cap}");
    }
}
