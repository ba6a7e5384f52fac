//! One test per kind of [`Fault`]: a module that provokes it, and the kind and
//! details the call reports.

use crate::support::{command, load, runtime, runtime_with_fuel, stdout, within, Peer, Scratch};
use gojinn_contract::ContractError;
use gojinn_host::Capabilities;
use gojinn_runtime::{Fault, MountSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_loop_in_wasm_times_out() {
    let (rt, dir) = (runtime(), Scratch::new("timeout"));
    let timeout = Duration::from_millis(100);
    let f = load(
        &rt,
        &dir,
        &command(&[], "(loop $forever (br $forever))"),
        |s| s.timeout = timeout,
    );
    let started = Instant::now();
    let outcome = within(
        "a looping guest",
        Duration::from_secs(10),
        f.call(Vec::new()),
    )
    .await;
    assert_eq!(outcome.result, Err(Fault::Timeout));
    assert!(started.elapsed() >= timeout, "stopped before its deadline");
}

/// A guest that computes past a tick yields its worker thread: on a one-thread
/// executor, a quick call made while another guest loops answers long before
/// the loop's deadline (without the yield it would wait for it).
#[tokio::test]
async fn a_looping_guest_yields_its_thread_to_other_calls() {
    let (rt, dir) = (runtime(), Scratch::new("yield"));
    let timeout = Duration::from_secs(2);
    let spin = load(
        &rt,
        &dir,
        &command(&[], "(loop $forever (br $forever))"),
        |s| s.timeout = timeout,
    );
    let quick = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"done")],
            "(call $emit (i32.const 1024) (i32.const 4))",
        ),
        |_| {},
    );
    let started = Instant::now();
    let spinning = tokio::spawn(async move { spin.call(Vec::new()).await });
    // Lets the loop start: this task resumes when it yields.
    tokio::task::yield_now().await;
    assert_eq!(stdout(quick.call(Vec::new()).await), b"done");
    let quick_took = started.elapsed();
    assert!(
        !spinning.is_finished() && quick_took < timeout / 2,
        "the quick call answered after {quick_took:?}, the loop's deadline is {timeout:?}"
    );
    let spun = within("the looping guest", Duration::from_secs(10), spinning)
        .await
        .expect("the looping call's task");
    assert_eq!(spun.result, Err(Fault::Timeout));
}

/// `fuel_limit`: a loop ends when its fuel is gone, long before its deadline;
/// on the same engine a function without a limit, and one whose limit covers
/// its work, run to the end.
#[tokio::test]
async fn a_loop_past_its_fuel_limit_is_a_fuel_fault() {
    let (rt, dir) = (runtime_with_fuel(true), Scratch::new("fuel"));
    let spin = command(&[], "(loop $forever (br $forever))");
    let limited = load(&rt, &dir, &spin, |s| {
        s.timeout = Duration::from_secs(30);
        s.fuel = Some(100_000);
    });
    let outcome = within(
        "a guest out of fuel",
        Duration::from_secs(10),
        limited.call(Vec::new()),
    )
    .await;
    assert_eq!(outcome.result, Err(Fault::Fuel { limit: 100_000 }));

    let work = command(
        &[(1024, b"done")],
        "(call $emit (i32.const 1024) (i32.const 4))",
    );
    let unlimited = load(&rt, &dir, &work, |_| {});
    assert_eq!(stdout(unlimited.call(Vec::new()).await), b"done");
    let enough = load(&rt, &dir, &work, |s| s.fuel = Some(1_000_000));
    assert_eq!(stdout(enough.call(Vec::new()).await), b"done");
    // Every call gets its whole limit again.
    assert_eq!(stdout(enough.call(Vec::new()).await), b"done");
}

#[tokio::test]
async fn unreachable_is_a_trap() {
    let (rt, dir) = (runtime(), Scratch::new("trap"));
    let f = load(&rt, &dir, &command(&[], "unreachable"), |_| {});
    match f.call(Vec::new()).await.result {
        Err(fault @ Fault::Trap(_)) => {
            assert!(fault.to_string().contains("unreachable"), "{fault}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_non_zero_exit_is_reported_with_its_code() {
    let (rt, dir) = (runtime(), Scratch::new("exit"));
    let exit = |code: i32| {
        command(
            &[(1024, b"partial")],
            &format!(
                "(call $emit (i32.const 1024) (i32.const 7)) (call $proc_exit (i32.const {code}))"
            ),
        )
    };
    let failing = load(&rt, &dir, &exit(3), |_| {});
    let outcome = failing.call(Vec::new()).await;
    assert_eq!(outcome.result, Err(Fault::Exit(3)));
    // Exit 0 is success, with what was written before it.
    let clean = load(&rt, &dir, &exit(0), |_| {});
    assert_eq!(stdout(clean.call(Vec::new()).await), b"partial");
}

#[tokio::test]
async fn growing_memory_past_the_limit_is_a_memory_fault() {
    let (rt, dir) = (runtime(), Scratch::new("memory"));
    // The module starts with one 64 KiB page; the limit allows two.
    let grow = |pages: u32| {
        command(
            &[],
            &format!("(call $emit_i64 (i64.extend_i32_s (memory.grow (i32.const {pages}))))"),
        )
    };
    let limit = |s: &mut gojinn_runtime::FunctionSpec| s.memory_limit = 2 * 65536;
    let within_limit = load(&rt, &dir, &grow(1), limit);
    assert_eq!(
        crate::support::i64s(&stdout(within_limit.call(Vec::new()).await)),
        [1]
    );

    let over = load(&rt, &dir, &grow(2), limit);
    let outcome = over.call(Vec::new()).await;
    match &outcome.result {
        Err(Fault::Memory(msg)) => {
            assert!(
                msg.contains("131072"),
                "the message does not give the limit: {msg}"
            );
        }
        other => panic!("expected a memory fault, got {other:?}"),
    }
}

#[tokio::test]
async fn stdout_over_the_cap_is_an_output_fault() {
    let (rt, dir) = (runtime(), Scratch::new("output-cap"));
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, &[b'x'; 64])],
            "(call $emit (i32.const 1024) (i32.const 64))",
        ),
        |s| s.max_output_bytes = 10,
    );
    let result = f.call(Vec::new()).await.result;
    assert_eq!(result, Err(Fault::OutputCap { limit: 10 }));
}

