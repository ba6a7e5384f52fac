//! `reverse_proxy` (issue 17): upstreams started by the test (`backend`), the
//! real binary in front of them. Round robin and the header rules, passive and
//! active health checks taking a killed or failing upstream out and bringing it
//! back, misbehaving upstreams (dead, hanging, resetting, garbage, cut mid-body),
//! 100 MB each way in bounded memory, a WebSocket round trip, upstream TLS and
//! h2c, `lb_try_duration` holding a request, and the Strangler Fig Caddyfile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::backend::{Backend, Misbehave, RawUpstream};
use crate::harness::{Resp, Server};

/// How long a test waits for a health state to change.
const SETTLE: Duration = Duration::from_secs(20);

/// The backend that answered (the first line of its echo).
fn who(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.text().lines().next().unwrap_or_default().to_owned()
}

/// Polls `cond` until it holds or `SETTLE` passes.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn round_robin_alternates_and_headers_follow_caddys_rules() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let s = Server::with_routes(
        "proxy_round_robin",
        &format!(
            "    reverse_proxy 127.0.0.1:{} 127.0.0.1:{} {{
        lb_policy round_robin
        header_up X-Real-IP {{remote_host}}
        header_up +X-Via gojinn
        header_up -X-Secret
        header_down -Server
        header_down X-Backend \"^(.*)$\" \"backend-$1\"
    }}",
            a.port, b.port
        ),
    );
    let names: Vec<String> = (0..6).map(|_| who(&s.get("/x?q=1"))).collect();
    for pair in names.windows(2) {
        assert_ne!(pair[0], pair[1], "{names:?}");
    }
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 3, "{names:?}");

    // An untrusted client's X-Forwarded-* are replaced, not extended.
    let r = s.request(
        "GET",
        "/who?x=1",
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil"),
            ("X-Secret", "s"),
        ],
        b"",
    );
    let seen = r.text();
    for line in [
        "GET /who?x=1",
        "host: localhost",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: localhost",
        "x-real-ip: 127.0.0.1",
        "x-via: gojinn",
    ] {
        assert!(
            seen.lines().any(|l| l == line),
            "missing `{line}` in:\n{seen}"
        );
    }
    // Hop-by-hop headers (the client's `Connection: close`) and deleted ones
    // do not reach the upstream.
    assert!(
        !seen.contains("x-secret") && !seen.contains("connection:"),
        "{seen}"
    );
    assert_eq!(r.header("server"), None, "{:?}", r.headers);
    let backend = r.header("x-backend").unwrap_or_default();
    assert!(
        backend == "backend-a" || backend == "backend-b",
        "{backend}"
    );
}

#[test]
fn trusted_proxies_keep_and_extend_forwarded_headers() {
    let a = Backend::start("a");
    let s = Server::with_routes(
        "proxy_trusted",
        &format!(
            "    reverse_proxy 127.0.0.1:{} {{\n        trusted_proxies 127.0.0.1/8\n    }}",
            a.port
        ),
    );
    let r = s.request(
        "GET",
        "/",
        &[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "example.com"),
        ],
        b"",
    );
    let seen = r.text();
    for line in [
        "x-forwarded-for: 6.6.6.6, 127.0.0.1",
        "x-forwarded-proto: https",
        "x-forwarded-host: example.com",
    ] {
        assert!(
            seen.lines().any(|l| l == line),
            "missing `{line}` in:\n{seen}"
        );
    }
}

#[test]
fn passive_checks_take_a_killed_upstream_out_and_bring_it_back() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let s = Server::with_routes(
        "proxy_passive",
        &format!(
            "    reverse_proxy 127.0.0.1:{} 127.0.0.1:{} {{
        lb_policy round_robin
        lb_retries 1
        lb_try_interval 10ms
        fail_duration 2s
        max_fails 1
    }}",
            a.port, b.port
        ),
    );
    assert_eq!(
        (0..4)
            .map(|_| who(&s.get("/")))
            .filter(|n| n == "b")
            .count(),
        2
    );
    b.stop();
    // Each request still succeeds: a refused dial is tried again on `a`.
    for _ in 0..6 {
        assert_eq!(who(&s.get("/")), "a");
    }
    let port = b.port.to_string();
    assert!(
        s.wait_for_log(|l| l.contains("max_fails reached") && l.contains(&port))
            .is_some(),
        "no passive health log line:\n{}",
        s.logs().join("\n")
    );
    b.restart();
    let before = b.hits();
    eventually("the restarted upstream to get requests again", || {
        who(&s.get("/"));
        b.hits() > before
    });
}

