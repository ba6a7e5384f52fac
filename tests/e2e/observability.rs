//! Observability: the admin listener's endpoints, exact metric deltas after a
//! known mix of requests, `promtool` on a real scrape, and the debug header.

use crate::harness::{guest, guest_route, request_to, samples, scratch, Resp, Server};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn admin_get(port: u16, path: &str) -> Resp {
    request_to(port, "GET", path, &[], b"")
}

fn scrape(port: u16) -> HashMap<String, f64> {
    let r = admin_get(port, "/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    samples(&r.text())
}

/// Polls `/ready` until it answers 200: the latch flips right after the
/// listeners are bound, which may be just after the log line the harness saw.
fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = admin_get(port, "/ready");
        if r.status == 200 {
            return;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(Instant::now() < deadline, "/ready never answered 200");
        std::thread::yield_now();
    }
}

#[test]
fn admin_endpoints_answer_and_reject_what_they_should() {
    let routes = format!(
        "{}    handle /other {{\n        respond \"x\"\n    }}\n",
        guest_route(
            "/ok",
            "echo",
            "            env TOKEN hunter2\n            debug_secret s3cret-value"
        )
    );
    let (_s, admin) = Server::with_admin("obs-admin", &routes);
    wait_ready(admin);

    let health = admin_get(admin, "/health");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));

    let config = admin_get(admin, "/config");
    assert_eq!(config.status, 200);
    let text = config.text();
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret-value"),
        "{text}"
    );
    let json = config.json();
    let ok_route = json["sites"][0]["routes"]
        .as_array()
        .and_then(|routes| routes.iter().find(|r| r["match"] == "/ok"))
        .unwrap_or_else(|| panic!("no /ok route in {json}"));
    let f = &ok_route["handle"]["routes"][0]["handle"];
    assert_eq!(f["env"][0]["name"], "TOKEN", "{json}");
    assert_eq!(f["env"][0]["value"], "[redacted]", "{json}");
    assert_eq!(f["debug_secret"], "[redacted]", "{json}");

    assert_eq!(admin_get(admin, "/nope").status, 404);
    let post = request_to(admin, "POST", "/metrics", &[], b"");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_eq!(admin_get(admin, "/load").status, 405);

    let wrong_type = request_to(
        admin,
        "POST",
        "/load",
        &[("Content-Type", "text/plain")],
        b":0 { respond hi }",
    );
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());
    // A config with a syntax error is refused with its place in the body.
    let load = request_to(
        admin,
        "POST",
        "/load",
        &[("Content-Type", "text/caddyfile")],
        b":0 {\n    gojinn\n}\n",
    );
    assert_eq!(load.status, 400, "{}", load.text());
    assert!(load.text().contains("load-request:2:5"), "{}", load.text());
}

