//! Hostile and broken clients: malformed requests, smuggling patterns, oversized
//! heads, idle connections and clients that leave mid-request. Each case gets a
//! defined status (or a closed connection) and the server keeps serving.

use crate::harness::{guest_route, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `raw` on a fresh connection and returns the status line of the answer
/// (empty when the server closed without answering).
fn status_line(s: &Server, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The server may answer and close before it read everything (431): a failed
    // write is part of the behaviour under test, not a test failure.
    let _ = stream.write_all(raw);
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.lines().next().unwrap_or("").to_owned()
}

fn assert_still_serving(s: &Server) {
    let r = s.get("/");
    assert_eq!(r.status, 200, "server stopped serving: {}", r.text());
}

#[test]
fn malformed_requests_answer_400_or_431_and_the_server_keeps_serving() {
    // Requests go to a function, which reads the whole body, so framing errors in
    // the body surface too (a `respond` route answers without reading it).
    let s = Server::with_routes(
        "clients-malformed",
        &format!("{}    respond \"ok\"", guest_route("/echo", "echo", "")),
    );
    let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), "400"),
        (
            "space in a header name",
            b"GET /echo HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "obsolete line folding",
            b"GET /echo HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "NUL in a header value",
            b"GET /echo HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "two different Content-Length values",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
                .to_vec(),
            "400",
        ),
        (
            "Transfer-Encoding that does not end in chunked",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabcde".to_vec(),
            "400",
        ),
        (
            "chunked then identity",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            "invalid chunk size",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
                .to_vec(),
            "400",
        ),
        (
            "a 1 MiB header",
            [
                &b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: "[..],
                &vec![b'a'; 1 << 20],
                b"\r\n\r\n",
            ]
            .concat(),
            "431",
        ),
        (
            "150 headers",
            format!("GET /echo HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            "431",
        ),
    ];
    for (what, raw, want) in cases {
        let line = status_line(&s, &raw);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {want}")),
            "{what}: expected {want}, got {line:?}"
        );
        assert_still_serving(&s);
    }
}

#[test]
fn five_hundred_idle_connections_do_not_block_a_real_client() {
    let s = Server::with_routes("clients-idle", "    respond \"ok\"");
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(("127.0.0.1", s.port)).expect("connect idle"))
        .collect();
    // Half of them send part of a request head and stall there (slowloris).
    for stream in idle.iter().step_by(2) {
        let mut stream = stream;
        stream
            .write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .expect("partial head");
    }
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    drop(idle);
    assert_still_serving(&s);
}

#[test]
fn a_client_that_leaves_mid_request_frees_its_sandbox() {
    // One slot, a minute of deadline: only interruption on disconnect can free the
    // slot within the test's few seconds.
    let s = Server::with_routes(
        "clients-leave",
        &format!(
            "{}    respond \"ok\"",
            guest_route(
                "/spin*",
                "spin-unless-quick",
                "            pool_size 1\n            timeout 60s"
            )
        ),
    );
    let mut leaver = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    leaver
        .write_all(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    // The slot is taken once a quick request is turned away with 503.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.get("/spin?quick");
        if r.status == 503 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(Instant::now() < deadline, "the spinning call never started");
    }
    drop(leaver);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.get("/spin?quick");
        if r.status == 200 {
            assert_eq!(r.text(), "quick");
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "the slot was not freed after the client left"
        );
    }
    // The leaver shows in the access log, with its route and nginx's 499.
    let line = s
        .wait_for_log(|l| l.contains("request abandoned"))
        .unwrap_or_else(|| panic!("no abandoned line; log:\n{}", s.logs().join("\n")));
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    assert_eq!(v["fields"]["status"], 499, "{line}");
    assert_eq!(v["fields"]["uri"], "/spin", "{line}");
    assert_still_serving(&s);
}

#[test]
fn content_length_with_transfer_encoding_cannot_smuggle_a_second_request() {
    // The CL.TE pattern: a front proxy framing by Content-Length would pass the
    // whole of this as one request; we frame by Transfer-Encoding (RFC 9112 §6.1),
    // so `GET /smuggled` would be a second request on the same connection. hyper
    // drops Content-Length and closes the connection after the response, so the
    // smuggled request is never read.
    let s = Server::with_routes(
        "clients-smuggle",
        &format!("{}    respond \"ok\"", guest_route("/echo*", "echo", "")),
    );
    let smuggled = "GET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let raw = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw.as_bytes()).expect("send");
    let mut buf = Vec::new();
    // Ends only because the server closes the connection.
    stream.read_to_end(&mut buf).expect("read until close");
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "exactly one response expected:\n{text}"
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        !text.contains("smuggled"),
        "the second request was served:\n{text}"
    );
    assert_still_serving(&s);
}
