//! Issue 16, functions and the host ABI: modules written the way Gojinn users
//! wrote them run here unmodified. The guest is `tests/guest-go`, built from
//! source with `gojinn build` and Go (a Go package declaring Gojinn's own host
//! signatures, untagged response structs, plain output); one mode per route.
//!
//! Without Go the tests write `SKIPPED gojinn_functions: <reason>` to stderr and
//! return (`GOJINN_REQUIRE_TOOLCHAINS=1` makes that a failure), as `languages`
//! does; `scripts/toolchains.sh go` installs it.

use crate::harness::{root, scratch, Resp, Server};
use crate::host::{serve, storage};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::OnceLock;

/// The Go the build uses: `$GO`, `go` on PATH, or Debian's golang-1.23-go.
fn go_binary() -> Option<PathBuf> {
    if let Some(go) = std::env::var_os("GO") {
        return Some(PathBuf::from(go));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("go"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/lib/go-1.23/bin/go");
        debian.is_file().then_some(debian)
    })
}

/// `tests/guest-go` built once per test run with `gojinn build` (the binary
/// under test, which also checks that the module loads); the reason when Go is
/// missing.
fn go_guest() -> Result<&'static Path, &'static str> {
    static GUEST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    GUEST
        .get_or_init(|| {
            let Some(go) = go_binary() else {
                return Err("go not found (scripts/toolchains.sh go)".to_owned());
            };
            let out_dir = scratch("guest-go-build");
            let module = out_dir.join("guest-go.wasm");
            let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
                .arg("build")
                .arg(root().join("tests/guest-go"))
                .arg("--output")
                .arg(&module)
                .env("GO", &go)
                .env("GOCACHE", root().join("target/toolchains/go-cache"))
                .output()
                .expect("run gojinn build");
            assert!(
                out.status.success(),
                "gojinn build tests/guest-go failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(module)
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

/// The guest, or `None` after reporting the skip.
fn guest_or_skip(test: &str) -> Option<&'static Path> {
    match go_guest() {
        Ok(m) => Some(m),
        Err(reason) => {
            assert!(
                std::env::var_os("GOJINN_REQUIRE_TOOLCHAINS").is_none_or(|v| v.is_empty()),
                "gojinn_functions::{test}: Go missing and GOJINN_REQUIRE_TOOLCHAINS is set: {reason}"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED gojinn_functions::{test}: {reason}"
            );
            None
        }
    }
}

/// A route at `path` running the Go guest in `mode`, with `extra` sub-directives.
fn route(module: &Path, path: &str, mode: &str, extra: &str) -> String {
    format!(
        "    handle {path} {{\n        gojinn {} {{\n            args {mode}\n            timeout 10s\n{extra}\n        }}\n    }}\n",
        module.display()
    )
}

fn content_type(r: &Resp) -> Option<&str> {
    r.header("content-type")
}

/// Issue 16 (1): a module built against Gojinn's Go SDK signature
/// `host_kv_get(…) uint32` loads and reads KV: a value longer than the buffer is
/// cut to it (the result is the buffer's size), a miss or a denial is
/// `0xFFFFFFFF`.
#[test]
fn go_sdk_host_kv_get_with_a_uint32_result_reads_and_truncates() {
    let Some(m) = guest_or_skip("kv") else { return };
    let store = storage("go-kv");
    let body = format!(
        "{}{}",
        route(
            m,
            "/kv",
            "kv",
            "            permissions {\n                kv_read *\n                kv_write *\n            }"
        ),
        route(
            m,
            "/kv-unreadable",
            "kv",
            "            permissions {\n                kv_read other:*\n                kv_write greeting\n            }"
        ),
    );
    let s = serve("go-kv", &store, &body);
    let r = s.get("/kv");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"cut": "hello", "cut_n": 5, "whole": "hello world", "whole_n": 11,
               "miss_n": 0xFFFF_FFFF_u32}),
    );
    let r = s.get("/kv-unreadable");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"cut": "", "cut_n": 0xFFFF_FFFF_u32, "whole": "", "whole_n": 0xFFFF_FFFF_u32,
               "miss_n": 0xFFFF_FFFF_u32}),
        "a denied read looks like a miss, as in Gojinn"
    );
    let line = s
        .wait_for_log(|l| l.contains("gojinn::host") && l.contains("/kv-unreadable"))
        .expect("the denial is logged");
    assert!(
        line.contains("host_kv_get") && line.contains("denied"),
        "{line}"
    );
}

