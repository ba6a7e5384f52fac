//! Gojinn's own host functions with Gojinn's signatures and results, in a
//! sandbox: both `host_kv_get` signatures (the Go SDK's `uint32` result and the
//! `i64` one) with Gojinn's truncation, `host_http_get`, a `host_kv_set` that
//! cannot store trapping, and the stubs of functions this server does not have.

use crate::support::{
    command, command_importing, i64s, load, runtime, stdout, within, Peer, Scratch,
};
use gojinn_host::{Capabilities, Kv, Stores};
use gojinn_runtime::{AbiType, Fault, HostFn, HOST_FUNCTIONS, HOST_VARIANTS};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh embedded store in `dir` (one per test: two handles on one file
/// would conflict).
fn store(dir: &Scratch) -> Kv {
    Stores::new()
        .kv(Some(&dir.path().join("storage")), None, "ns")
        .expect("kv namespace")
}

/// A route reading `read` and writing `write` (patterns) in `kv`.
fn caps(kv: &Kv, read: &[&str], write: &[&str]) -> Arc<Capabilities> {
    let owned = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Arc::new(Capabilities::none("r").with_kv(kv.clone(), &owned(read), &owned(write)))
}

fn variant(name: &str, result: AbiType) -> &'static HostFn {
    HOST_VARIANTS
        .iter()
        .find(|f| f.name() == name && f.result() == Some(result))
        .unwrap_or_else(|| panic!("no {name} variant returning {result}"))
}

/// Every table entry but `name`, plus `with` in its place.
fn imports_with(name: &str, with: &'static HostFn) -> Vec<&'static HostFn> {
    HOST_FUNCTIONS
        .iter()
        .filter(|f| f.name() != name)
        .chain([with])
        .collect()
}

const VALUE: &[u8] = b"hello world";

/// Data: the key `k` at 1024, the value at 2048, a missing key at 1030, a
/// key the route may not read at 1040.
const DATA: &[(u32, &[u8])] = &[
    (1024, b"k"),
    (2048, VALUE),
    (1030, b"nope"),
    (1040, b"secret"),
];

/// Sets `k`, reads it into a 5-byte buffer (and shows 8 bytes of it), into a
/// 100-byte one, then reads a missing key and a denied one. `extend` widens the
/// result (`i64.extend_i32_u` for the `uint32` signature, nothing for `i64`).
fn kv_get_calls(extend: &str) -> String {
    let get = |key: u32, len: u32, max: u32| {
        let call = format!("(call $host_kv_get (i32.const {key}) (i32.const {len}) (i32.const 4096) (i32.const {max}))");
        if extend.is_empty() {
            format!("(call $emit_i64 {call})")
        } else {
            format!("(call $emit_i64 ({extend} {call}))")
        }
    };
    format!(
        "(call $host_kv_set (i32.const 1024) (i32.const 1) (i32.const 2048) (i32.const 11))
         {}
         (call $emit (i32.const 4096) (i32.const 8))
         {}
         (call $emit (i32.const 4096) (i32.const 11))
         {}
         {}",
        get(1024, 1, 5),
        get(1024, 1, 100),
        get(1030, 4, 100),
        get(1040, 6, 100),
    )
}

/// What `kv_get_calls` writes, split: (results, first buffer, second buffer).
fn split_kv_get_output(out: &[u8]) -> (Vec<i64>, Vec<u8>, Vec<u8>) {
    assert_eq!(out.len(), 8 + 8 + 8 + 11 + 8 + 8, "{out:?}");
    let first = i64s(&out[..8]);
    let cut = out[8..16].to_vec();
    let second_n = i64s(&out[16..24]);
    let full = out[24..35].to_vec();
    let rest = i64s(&out[35..]);
    ([first, second_n, rest].concat(), cut, full)
}

/// The Go SDK's `host_kv_get(…) uint32` links; a value longer than the buffer
/// is cut to it and the call returns the buffer's size (Gojinn), and a miss or
/// a denial is all ones (`0xFFFFFFFF`).
#[tokio::test]
async fn host_kv_get_with_a_uint32_result_links_and_truncates() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-kv-u32"));
    let module = command_importing(
        imports_with("host_kv_get", variant("host_kv_get", AbiType::I32)),
        DATA,
        &kv_get_calls("i64.extend_i32_u"),
    );
    let f = load(&rt, &dir, &module, |s| {
        s.capabilities = Some(caps(&store(&dir), &["k", "nope"], &["k"]))
    });
    let (results, cut, full) = split_kv_get_output(&stdout(f.call(Vec::new()).await));
    assert_eq!(
        results,
        [5, 11, 0xFFFF_FFFF, 0xFFFF_FFFF],
        "cut, whole, miss, denied"
    );
    assert_eq!(
        cut, b"hello\0\0\0",
        "the first out_max bytes, nothing past them"
    );
    assert_eq!(full, VALUE);
}