#[test]
fn metrics_count_a_known_mix_of_requests_exactly() {
    let mut routes = guest_route("/ok", "echo", "");
    routes.push_str(&guest_route("/exit", "exit", ""));
    routes.push_str(&guest_route("/spin", "spin", "            timeout 300ms"));
    let (s, admin) = Server::with_admin("obs-metrics", &routes);
    wait_ready(admin);
    let before = scrape(admin);

    for _ in 0..3 {
        assert_eq!(s.get("/ok").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(s.get("/exit").status, 502);
    }
    assert_eq!(s.get("/spin").status, 504);
    assert_eq!(s.request("POST", "/ok", &[], b"{}").status, 200);
    assert_eq!(s.get("/unrouted").status, 404);

    let after = scrape(admin);
    let delta = |key: &str| {
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
    };
    // Gojinn's labels beside ours: the module file and the exact status.
    let duration = |route: &str, status: u16| {
        format!(
            r#"gojinn_function_duration_seconds_count{{route="{route}",path="{}",status="{status}"}}"#,
            guest().display()
        )
    };
    let (ok_duration, exit_duration) = (duration("/ok", 200), duration("/exit", 502));
    let expected = [
        (
            r#"gojinn_requests_total{route="/ok",method="GET",class="2xx"}"#,
            3.0,
        ),
        (
            r#"gojinn_requests_total{route="/ok",method="POST",class="2xx"}"#,
            1.0,
        ),
        (
            r#"gojinn_requests_total{route="/exit",method="GET",class="5xx"}"#,
            2.0,
        ),
        (
            r#"gojinn_requests_total{route="/spin",method="GET",class="5xx"}"#,
            1.0,
        ),
        (
            r#"gojinn_requests_total{route="(none)",method="GET",class="4xx"}"#,
            1.0,
        ),
        (r#"gojinn_faults_total{route="/exit",kind="exit"}"#, 2.0),
        (r#"gojinn_faults_total{route="/spin",kind="timeout"}"#, 1.0),
        (ok_duration.as_str(), 4.0),
        (exit_duration.as_str(), 2.0),
        (
            r#"gojinn_sandbox_instantiate_seconds_count{route="/spin"}"#,
            1.0,
        ),
        (
            r#"gojinn_sandbox_memory_peak_bytes_count{route="/ok"}"#,
            4.0,
        ),
    ];
    for (key, want) in expected {
        assert_eq!(delta(key), want, "{key}");
    }
    // No fault was counted on the healthy route, and nothing is left in flight.
    assert!(
        !after
            .keys()
            .any(|k| k.starts_with(r#"gojinn_faults_total{route="/ok""#)),
        "{after:?}"
    );
    for route in ["/ok", "/exit", "/spin"] {
        let key = format!(r#"gojinn_sandboxes_in_flight{{route="{route}"}}"#);
        assert_eq!(after.get(&key), Some(&0.0), "{key}");
    }
    // The echo guest never grows its memory, so it stays on guard pages.
    assert_eq!(
        after.get(r#"gojinn_sandbox_memory_grows_total{route="/ok"}"#),
        Some(&0.0)
    );
    assert_eq!(
        after.get(r#"gojinn_sandbox_bounds_checked{route="/ok"}"#),
        Some(&0.0)
    );
    // A guest's memory is at least one wasm page.
    let mem_sum = after[r#"gojinn_sandbox_memory_peak_bytes_sum{route="/ok"}"#];
    assert!(mem_sum >= 4.0 * 65536.0, "{mem_sum}");
    assert_eq!(
        after.get(r#"gojinn_build_info{version="0.1.0",wasmtime="48"}"#),
        Some(&1.0)
    );
    let compiled =
        after["gojinn_compile_cache_hits_total"] + after["gojinn_compile_cache_misses_total"];
    assert_eq!(
        compiled, 3.0,
        "three modules went through the compile cache"
    );
    assert_eq!(after["gojinn_module_compile_seconds_count"], 3.0);
}

#[test]
fn promtool_accepts_the_scrape() {
    let (s, admin) = Server::with_admin("obs-promtool", &guest_route("/exit", "exit", ""));
    wait_ready(admin);
    assert_eq!(s.get("/exit").status, 502);
    let classic = admin_get(admin, "/metrics");
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let open = request_to(
        admin,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
        b"",
    );
    assert!(open.text().ends_with("# EOF\n"), "{}", open.text());

    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIPPED promtool_accepts_the_scrape: `promtool` is not installed (Debian package `prometheus`)");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&classic.body)
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        classic.text()
    );
}

#[test]
fn run_fails_before_serving_when_the_admin_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = scratch("obs-admin-taken");
    let path = dir.join("Caddyfile");
    std::fs::write(
        &path,
        format!("{{\n    admin 127.0.0.1:{port}\n}}\n\n:0 {{\n    respond \"x\"\n}}\n"),
    )
    .expect("write Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run gojinn");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot bind the admin address `127.0.0.1:{port}`")),
        "{err}"
    );
    assert!(!err.contains("\"message\":\"listening\""), "{err}");
}

fn debug_server(name: &str) -> Server {
    let mut routes = guest_route("/dbg", "echo", "            debug_secret s3cret-value");
    routes.push_str(&guest_route(
        "/flood",
        "stderr-flood",
        "            debug_secret s3cret-value",
    ));
    routes.push_str(&guest_route("/plain", "echo", ""));
    Server::with_routes(name, &routes)
}

#[test]
fn debug_header_returns_stderr_only_for_the_right_secret() {
    let s = debug_server("obs-debug");
    let right = s.request("GET", "/dbg", &[("X-Gojinn-Debug", "s3cret-value")], b"");
    assert_eq!(right.status, 200);
    assert_eq!(
        right.header("x-gojinn-logs"),
        Some("echo guest: \"GET\" \"/dbg\"%0A"),
        "{:?}",
        right.headers
    );

    let wrong = s.request("GET", "/dbg", &[("X-Gojinn-Debug", "s3cret-valuE")], b"");
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.header("x-gojinn-logs"), None);
    let prefix = s.request("GET", "/dbg", &[("X-Gojinn-Debug", "s3cret")], b"");
    assert_eq!(prefix.header("x-gojinn-logs"), None);
    let none = s.get("/dbg");
    assert_eq!(none.header("x-gojinn-logs"), None);
    // A route without a secret reveals nothing, whatever the request sends.
    let unset = s.request("GET", "/plain", &[("X-Gojinn-Debug", "s3cret-value")], b"");
    assert_eq!(unset.header("x-gojinn-logs"), None);
}

#[test]
fn debug_header_is_capped_with_a_truncation_marker() {
    let s = debug_server("obs-debug-cap");
    let r = s.request("GET", "/flood", &[("X-Gojinn-Debug", "s3cret-value")], b"");
    assert_eq!(r.status, 200);
    let logs = r.header("x-gojinn-logs").expect("logs header");
    assert_eq!(logs.len(), 4096);
    assert!(logs.starts_with("yyyy"), "{logs}");
    assert!(logs.ends_with("...[truncated]"), "{logs}");
}

#[test]
fn console_log_format_writes_plain_lines() {
    let dir = scratch("obs-console");
    let path = dir.join("Caddyfile");
    std::fs::write(
        &path,
        format!(
            "{{\n    admin off\n    log {{\n        format console\n    }}\n}}\n\n:0 {{\n    gojinn {}\n}}\n",
            guest().display()
        ),
    )
    .expect("write Caddyfile");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .env("GOJINN_CACHE_DIR", "off")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gojinn");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stderr);
    while reader.read_line(&mut line).expect("read log") > 0 {
        if line.contains("listening") {
            break;
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains(" INFO ") && line.contains("listening"),
        "{line}"
    );
    assert!(!line.trim_start().starts_with('{'), "not JSON: {line}");
}