/// Issue 16 (6): Gojinn's `host_kv_set` returns nothing, and its fn-kv answered
/// "SET OK" after a write that did not happen. Here the denied write traps:
/// the client gets a 502, the log says which call failed and why.
#[test]
fn a_denied_legacy_host_kv_set_fails_the_request_and_says_why() {
    let Some(m) = guest_or_skip("kv_set") else {
        return;
    };
    let store = storage("go-kv-set");
    let s = serve(
        "go-kv-set",
        &store,
        &route(
            m,
            "/kv-set",
            "kv-set",
            "            permissions {\n                kv_write allowed:*\n            }",
        ),
    );
    let r = s.get("/kv-set?key=allowed:a");
    assert_eq!((r.status, r.text().as_str()), (200, "SET OK\n"));

    let r = s.get("/kv-set?key=secret");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("SET OK"), "{}", r.text());
    let line = s
        .wait_for_log(|l| l.contains("`host_kv_set` failed"))
        .expect("a log line for the trapped call");
    assert!(
        line.contains("`secret`") && line.contains("kv_write"),
        "{line}"
    );
    assert!(line.contains("trace_id"), "{line}");
}

/// Issue 16 (3): a Go struct without json tags writes `{"Status":…,"Body":…}`;
/// Go's decoder (and Gojinn) matched keys case-insensitively.
#[test]
fn an_untagged_go_response_struct_is_the_response() {
    let Some(m) = guest_or_skip("untagged") else {
        return;
    };
    let s = Server::with_routes("go-untagged", &route(m, "/untagged", "untagged", ""));
    let r = s.get("/untagged");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), "made by an untagged struct");
    assert_eq!(r.header("x-go"), Some("untagged"));
    assert_eq!(content_type(&r), Some("text/plain; charset=utf-8"));
}

/// Issue 16 (4): stdout that is not a response object is the body of a 200,
/// byte for byte (plain text, `{"message":"hi"}`, `[]`), with no fault logged;
/// empty stdout and a broken response object stay 502.
#[test]
fn plain_and_non_object_output_is_the_body_of_a_200() {
    let Some(m) = guest_or_skip("plain") else {
        return;
    };
    let body: String = ["plain", "message", "array", "broken", "empty"]
        .iter()
        .map(|mode| route(m, &format!("/{mode}"), mode, ""))
        .collect();
    let s = Server::with_routes("go-plain", &body);
    for (path, text, ct) in [
        (
            "/plain",
            "hello from plain Go output\n",
            "text/plain; charset=utf-8",
        ),
        ("/message", "{\"message\":\"hi\"}\n", "application/json"),
        ("/array", "[]", "application/json"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.text(), text, "{path}");
        assert_eq!(content_type(&r), Some(ct), "{path}");
    }
    let r = s.get("/broken");
    assert_eq!(r.status, 502, "{}", r.text());
    s.wait_for_log(|l| l.contains("/broken") && l.contains("contract"))
        .expect("the broken response object is logged");
    let r = s.get("/empty");
    assert_eq!(r.status, 502, "{}", r.text());
    s.wait_for_log(|l| l.contains("/empty") && l.contains("stdout is empty"))
        .expect("the empty stdout is logged");
    // The three 200s logged no fault.
    let faults: Vec<String> = s
        .logs()
        .into_iter()
        .filter(|l| l.contains("\"fault") || l.contains("contract"))
        .filter(|l| {
            ["/plain", "/message", "/array"]
                .iter()
                .any(|p| l.contains(p))
        })
        .collect();
    assert!(faults.is_empty(), "{faults:#?}");
}

