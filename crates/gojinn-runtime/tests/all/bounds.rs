//! How guest memory accesses are checked (`Bounds`): on the explicit-checks
//! engine an access past the memory's end traps as it does on guard pages, also
//! where the slot's pages are mapped (a previous call grew into them), and
//! adaptive bounds move exactly the functions whose calls grow memory more than
//! they compute.

use crate::support::{command, i64s, load, stdout, within, Scratch, MAX_MEMORY};
use gojinn_runtime::{
    Bounds, Fault, Function, Runtime, RuntimeOptions, SandboxReset, StdioCalls,
    ADAPTIVE_OBSERVED_CALLS,
};
use std::time::Duration;

fn runtime(bounds: Bounds, slots: u32) -> Runtime {
    Runtime::new(&RuntimeOptions {
        total_slots: slots,
        max_memory_bytes: MAX_MEMORY,
        cache_dir: None,
        deadlines: true,
        reset: SandboxReset::detect(),
        fuel: false,
        bounds,
        stdio: StdioCalls::Direct,
    })
    .expect("runtime")
}

/// What a call that must trap out of bounds said.
async fn out_of_bounds(f: &Function, what: &str) {
    let outcome = f.call(Vec::new()).await;
    match &outcome.result {
        Err(Fault::Trap(msg)) if msg.contains("out of bounds memory access") => {}
        other => panic!("{what}: expected an out-of-bounds trap, got {other:?}"),
    }
}

#[tokio::test]
async fn accesses_past_the_end_of_memory_trap_with_either_bounds() {
    let dir = Scratch::new("bounds-oob");
    for bounds in [Bounds::Guard, Bounds::Checked] {
        // One slot: every call below runs in the slot the grower dirtied.
        let rt = runtime(bounds, 1);
        let grower = load(
            &rt,
            &dir,
            &command(
                &[],
                "(drop (memory.grow (i32.const 7)))
                 (i64.store (i32.const 458752) (i64.const 0x5ec2e75e))
                 (call $emit_i64 (i64.load (i32.const 458752)))",
            ),
            |_| {},
        );
        assert_eq!(grower.bounds(), bounds);
        assert_eq!(i64s(&stdout(grower.call(Vec::new()).await)), [0x5ec2_e75e]);
        // One page again: page 7 is mapped in the slot but not the guest's.
        let cases = [
            (
                "a load in a page the last call grew",
                "(call $emit_i64 (i64.load (i32.const 458752)))",
            ),
            (
                "a load one byte past the end",
                "(call $emit_i64 (i64.extend_i32_u (i32.load8_u (i32.const 65536))))",
            ),
            (
                "a load straddling the end",
                "(call $emit_i64 (i64.load (i32.const 65532)))",
            ),
            (
                "a store past the end",
                "(i64.store (i32.const 65536) (i64.const 1))",
            ),
            (
                "a copy past the end",
                "(memory.copy (i32.const 65000) (i32.const 0) (i32.const 1024))",
            ),
        ];
        for (what, body) in cases {
            let f = load(&rt, &dir, &command(&[], body), |_| {});
            out_of_bounds(&f, &format!("{}: {what}", bounds.name())).await;
        }
        // And the grown page the guest may use again starts as zeroes.
        let regrow = load(
            &rt,
            &dir,
            &command(
                &[],
                "(drop (memory.grow (i32.const 7)))
                 (call $emit_i64 (i64.load (i32.const 458752)))",
            ),
            |_| {},
        );
        assert_eq!(
            i64s(&stdout(regrow.call(Vec::new()).await)),
            [0],
            "{}: a page grown again holds what the last call wrote",
            bounds.name()
        );
    }
}

/// Calls `f` until adaptive bounds have observed it, checking each call ran on
/// guard pages and grew memory `grows` times; then what they settled on.
async fn observe(f: &Function, grows: u32) -> Bounds {
    for call in 0..ADAPTIVE_OBSERVED_CALLS {
        let outcome = f.call(Vec::new()).await;
        assert_eq!(outcome.bounds, Bounds::Guard, "call {call}");
        assert_eq!(outcome.memory_grows, grows, "call {call}");
        stdout(outcome);
    }
    within(
        "adaptive bounds deciding",
        Duration::from_secs(60),
        f.settled_bounds(),
    )
    .await
}

#[tokio::test]
async fn a_function_whose_calls_grow_memory_moves_to_explicit_checks() {
    let (rt, dir) = (runtime(Bounds::Adaptive, 4), Scratch::new("bounds-move"));
    let grower = load(
        &rt,
        &dir,
        &command(
            &[],
            "(drop (memory.grow (i32.const 1)))
             (call $emit_i64 (i64.extend_i32_u (memory.size)))",
        ),
        |_| {},
    );
    assert_eq!(observe(&grower, 1).await, Bounds::Checked);
    for _ in 0..3 {
        let outcome = grower.call(Vec::new()).await;
        assert_eq!(outcome.bounds, Bounds::Checked);
        assert_eq!(outcome.memory_grows, 1);
        assert_eq!(i64s(&stdout(outcome)), [2], "a fresh memory, grown once");
    }
    assert_eq!(grower.bounds(), Bounds::Checked);
}

#[tokio::test]
async fn a_function_that_does_not_grow_memory_stays_on_guard_pages() {
    let (rt, dir) = (runtime(Bounds::Adaptive, 4), Scratch::new("bounds-stay"));
    let still = load(
        &rt,
        &dir,
        &command(&[], "(call $emit_i64 (i64.const 7))"),
        |_| {},
    );
    assert_eq!(observe(&still, 0).await, Bounds::Guard);
    assert_eq!(still.call(Vec::new()).await.bounds, Bounds::Guard);
}

#[tokio::test]
async fn a_function_that_computes_more_than_its_growth_costs_stays_on_guard_pages() {
    let (rt, dir) = (runtime(Bounds::Adaptive, 4), Scratch::new("bounds-busy"));
    // Four million loop turns (milliseconds of CPU on any machine) against one
    // growth: explicit checks would cost more than the growth saves.
    let busy = load(
        &rt,
        &dir,
        &command(
            &[],
            "(local $i i32) (local $sum i64)
             (drop (memory.grow (i32.const 1)))
             (loop $turn
               (i64.store (i32.const 1024)
                 (i64.add (i64.load (i32.const 1024)) (i64.extend_i32_u (local.get $i))))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $turn (i32.lt_u (local.get $i) (i32.const 4000000))))
             (call $emit_i64 (i64.load (i32.const 1024)))",
        ),
        |_| {},
    );
    assert_eq!(observe(&busy, 1).await, Bounds::Guard);
    let outcome = busy.call(Vec::new()).await;
    assert_eq!(outcome.bounds, Bounds::Guard);
    let turns: i64 = 4_000_000;
    assert_eq!(i64s(&stdout(outcome)), [turns * (turns - 1) / 2]);
}