/// The `i64` signature (Gojinn v0.14 to v1.0-rc1) truncates the same way; a
/// miss or denial is `-1`.
#[tokio::test]
async fn host_kv_get_with_an_i64_result_truncates_like_gojinn() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-kv-i64"));
    let f = load(&rt, &dir, &command(DATA, &kv_get_calls("")), |s| {
        s.capabilities = Some(caps(&store(&dir), &["k", "nope"], &["k"]))
    });
    let (results, cut, full) = split_kv_get_output(&stdout(f.call(Vec::new()).await));
    assert_eq!(results, [5, 11, -1, -1], "cut, whole, miss, denied");
    assert_eq!(cut, b"hello\0\0\0");
    assert_eq!(full, VALUE);
}

/// A signature Gojinn never had is still refused at load, naming the import.
#[test]
fn a_host_kv_get_signature_gojinn_never_had_does_not_link() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-kv-bad"));
    let path = dir.path().join("bad.wat");
    std::fs::write(
        &path,
        r#"(module (import "gojinn" "host_kv_get" (func (param i32 i32 i32 i32) (result f32)))
             (memory (export "memory") 1) (func (export "_start")))"#,
    )
    .expect("write module");
    match rt.load(crate::support::spec(path)) {
        Err(gojinn_runtime::LoadError::Link { detail, .. }) => {
            assert!(detail.contains("host_kv_get"), "{detail}")
        }
        Err(e) => panic!("expected a link error, got: {e}"),
        Ok(_) => panic!("an f32 host_kv_get linked"),
    }
}

/// Gojinn's `host_kv_set` returns nothing, so a write that does not happen
/// (here: denied) cannot be reported to the guest: the call traps, the request
/// fails, and the message says which call failed and why. A granted write
/// before it is not affected.
#[tokio::test]
async fn a_host_kv_set_that_cannot_store_traps() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-kv-set"));
    let kv = store(&dir);
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"public:a"), (1040, b"secret"), (2048, b"v")],
            "(call $host_kv_set (i32.const 1024) (i32.const 8) (i32.const 2048) (i32.const 1))
             (call $emit (i32.const 2048) (i32.const 1))
             (call $host_kv_set (i32.const 1040) (i32.const 6) (i32.const 2048) (i32.const 1))
             (call $emit (i32.const 2048) (i32.const 1))",
        ),
        |s| s.capabilities = Some(caps(&kv, &["*"], &["public:*"])),
    );
    match f.call(Vec::new()).await.result {
        Err(Fault::Trap(msg)) => {
            assert!(msg.contains("`host_kv_set` failed"), "{msg}");
            assert!(
                msg.contains("`secret`") && msg.contains("kv_write"),
                "{msg}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    // The granted write happened.
    let read = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"public:a")],
            "(call $emit_i64 (call $host_kv_get_v1 (i32.const 1024) (i32.const 8) (i32.const 4096) (i32.const 10)))",
        ),
        |s| s.capabilities = Some(caps(&kv, &["*"], &[])),
    );
    assert_eq!(i64s(&stdout(read.call(Vec::new()).await)), [1]);
}

