//! The failure table: each fault answers its status, the detail goes to the log,
//! and the server keeps serving.

use crate::harness::{guest_route, Server};
use std::time::{Duration, Instant};

/// Routes for every fault mode, plus a healthy echo route.
fn fault_server(name: &str) -> Server {
    let mut routes = guest_route("/ok", "echo", "");
    for mode in [
        "text-after",
        "status-string",
        "status-range",
        "header-number",
        "empty",
        "panic",
        "exit",
        "stack",
        "flood",
    ] {
        routes.push_str(&guest_route(&format!("/{mode}"), mode, ""));
    }
    routes.push_str(&guest_route(
        "/grow",
        "grow",
        "            memory_limit 32MB",
    ));
    routes.push_str(&guest_route("/spin", "spin", "            timeout 500ms"));
    routes.push_str(&guest_route("/sleep", "sleep", "            timeout 500ms"));
    routes.push_str(&guest_route(
        "/small",
        "measure",
        "            max_body_size 1KB",
    ));
    routes.push_str(&guest_route("/nap", "nap", "            pool_size 1"));
    Server::with_routes(name, &routes)
}

fn assert_still_serving(s: &Server) {
    let r = s.get("/ok");
    assert_eq!(r.status, 200, "server must keep serving after a fault");
}

#[test]
fn guest_faults_and_contract_violations_answer_502_and_are_logged() {
    let s = fault_server("fail-502");
    for (mode, kind) in [
        ("text-after", "contract"),
        ("status-string", "contract"),
        ("status-range", "contract"),
        ("header-number", "contract"),
        ("empty", "contract"),
        ("panic", "trap"),
        ("exit", "exit"),
        ("stack", "trap"),
        ("grow", "memory"),
        ("flood", "output_cap"),
    ] {
        let r = s.get(&format!("/{mode}"));
        assert_eq!(r.status, 502, "mode {mode}: {}", r.text());
        assert_eq!(
            r.text(),
            "function failed\n",
            "short fixed client body for {mode}"
        );
        let needle = format!("\"fault\":\"{kind}\"");
        let route = format!("\"route\":\"/{mode}\"");
        s.wait_for_log(|l| l.contains(&needle) && l.contains(&route))
            .unwrap_or_else(|| panic!("no `{kind}` fault logged for {mode}"));
        assert_still_serving(&s);
    }
    // The log carries the detail the client does not see.
    assert!(s
        .wait_for_log(|l| l.contains("exited with code 3"))
        .is_some());
    assert!(
        s.wait_for_log(|l| l.contains("hello after")).is_some(),
        "contract errors quote the offending stdout"
    );
}

#[test]
fn deadline_answers_504_in_wasm_code_and_when_blocked_in_a_host_call() {
    let s = fault_server("fail-504");
    for mode in ["spin", "sleep"] {
        let started = Instant::now();
        let r = s.get(&format!("/{mode}"));
        let took = started.elapsed();
        assert_eq!(r.status, 504, "mode {mode}");
        assert!(
            took < Duration::from_millis(600),
            "{mode}: answered after {took:?}, deadline 500ms (+100ms allowed)"
        );
        assert!(
            took >= Duration::from_millis(500),
            "{mode}: too early ({took:?})"
        );
        assert_still_serving(&s);
    }
}

#[test]
fn route_at_pool_size_answers_503_with_retry_after() {
    let s = fault_server("fail-503");
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let r = s.get("/nap");
                    (r.status, r.header("retry-after").map(str::to_owned))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(statuses.iter().any(|(st, _)| *st == 200), "{statuses:?}");
    let busy: Vec<_> = statuses.iter().filter(|(st, _)| *st == 503).collect();
    assert!(
        !busy.is_empty(),
        "pool_size 1 with 3 concurrent 1.5 s calls: {statuses:?}"
    );
    assert!(busy.iter().all(|(_, ra)| ra.as_deref() == Some("1")));
    assert_still_serving(&s);
}

#[test]
fn request_body_over_the_cap_answers_413_with_and_without_content_length() {
    let s = fault_server("fail-413");
    let r = s.request("POST", "/small", &[], &[b'a'; 1000]);
    assert_eq!(r.status, 200, "at the cap is fine");
    let r = s.request("POST", "/small", &[], &[b'a'; 1001]);
    assert_eq!(r.status, 413);
    // Chunked: the size is only known while reading.
    let mut raw = b"POST /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"200\r\n");
        raw.extend_from_slice(&[b'b'; 0x200]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(s.raw(&raw).status, 413);
    assert_still_serving(&s);
}

#[test]
fn no_route_answers_404() {
    let s = fault_server("fail-404");
    assert_eq!(s.get("/nothing/here").status, 404);
    assert_eq!(s.get("/ok/not-exact").status, 404);
    assert_still_serving(&s);
}
