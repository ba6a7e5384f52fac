//! Host calls inside a sandbox: a deadline that passes while one is blocked,
//! `host_result_take`, lock leases and their TTL, and calls the route does not
//! grant.

use crate::support::{command, i64s, load, runtime, stdout, within, Peer, Scratch};
use gojinn_host::{code, Capabilities, Stores};
use gojinn_runtime::{Fault, Function, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A route granted every key of a fresh embedded store in `dir`, plus `http`.
fn kv_caps(dir: &Scratch, http: &[String]) -> Arc<Capabilities> {
    let stores = Stores::new();
    let kv = stores
        .kv(Some(&dir.path().join("storage")), None, "ns")
        .expect("kv namespace");
    Arc::new(
        Capabilities::none("r")
            .with_kv(kv, &["*".into()], &["*".into()])
            .with_http(http),
    )
}

/// The deadline passes while the guest waits in `host_http_request` on a peer
/// that accepted the connection and never answers: the call ends at its
/// timeout with `Fault::Timeout`, not when the peer gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passes_while_blocked_in_a_host_call() {
    let (rt, dir) = (runtime(), Scratch::new("host-deadline"));
    let peer = Peer::bind().await;
    let request = peer.request_json();
    let caps = Arc::new(Capabilities::none("r").with_http(&[peer.grant()]));
    let timeout = Duration::from_millis(300);
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, &request)],
            &format!(
                "(call $emit_i64 (call $host_http_request (i32.const 1024) (i32.const {}) (i32.const 8192) (i32.const 4096)))",
                request.len()
            ),
        ),
        |s| {
            s.timeout = timeout;
            s.capabilities = Some(caps);
        },
    );
    // Holds every accepted connection open, unanswered, and reports the first.
    let (accepted_tx, accepted_rx) = tokio::sync::oneshot::channel();
    let listener = peer.listener;
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut accepted_tx = Some(accepted_tx);
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
            if let Some(tx) = accepted_tx.take() {
                let _ = tx.send(());
            }
        }
    });

    let started = Instant::now();
    let outcome = within(
        "a call blocked in a host call",
        Duration::from_secs(10),
        f.call(Vec::new()),
    )
    .await;
    let elapsed = started.elapsed();
    silent.abort();
    assert_eq!(outcome.result, Err(Fault::Timeout));
    assert!(elapsed >= timeout, "ended before its deadline: {elapsed:?}");
    assert!(
        accepted_rx.await.is_ok(),
        "the guest never reached the peer: the timeout was not inside the host call"
    );
}

/// A value larger than the guest's buffer is not written; its length comes back
/// (greater than the buffer), and `host_result_take` then delivers it once.
#[tokio::test]
async fn a_result_over_the_buffer_is_taken_with_host_result_take() {
    let (rt, dir) = (runtime(), Scratch::new("result-take"));
    let value: Vec<u8> = (0..100u8).map(|i| b'A' + i % 26).collect();
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"big"), (2048, &value)],
            "(call $emit_i64 (i64.extend_i32_s (call $host_kv_set_v1 (i32.const 1024) (i32.const 3) (i32.const 2048) (i32.const 100))))
             (call $emit_i64 (call $host_kv_get_v1 (i32.const 1024) (i32.const 3) (i32.const 4096) (i32.const 10)))
             (call $emit (i32.const 4096) (i32.const 10))
             (call $emit_i64 (call $host_result_take (i32.const 8192) (i32.const 200)))
             (call $emit (i32.const 8192) (i32.const 100))
             (call $emit_i64 (call $host_result_take (i32.const 8192) (i32.const 200)))",
        ),
        |s| s.capabilities = Some(kv_caps(&dir, &[])),
    );
    let out = stdout(f.call(Vec::new()).await);
    assert_eq!(out.len(), 8 + 8 + 10 + 8 + 100 + 8, "{out:?}");
    let (head, rest) = out.split_at(16);
    assert_eq!(i64s(head), [0, 100], "set, then get into a 10-byte buffer");
    let (small_buffer, rest) = rest.split_at(10);
    assert_eq!(
        small_buffer, [0; 10],
        "a result that does not fit must not be written"
    );
    let (taken, rest) = rest.split_at(8);
    assert_eq!(i64s(taken), [100]);
    let (bytes, rest) = rest.split_at(100);
    assert_eq!(bytes, value);
    assert_eq!(i64s(rest), [code::NOT_FOUND], "a result is taken once");
}

/// A module that takes the lock `job` for `ttl_ms` and writes the result.
fn lock_module(ttl_ms: u64) -> String {
    command(
        &[(1024, b"job")],
        &format!(
            "(call $emit_i64 (i64.extend_i32_s (call $host_lock_v1 (i32.const 1024) (i32.const 3) (i64.const {ttl_ms}))))"
        ),
    )
}

async fn lock_result(f: &Function) -> i64 {
    let out = i64s(&stdout(f.call(Vec::new()).await));
    assert_eq!(out.len(), 1, "{out:?}");
    out[0]
}