/// The functions this server does not provide link, return Gojinn's failure
/// values, and are listed by `Function::unavailable_imports`; `host_enqueue`
/// without an `enqueue` grant fails the same way (denied) and is not listed.
#[tokio::test]
async fn unavailable_functions_link_and_fail_as_gojinn_did() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-stubs"));
    let f = load(
        &rt,
        &dir,
        &command(
            &[(1024, b"x")],
            "(call $emit_i64 (i64.extend_i32_s (call $host_enqueue (i32.const 1024) (i32.const 1) (i32.const 1024) (i32.const 1))))
             (call $emit_i64 (i64.extend_i32_s (call $host_s3_put (i32.const 1024) (i32.const 1) (i32.const 1024) (i32.const 1))))
             (call $emit_i64 (i64.extend_i32_s (call $host_s3_get (i32.const 1024) (i32.const 1) (i32.const 4096) (i32.const 100))))
             (call $emit_i64 (i64.extend_i32_s (call $host_ws_upgrade)))
             (call $emit_i64 (call $host_ws_read (i32.const 4096) (i32.const 100)))
             (call $host_ws_write (i32.const 1024) (i32.const 1))
             (call $emit_i64 (call $host_ask_ai (i32.const 1024) (i32.const 1) (i32.const 4096) (i32.const 200)))
             (call $emit (i32.const 4096) (i32.const 57))",
        ),
        |_| {},
    );
    let mut names = f.unavailable_imports().to_vec();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "host_ask_ai",
            "host_s3_get",
            "host_s3_put",
            "host_ws_read",
            "host_ws_upgrade",
            "host_ws_write"
        ]
    );
    let out = stdout(f.call(Vec::new()).await);
    let (codes, text) = out.split_at(6 * 8);
    let error = br#"{"error":"`host_ask_ai` is not available on this server"}"#;
    assert_eq!(error.len(), 57);
    assert_eq!(i64s(codes), [1, 1, 0, 0, 0, 57]);
    assert_eq!(text, error, "Gojinn's error object in the buffer");

    // The older `uint32` signature of host_ask_ai links too, and cuts to out_max.
    let f = load(
        &rt,
        &dir,
        &command_importing(
            imports_with("host_ask_ai", variant("host_ask_ai", AbiType::I32)),
            &[(1024, b"x")],
            "(call $emit_i64 (i64.extend_i32_u (call $host_ask_ai (i32.const 1024) (i32.const 1) (i32.const 4096) (i32.const 10))))
             (call $emit (i32.const 4096) (i32.const 10))",
        ),
        |_| {},
    );
    let out = stdout(f.call(Vec::new()).await);
    assert_eq!(i64s(&out[..8]), [10]);
    assert_eq!(&out[8..], &error[..10]);

    // A module that imports none of them has none to warn about.
    let plain = load(
        &rt,
        &dir,
        &command_importing(std::iter::empty(), &[], ""),
        |_| {},
    );
    assert!(plain.unavailable_imports().is_empty());
}

/// `host_http_get` GETs a granted URL and returns the body whatever its status,
/// cut to the buffer; without the grant it returns 0 and reaches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_http_get_returns_the_body_cut_to_the_buffer() {
    let (rt, dir) = (runtime(), Scratch::new("legacy-http-get"));
    let peer = Peer::bind().await;
    let url = format!("http://127.0.0.1:{}/thing", peer.port);
    let module = command(
        &[(1024, url.as_bytes())],
        &format!(
            "(call $emit_i64 (call $host_http_get (i32.const 1024) (i32.const {}) (i32.const 4096) (i32.const 5)))
             (call $emit (i32.const 4096) (i32.const 8))",
            url.len()
        ),
    );
    let granted = load(&rt, &dir, &module, |s| {
        s.capabilities = Some(Arc::new(Capabilities::none("r").with_http(&[peer.grant()])))
    });
    let denied = load(&rt, &dir, &module, |_| {});

    let listener = peer.listener;
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.expect("accept");
        let mut head = vec![0u8; 4096];
        let n = conn.read(&mut head).await.expect("read request");
        conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
        )
        .await
        .expect("answer");
        String::from_utf8_lossy(&head[..n]).into_owned()
    });
    let out = stdout(
        within(
            "host_http_get",
            Duration::from_secs(10),
            granted.call(Vec::new()),
        )
        .await,
    );
    assert_eq!(i64s(&out[..8]), [5]);
    assert_eq!(&out[8..], b"hello\0\0\0");
    let request = within("the peer", Duration::from_secs(10), server)
        .await
        .expect("join");
    assert!(request.starts_with("GET /thing HTTP/1.1\r\n"), "{request}");

    let out = stdout(denied.call(Vec::new()).await);
    assert_eq!(i64s(&out[..8]), [0], "denied: Gojinn's failure value");
    assert_eq!(&out[8..], [0; 8], "nothing written");
}