/// Issue 16 (5): a response without a Content-Type gets the one Go's net/http
/// sniffed (here `text/html; charset=utf-8`).
#[test]
fn a_response_without_content_type_gets_one_sniffed() {
    let Some(m) = guest_or_skip("sniff") else {
        return;
    };
    let s = Server::with_routes("go-sniff", &route(m, "/html", "untagged-html", ""));
    let r = s.get("/html");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with("<!DOCTYPE html>"), "{}", r.text());
    assert_eq!(content_type(&r), Some("text/html; charset=utf-8"));
    assert_eq!(r.header_all("content-type").len(), 1);
}

/// A one-shot HTTP server: answers each connection with `body` (status 404,
/// which `host_http_get` returns anyway) and reports each request line before
/// it answers.
fn upstream(body: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            // The rest of the head.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            // Reported before the answer is written, so a caller that has its
            // answer finds the line already in the channel.
            if tx.send(line).is_err() {
                return;
            }
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

/// Issue 16 (2): `host_http_get(url, out, max) -> i64` GETs a URL the route's
/// `http` permission grants and returns the body cut to the buffer; without the
/// grant it returns 0 and connects nowhere.
#[test]
fn host_http_get_follows_the_http_permission_and_truncates() {
    let Some(m) = guest_or_skip("http_get") else {
        return;
    };
    let (port, requests) = upstream("hello from upstream");
    let body = format!(
        "{}{}",
        route(
            m,
            "/get",
            "http-get",
            &format!(
                "            permissions {{\n                http 127.0.0.1:{port}\n            }}"
            )
        ),
        route(m, "/get-denied", "http-get", ""),
    );
    let s = Server::with_routes("go-http-get", &body);
    let url = format!("http://127.0.0.1:{port}/item");

    let r = s.request("POST", "/get-denied?max=64", &[], url.as_bytes());
    assert_eq!((r.status, r.text().as_str()), (200, "n=0 body="));
    s.wait_for_log(|l| l.contains("host_http_get") && l.contains("denied"))
        .expect("the denial is logged");

    let r = s.request("POST", "/get?max=5", &[], url.as_bytes());
    assert_eq!((r.status, r.text().as_str()), (200, "n=5 body=hello"));
    let r = s.request("POST", "/get?max=4096", &[], url.as_bytes());
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "n=19 body=hello from upstream")
    );

    // Two requests reached the upstream, both from the granted route (the denied
    // call came first: had it connected, its line would be first).
    let seen: Vec<String> = requests.try_iter().collect();
    assert_eq!(seen, ["GET /item HTTP/1.1\r\n", "GET /item HTTP/1.1\r\n"]);
}

/// Issue 16 (2): a module importing a Gojinn function this server does not have
/// (`host_ask_ai`) loads; `gojinn validate` and the serving load warn, naming
/// it; a call returns Gojinn's failure (its error object) and logs a warning
/// with the route and trace id.
#[test]
fn unavailable_gojinn_functions_load_warn_and_fail_per_call() {
    let Some(m) = guest_or_skip("ask_ai") else {
        return;
    };
    let dir = scratch("go-ask-ai-validate");
    let cfg = dir.join("Caddyfile");
    std::fs::write(
        &cfg,
        format!(
            "{{\n    admin off\n}}\n:0 {{\n{}\n}}\n",
            route(m, "/ai", "ask-ai", "")
        ),
    )
    .expect("write Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["validate", "--config"])
        .arg(&cfg)
        .env("GOJINN_CACHE_DIR", root().join("target/e2e-cache"))
        .output()
        .expect("run gojinn validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The guest also imports KV functions on a route without a KV grant, which
    // has its own warning; count the ones about unavailable functions.
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: ") && l.contains("does not provide"))
        .collect();
    assert_eq!(warnings.len(), 1, "one import, one warning: {stderr}");
    assert!(
        warnings[0].contains("`host_ask_ai`") && warnings[0].contains("does not provide"),
        "{stderr}"
    );

    let s = Server::start(&cfg, &[]);
    let load = s
        .wait_for_log(|l| l.contains("gojinn::load") && l.contains("`host_ask_ai`"))
        .expect("the serving load warns too");
    assert!(load.contains("\"WARN\""), "{load}");

    let r = s.get("/ai");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": "`host_ask_ai` is not available on this server"})
    );
    let line = s
        .wait_for_log(|l| {
            l.contains("`host_ask_ai` is not available on this server")
                && l.contains("gojinn::host")
        })
        .expect("a warning per call");
    let v: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["level"], "WARN", "{line}");
    assert_eq!(v["fields"]["route"], "/ai", "{line}");
    assert!(
        v["fields"]["trace_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{line}"
    );
}

/// Gojinn's quickstart Caddyfile (docs/getting-started/quickstart.md upstream),
/// as written there but for the port: `order gojinn before file_server`, a
/// `header` line inside `handle`, `timeout`, `memory_limit 64MB` and `env`.
const QUICKSTART: &str = r#"{
    # Define the plugin execution order
    order gojinn before file_server
}