#[test]
fn active_checks_take_a_failing_upstream_out_and_bring_it_back() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let s = Server::with_routes(
        "proxy_active",
        &format!(
            "    reverse_proxy 127.0.0.1:{} 127.0.0.1:{} {{
        lb_policy round_robin
        health_uri /health
        health_interval 100ms
        health_timeout 1s
    }}",
            a.port, b.port
        ),
    );
    eventually("both upstreams to be checked", || {
        a.checks() > 0 && b.checks() > 0
    });
    let port = b.port.to_string();
    let unhealthy = |l: &str| l.contains("active health check failed") && l.contains(&port);
    let healthy = |l: &str| l.contains("healthy again") && l.contains(&port);

    // Failing its check: out until it passes again.
    b.set_healthy(false);
    assert!(
        s.wait_for_log(unhealthy).is_some(),
        "{}",
        s.logs().join("\n")
    );
    for _ in 0..6 {
        assert_eq!(who(&s.get("/")), "a");
    }
    b.set_healthy(true);
    assert!(s.wait_for_log(healthy).is_some(), "{}", s.logs().join("\n"));
    let before = b.hits();
    eventually("b to get requests again", || {
        who(&s.get("/"));
        b.hits() > before
    });

    // Killed: the check cannot connect; restarted: back in.
    b.stop();
    assert!(s.wait_for_logs(2, unhealthy), "{}", s.logs().join("\n"));
    for _ in 0..6 {
        assert_eq!(who(&s.get("/")), "a");
    }
    b.restart();
    assert!(s.wait_for_logs(2, healthy), "{}", s.logs().join("\n"));

    // No upstream available at all: 503, as Caddy answers.
    a.set_healthy(false);
    b.set_healthy(false);
    let a_port = a.port.to_string();
    assert!(s
        .wait_for_log(|l| l.contains("active health check failed") && l.contains(&a_port))
        .is_some());
    assert!(s.wait_for_logs(3, unhealthy));
    let r = s.get("/");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.text(), "no upstream available\n");
}

#[test]
fn a_websocket_round_trip_goes_through() {
    let a = Backend::start("a");
    let s = Server::with_routes(
        "proxy_websocket",
        &format!("    reverse_proxy 127.0.0.1:{}", a.port),
    );
    websocket_round_trip(s.port, "a");
}

/// Text and binary messages through the proxy on `port` to the echo of the
/// backend `name`, then a close.
fn websocket_round_trip(port: u16, name: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    crate::backend::runtime().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (mut ws, resp) = tokio_tungstenite::client_async("ws://localhost/ws", tcp)
            .await
            .expect("websocket handshake through the proxy");
        assert_eq!(resp.status(), 101);
        for text in ["hello", "again"] {
            ws.send(Message::text(text)).await.expect("send");
            let reply = ws.next().await.expect("a reply").expect("a message");
            assert_eq!(reply, Message::text(format!("{name}: {text}")));
        }
        let blob: Vec<u8> = (0..=255).collect();
        ws.send(Message::binary(blob.clone())).await.expect("send");
        let reply = ws.next().await.expect("a reply").expect("a message");
        assert_eq!(reply, Message::binary(blob));
        ws.close(None).await.expect("close");
    });
}