/// A call holding `job` (blocked on a peer, so the test knows it holds it)
/// excludes another call; once the holder unlocks, well before the TTL, the lock
/// is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_excludes_other_calls_until_unlocked() {
    let (rt, dir): (Runtime, _) = (runtime(), Scratch::new("lock-unlock"));
    let peer = Peer::bind().await;
    let caps = kv_caps(&dir, &[peer.grant()]);
    let request = peer.request_json();
    let holder = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"job"), (2048, &request)],
            &format!(
                "(call $emit_i64 (i64.extend_i32_s (call $host_lock_v1 (i32.const 1024) (i32.const 3) (i64.const 60000))))
                 (drop (call $host_http_request (i32.const 2048) (i32.const {}) (i32.const 8192) (i32.const 4096)))
                 (call $emit_i64 (i64.extend_i32_s (call $host_unlock_v1 (i32.const 1024) (i32.const 3))))",
                request.len()
            ),
        ),
        |s| s.capabilities = Some(caps.clone()),
    );
    let other = load(&rt, &dir, &lock_module(60_000), |s| {
        s.capabilities = Some(caps.clone())
    });

    let held = tokio::spawn(async move { holder.call(Vec::new()).await });
    let (mut conn, _) = within(
        "the holder connecting",
        Duration::from_secs(10),
        peer.listener.accept(),
    )
    .await
    .expect("accept");
    assert_eq!(
        lock_result(&other).await,
        0,
        "taken while another call holds it"
    );

    // Answer the holder, which then unlocks and ends.
    let mut request_head = vec![0u8; 4096];
    let _ = conn.read(&mut request_head).await.expect("read request");
    conn.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        .await
        .expect("answer");
    drop(conn);
    let held = within("the holder", Duration::from_secs(10), held)
        .await
        .expect("join");
    assert_eq!(i64s(&stdout(held)), [1, 1], "lock, then unlock");
    assert_eq!(
        lock_result(&other).await,
        1,
        "free once unlocked, long before its TTL"
    );
}

/// A lease outlives the call that took it and excludes others until its TTL
/// passes; then another call takes it.
#[tokio::test]
async fn a_lock_lease_expires_after_its_ttl() {
    let (rt, dir) = (runtime(), Scratch::new("lock-ttl"));
    let caps = kv_caps(&dir, &[]);
    let ttl = Duration::from_millis(1500);
    let f = load(&rt, &dir, &lock_module(ttl.as_millis() as u64), |s| {
        s.capabilities = Some(caps)
    });

    let before_lock = Instant::now();
    assert_eq!(lock_result(&f).await, 1, "a free lock");
    // Held by the first call's lease (unless this machine stalled past the TTL).
    let second = lock_result(&f).await;
    assert!(
        second == 0 || before_lock.elapsed() >= ttl,
        "a second call took a lease that is still running"
    );
    let retaken_at = loop {
        if lock_result(&f).await == 1 {
            break before_lock.elapsed();
        }
        assert!(
            before_lock.elapsed() < ttl + Duration::from_secs(10),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        retaken_at >= ttl,
        "retaken after {retaken_at:?}, before the TTL of {ttl:?}"
    );
}

/// With no grants every store call is denied: v1 calls return `DENIED` with a
/// message for `host_last_error`, the original calls their own failure values.
#[tokio::test]
async fn calls_without_a_grant_are_denied() {
    let (rt, dir) = (runtime(), Scratch::new("denied"));
    let http = br#"{"url": "http://127.0.0.1:9/"}"#;
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"k"), (2048, http)],
            &format!("(local $n i64)
             (call $emit_i64 (call $host_kv_get_v1 (i32.const 1024) (i32.const 1) (i32.const 4096) (i32.const 64)))
             (call $emit_i64 (i64.extend_i32_s (call $host_kv_set_v1 (i32.const 1024) (i32.const 1) (i32.const 1024) (i32.const 1))))
             (call $emit_i64 (i64.extend_i32_s (call $host_lock_v1 (i32.const 1024) (i32.const 1) (i64.const 1000))))
             (call $emit_i64 (call $host_http_request (i32.const 2048) (i32.const {}) (i32.const 4096) (i32.const 64)))
             (call $emit_i64 (call $host_kv_get (i32.const 1024) (i32.const 1) (i32.const 4096) (i32.const 64)))
             (call $emit_i64 (i64.extend_i32_s (call $host_mutex_lock (i32.const 1024) (i32.const 1) (i32.const 5))))
             (local.set $n (call $host_last_error (i32.const 8192) (i32.const 1024)))
             (call $emit_i64 (local.get $n))
             (call $emit (i32.const 8192) (i32.wrap_i64 (local.get $n)))",
                http.len()
            ),
        ),
        |s| s.capabilities = None,
    );
    let out = stdout(f.call(Vec::new()).await);
    let (codes, message) = out.split_at(7 * 8);
    let codes = i64s(codes);
    assert_eq!(
        &codes[..4],
        [code::DENIED; 4],
        "v1: kv_get, kv_set, lock, http"
    );
    assert_eq!(&codes[4..6], [-1, 0], "original: kv_get, mutex_lock");
    let message = String::from_utf8_lossy(message);
    assert_eq!(codes[6], message.len() as i64);
    assert!(message.starts_with("denied:"), "last error: {message}");
}