:8080 {
    # API route
    handle /api/hello {
        header Content-Type application/json
        
        # Run our WASM binary
        gojinn ./hello.wasm {
            timeout 1s
            memory_limit 64MB
            env ENV "dev"
        }
    }
}
"#;

/// The global options of Gojinn's deployment guide (docs/guides/deployment.md
/// upstream): the log to a rolled file, `roll_size` in lower case.
const DEPLOYMENT_GLOBALS: &str = r#"{
    order gojinn last
    
    log {
        output file /var/log/gojinn/access.log {
            roll_size 100mb
            roll_keep 5
            roll_keep_for 720h
        }
        format json
        level INFO
    }
}
"#;

/// Issue 17: the Caddyfiles of Gojinn's quickstart and deployment guide run
/// unmodified (fixed ports and the log directory aside, which a test cannot own),
/// with the quickstart's Go function.
#[test]
fn gojinns_quickstart_and_deployment_caddyfiles_run_unmodified() {
    let Some(module) = guest_or_skip("gojinns_quickstart_and_deployment_caddyfiles_run_unmodified")
    else {
        return;
    };
    let dir = scratch("gojinn-quickstart");
    std::fs::copy(module, dir.join("hello.wasm")).expect("copy hello.wasm");
    let config = dir.join("Caddyfile");
    std::fs::write(&config, QUICKSTART.replace(":8080 {", ":0 {")).expect("write Caddyfile");
    let s = Server::start(&config, &[]);
    let r = s.request(
        "POST",
        "/api/hello",
        &[("content-type", "application/json")],
        br#"{"name": "Paulo"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(content_type(&r), Some("application/json"));
    assert_eq!(r.json(), json!({"message": "Hello, Paulo!", "env": "dev"}));
    assert_eq!(s.get("/api/other").status, 404);

    // The deployment guide's globals validate as written (nothing is opened)…
    let deploy = dir.join("Deploy.Caddyfile");
    let site = ":8080 {\n    gojinn ./hello.wasm\n}\n";
    std::fs::write(&deploy, format!("{DEPLOYMENT_GLOBALS}\n{site}")).expect("write Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .arg("validate")
        .arg("--config")
        .arg(&deploy)
        .output()
        .expect("run gojinn validate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // …and serve with the log in a directory of the test's and no admin
    // listener on the fixed port 2019: the server's log goes to the file, as
    // Caddy's default logger does.
    let log = dir.join("access.log");
    let text = format!("{DEPLOYMENT_GLOBALS}\n{site}")
        .replace("/var/log/gojinn/access.log", &log.display().to_string())
        .replace("order gojinn last", "order gojinn last\n    admin off")
        .replace(":8080 {", ":0 {");
    std::fs::write(&deploy, text).expect("write Caddyfile");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .arg("run")
        .arg("--config")
        .arg(&deploy)
        .env("GOJINN_CACHE_DIR", root().join("target/e2e-cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn gojinn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let port = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let port = text.lines().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["fields"]["message"] == "listening").then(|| v["fields"]["port"].as_u64())?
        });
        if let Some(p) = port {
            break u16::try_from(p).expect("port");
        }
        if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("no listening line in {}:\n{text}", log.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let r = crate::harness::request_to(port, "POST", "/", &[], br#"{"name": "ops"}"#);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, ops!");
}