#[test]
fn upstream_tls_verifies_by_the_trusted_ca_and_h2c_speaks_http2() {
    let dir = crate::harness::scratch("proxy_tls_certs");
    let ca = crate::tls::Ca::new("proxy test CA");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write ca");
    let (cert, key) = ca.leaf(&dir, "backend", &["backend.test"]);
    let secure = Backend::start_tls("secure", &cert, &key);
    let plain = Backend::start("plain");
    let site = |path: &str, upstream: String, transport: &str| {
        format!(
            "    handle {path} {{\n        reverse_proxy {upstream} {{\n            transport http {{\n{transport}\n            }}\n        }}\n    }}\n"
        )
    };
    let body = [
        // Trusted CA, and the name the certificate has.
        site(
            "/trusted",
            format!("https://127.0.0.1:{}", secure.port),
            &format!(
                "                tls_trusted_ca_certs {}\n                tls_server_name backend.test",
                ca_file.display()
            ),
        ),
        // The public roots do not know the test CA.
        site(
            "/public-roots",
            format!("https://127.0.0.1:{}", secure.port),
            "                tls_server_name backend.test",
        ),
        site(
            "/insecure",
            format!("127.0.0.1:{}", secure.port),
            "                tls_insecure_skip_verify",
        ),
        site(
            "/h1-only",
            format!("127.0.0.1:{}", secure.port),
            "                tls_insecure_skip_verify\n                versions 1.1",
        ),
        site(
            "/h2c",
            format!("127.0.0.1:{}", plain.port),
            "                versions h2c",
        ),
        // ALPN would pick h2 here; an upgrade still goes over HTTP/1.1.
        site(
            "/ws",
            format!("127.0.0.1:{}", secure.port),
            "                tls_insecure_skip_verify",
        ),
    ]
    .concat();
    let s = Server::with_routes("proxy_tls", &body);
    let version = |r: &Resp| {
        r.text()
            .lines()
            .find_map(|l| l.strip_prefix("version: ").map(str::to_owned))
            .unwrap_or_default()
    };
    let r = s.get("/trusted");
    assert_eq!(who(&r), "secure");
    assert_eq!(version(&r), "HTTP/2.0", "ALPN offers h2 by default");
    let r = s.get("/public-roots");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(s
        .wait_for_log(|l| l.contains("gojinn::fault") && l.contains("/public-roots"))
        .is_some());
    assert_eq!(who(&s.get("/insecure")), "secure");
    assert_eq!(version(&s.get("/h1-only")), "HTTP/1.1");
    let r = s.get("/h2c");
    assert_eq!(who(&r), "plain");
    assert_eq!(version(&r), "HTTP/2.0");
    websocket_round_trip(s.port, "secure");
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn misbehaving_upstreams_get_a_defined_status_and_a_log_line() {
    let hang = RawUpstream::start(Misbehave::Hang);
    let reset = RawUpstream::start(Misbehave::Reset);
    let garbage = RawUpstream::start(Misbehave::Garbage);
    let cut = RawUpstream::start(Misbehave::CloseMidBody);
    let dead = dead_port();
    let route = |path: &str, port: u16, extra: &str| {
        format!("    handle {path} {{\n        reverse_proxy 127.0.0.1:{port} {{\n{extra}\n        }}\n    }}\n")
    };
    let body = [
        route(
            "/hang",
            hang.port,
            "            transport http {\n                response_header_timeout 300ms\n            }",
        ),
        route("/reset", reset.port, ""),
        route("/garbage", garbage.port, ""),
        route("/cut", cut.port, ""),
        route("/dead", dead, ""),
    ]
    .concat();
    let s = Server::with_routes("proxy_misbehave", &body);
    for (path, status, fault) in [
        ("/hang", 504, "upstream_timeout"),
        ("/reset", 502, "upstream"),
        ("/garbage", 502, "upstream"),
        ("/dead", 502, "upstream"),
    ] {
        let started = Instant::now();
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} was slow"
        );
        assert!(
            s.wait_for_log(|l| l.contains("gojinn::fault")
                && l.contains(&format!("\"fault\":\"{fault}\""))
                && l.contains(&format!("\"route\":\"{path}\"")))
                .is_some(),
            "{path}: no fault line:\n{}",
            s.logs().join("\n")
        );
    }
    // Cut mid-body: the head is gone already, so the client's response is cut
    // short too (never padded or left hanging), and the log says why.
    let r = s.get("/cut");
    assert_eq!(r.status, 200);
    assert!(r.body.len() < 1000, "{} bytes", r.body.len());
    assert!(s.wait_for_log(|l| l.contains("failed mid-way")).is_some());
}

/// Bytes each way in the streaming test.
const BIG: u64 = 100 << 20;
/// RSS growth allowed while 100 MB pass through each way.
const MAX_GROWTH_KIB: u64 = 40 << 10;