/// Every sandbox of a `pool_size = 1` function is taken (its one call is blocked
/// in a host call to a peer that has accepted but not answered); a second call
/// waits `queue_wait` and is turned away. Once the first ends, calls run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_sandboxes_taken_past_the_queue_wait_is_overload() {
    let (rt, dir) = (runtime(), Scratch::new("overload"));
    let peer = Peer::bind().await;
    let caps = Arc::new(Capabilities::none("overload").with_http(&[peer.grant()]));
    let request = peer.request_json();
    let wat = command(
        &[(1024, &request)],
        &format!(
            "(call $emit_i64 (call $host_http_request (i32.const 1024) (i32.const {}) (i32.const 8192) (i32.const 4096)))",
            request.len()
        ),
    );
    let queue_wait = Duration::from_millis(50);
    let f = load(&rt, &dir, &wat, |s| {
        s.pool_size = 1;
        s.queue_wait = queue_wait;
        s.capabilities = Some(caps);
    });

    let holder = tokio::spawn({
        let f = f.clone();
        async move { f.call(Vec::new()).await }
    });
    // Accepted: the first call is inside its host call, holding the only permit.
    let (conn, _) = within(
        "the first call connecting",
        Duration::from_secs(10),
        peer.listener.accept(),
    )
    .await
    .expect("accept");

    let started = Instant::now();
    let turned_away = within(
        "the second call",
        Duration::from_secs(10),
        f.call(Vec::new()),
    )
    .await;
    assert_eq!(turned_away.result, Err(Fault::Overload));
    assert!(
        started.elapsed() >= queue_wait,
        "turned away before the queue wait"
    );

    // Closing the connection ends the first call's host call (unavailable), and
    // its permit comes back.
    drop(conn);
    let first = within("the first call", Duration::from_secs(10), holder)
        .await
        .expect("join");
    assert_eq!(
        crate::support::i64s(&stdout(first)),
        [gojinn_host::code::UNAVAILABLE]
    );
    drop(peer);
    let again = within(
        "a call after the first ended",
        Duration::from_secs(10),
        f.call(Vec::new()),
    )
    .await;
    assert_ne!(again.result, Err(Fault::Overload));
}

/// A mount the host cannot open is the host's fault, not the guest's: the
/// sandbox is never started. The same module with an existing directory runs.
#[tokio::test]
async fn a_mount_that_cannot_be_opened_is_a_host_fault() {
    let (rt, dir) = (runtime(), Scratch::new("host-fault"));
    let existing = dir.path().join("assets");
    std::fs::create_dir(&existing).expect("mkdir");
    let mounted = |host: std::path::PathBuf| {
        move |s: &mut gojinn_runtime::FunctionSpec| {
            s.mounts = vec![MountSpec {
                host,
                guest: "/assets".to_owned(),
                writable: false,
            }]
        }
    };
    let wat = command(
        &[(1024, b"ran")],
        "(call $emit (i32.const 1024) (i32.const 3))",
    );
    let ok = load(&rt, &dir, &wat, mounted(existing));
    assert_eq!(stdout(ok.call(Vec::new()).await), b"ran");

    let missing = load(&rt, &dir, &wat, mounted(dir.path().join("missing")));
    match missing.call(Vec::new()).await.result {
        Err(Fault::Host(msg)) => assert!(msg.contains("/assets"), "{msg}"),
        other => panic!("expected a host fault, got {other:?}"),
    }
}

/// `invoke` decodes the guest's stdout as a response; a broken response object
/// is a contract fault quoting it, a valid one comes back decoded, and plain
/// output is the body of a 200 (Gojinn's rules, `decode_output`).
#[tokio::test]
async fn stdout_that_is_not_a_response_is_a_contract_fault() {
    let (rt, dir) = (runtime(), Scratch::new("contract"));
    let request = gojinn_contract::Request::new("GET", "/x", [], b"", "t".to_owned());
    let answering = |stdout: &[u8]| {
        command(
            &[(1024, stdout)],
            &format!("(call $emit (i32.const 1024) (i32.const {}))", stdout.len()),
        )
    };

    let bad = load(&rt, &dir, &answering(b"{not json"), |_| {});
    match bad.invoke(&request, "t").await.result {
        Err(Fault::Contract { error, stdout }) => {
            assert!(matches!(error, ContractError::Malformed(_)), "{error:?}");
            assert_eq!(stdout, "{not json");
        }
        other => panic!("expected a contract fault, got {other:?}"),
    }

    let plain = load(&rt, &dir, &answering(b"not json"), |_| {});
    let response = plain
        .invoke(&request, "t")
        .await
        .result
        .expect("a response");
    assert_eq!(
        (response.status, response.body),
        (200, b"not json".to_vec())
    );
    assert_eq!(
        response.headers,
        [(
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned()
        )]
    );

    let good = load(
        &rt,
        &dir,
        &answering(br#"{"status": 201, "body": "made"}"#),
        |_| {},
    );
    let response = good.invoke(&request, "t").await.result.expect("a response");
    assert_eq!((response.status, response.body), (201, b"made".to_vec()));
}