#[test]
fn a_hundred_megabytes_each_way_stream_in_bounded_memory() {
    let a = Backend::start("a");
    let s = Server::with_routes(
        "proxy_stream",
        &format!("    reverse_proxy 127.0.0.1:{}", a.port),
    );
    assert_eq!(who(&s.get("/")), "a");
    let baseline = s.rss_kib();
    let mut peak = baseline;

    // Up: a 100 MB request body to the backend's sink.
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        conn,
        "POST /sink HTTP/1.1\r\nHost: localhost\r\nContent-Length: {BIG}\r\nConnection: close\r\n\r\n"
    )
    .expect("head");
    let chunk = vec![b'u'; 256 << 10];
    let mut sent = 0u64;
    while sent < BIG {
        conn.write_all(&chunk).expect("body");
        sent += chunk.len() as u64;
        peak = peak.max(s.rss_kib());
    }
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).expect("answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.ends_with(&BIG.to_string()), "{answer}");
    assert_eq!(a.received(), BIG);

    // Down: a 100 MB response body from the backend.
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        conn,
        "GET /blob?{BIG} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("head");
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    let mut reads = 0u64;
    loop {
        let n = conn.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got += n as u64;
        reads += 1;
        if reads.is_multiple_of(16) {
            peak = peak.max(s.rss_kib());
        }
    }
    assert!(got > BIG && got < BIG + 1024, "{got} bytes");
    let growth = peak.saturating_sub(baseline);
    assert!(
        growth < MAX_GROWTH_KIB,
        "RSS grew by {growth} KiB (from {baseline} KiB) while 100 MB streamed each way"
    );
}

/// Gojinn's first documented use case, "Strangler Fig": the legacy app keeps
/// every route except those moved to functions, one by one. Both ways Gojinn
/// users write it: `handle` blocks, and flat directives with `order`.
#[test]
fn strangler_fig_sends_api_to_a_function_and_everything_else_to_the_app() {
    let app = Backend::start("legacy");
    let guest = crate::harness::guest().display().to_string();
    let with_handles = Server::with_routes(
        "proxy_strangler_handle",
        &format!(
            "    # Moved to a function so far: the API.
    handle /api/* {{
        gojinn {guest} {{
            args echo
        }}
    }}
    # Everything else: still the legacy app.
    handle {{
        reverse_proxy 127.0.0.1:{}
    }}",
            app.port
        ),
    );
    let flat = Server::with_globals(
        "proxy_strangler_flat",
        "    admin off\n    order gojinn before reverse_proxy",
        &format!(
            "    gojinn /api/* {guest} {{\n        args echo\n    }}\n    reverse_proxy 127.0.0.1:{}",
            app.port
        ),
        &[],
    );
    for s in [&with_handles, &flat] {
        let r = s.request("POST", "/api/orders?id=7", &[], b"{\"n\":1}");
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json();
        assert_eq!(seen["uri"], "/api/orders?id=7");
        assert_eq!(seen["body"], "{\"n\":1}");
        for path in ["/", "/about", "/apix", "/static/app.css"] {
            let r = s.get(path);
            assert_eq!(who(&r), "legacy", "{path}");
            assert!(
                r.text().lines().any(|l| l == format!("GET {path}")),
                "{path}: {}",
                r.text()
            );
        }
    }
}

/// `lb_try_duration` holds a request while no upstream can take it (Caddy's way
/// to pause traffic during a deploy): the request is answered once the
/// upstream is back.
#[test]
fn lb_try_duration_holds_a_request_until_the_upstream_is_back() {
    let a = Backend::start("a");
    let s = Server::with_globals(
        "proxy_try_duration",
        "    admin off\n    debug",
        &format!(
            "    reverse_proxy 127.0.0.1:{} {{
        lb_try_duration 30s
        lb_try_interval 20ms
    }}",
            a.port
        ),
        &[],
    );
    a.stop();
    let port = s.port;
    let held = std::thread::spawn(move || crate::harness::try_get(port, "/held"));
    // The proxy is retrying: bring the upstream back.
    assert!(
        s.wait_for_log(|l| l.contains("trying again")).is_some(),
        "{}",
        s.logs().join("\n")
    );
    a.restart();
    let r = held.join().expect("request thread").expect("an answer");
    assert_eq!(who(&r), "a");
    assert!(r.text().lines().any(|l| l == "GET /held"), "{}", r.text());
}
