//! One test per guest language: the language's hello example is built from source with
//! its real toolchain (`scripts/build-examples.sh --out <scratch> <lang>`, which runs
//! `gojinn build`, the command a user runs, with the binary under test), served by the
//! real server, and checked over HTTP.
//!
//! A language whose toolchain is not installed is not built: its test writes
//! `SKIPPED languages::<lang>: <reason>` straight to the test process's stderr (past
//! libtest's output capture, so it shows in every run) and returns. Set
//! `GOJINN_REQUIRE_TOOLCHAINS=1` to turn such a skip into a failure.
//! `scripts/toolchains.sh` (run by `scripts/test.sh`) installs every toolchain.

use crate::harness::{go_binary, root, scratch, Server};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What building one example gave.
enum Built {
    Module(PathBuf),
    Skipped(String),
}

/// Builds `examples/<lang>-hello` into a scratch folder with its own toolchain.
fn build(lang: &str) -> Built {
    let dir = scratch(&format!("lang-{lang}-build"));
    let out = Command::new("bash")
        .arg(root().join("scripts/build-examples.sh"))
        .arg("--out")
        .arg(&dir)
        .arg(lang)
        // The binary under test builds the example, rather than one the script
        // would build with cargo while the tests run.
        .env("GOJINN", env!("CARGO_BIN_EXE_gojinn"))
        // Flags meant for the host test build must not leak into the guest build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run scripts/build-examples.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "building the {lang} example failed:\n{log}"
    );
    if let Some(reason) = log
        .lines()
        .find_map(|l| l.split_once(&format!("{lang}: skipped: ")))
        .map(|(_, reason)| reason.to_owned())
    {
        return Built::Skipped(reason);
    }
    let module = dir.join(format!("{lang}-hello.wasm"));
    assert!(
        module.is_file(),
        "build-examples.sh succeeded but wrote no {}:\n{log}",
        module.display()
    );
    Built::Module(module)
}

/// The module for `lang`, or `None` after reporting the skip.
fn built_or_skip(lang: &str) -> Option<PathBuf> {
    match build(lang) {
        Built::Module(m) => Some(m),
        Built::Skipped(reason) => {
            skip(lang, &reason);
            None
        }
    }
}

/// Reports `languages::<test>` as skipped for `reason`, or fails it when
/// `GOJINN_REQUIRE_TOOLCHAINS` is set.
fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("GOJINN_REQUIRE_TOOLCHAINS").is_none_or(|v| v.is_empty()),
        "languages::{test}: toolchain missing and GOJINN_REQUIRE_TOOLCHAINS is set: {reason}"
    );
    // Straight to the process's stderr: libtest captures eprintln! of passing
    // tests, and a skip must never look like a pass.
    let _ = writeln!(std::io::stderr(), "SKIPPED languages::{test}: {reason}");
}

/// Serves `module` under `/<lang>/*` with the memory limit examples/Caddyfile uses.
fn serve(lang: &str, module: &Path) -> Server {
    Server::with_routes(
        &format!("lang-{lang}-serve"),
        &format!(
            "    handle /{lang}/* {{\n        gojinn {} {{\n            memory_limit 64MB\n        }}\n    }}\n",
            module.display()
        ),
    )
}

/// The hello/echo API every language example implements (see examples/rust-hello):
/// method, path and query from `uri`, the `User-Agent` header, the body's size in
/// bytes, and the body itself when it is JSON; one `handled` line on stderr, and with
/// `host_log`, one line through the host ABI's `host_log` too.
fn check_hello_api(lang: &str, name: &str, s: &Server, host_log: bool) {
    // A JSON body with escapes and non-ASCII text, and a header with a quote in it:
    // both travel through the contract's JSON twice (request in, response out).
    let body = r#"{"n":[1,2.5,"two",{"three":null,"t":true}],"s":"é\n\"q\""}"#;
    let agent = r#"e2e "quoted" agent"#;
    let r = s.request(
        "POST",
        &format!("/{lang}/hello?name=you&x=1"),
        &[("User-Agent", agent), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["message"], format!("hello from {name}"), "{v}");
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["path"], format!("/{lang}/hello"), "{v}");
    assert_eq!(v["query"], "name=you&x=1", "{v}");
    assert_eq!(v["user_agent"], agent, "{v}");
    assert_eq!(v["body_bytes"], body.len(), "{v}");
    let sent: Value = serde_json::from_str(body).expect("test body is JSON");
    assert_eq!(v["echo"], sent, "{v}");
    s.wait_for_log(|l| l.contains(&format!("{lang}-hello: handled POST /{lang}/hello")))
        .unwrap_or_else(|| panic!("no `{lang}-hello: handled` line in the log"));
    if host_log {
        let line = s
            .wait_for_log(|l| l.contains(&format!("{lang}-hello: answered through host_log")))
            .unwrap_or_else(|| panic!("no host_log line from {lang}-hello in the log"));
        assert!(line.contains(r#""level":"INFO""#), "{line}");
    }

    // No body, no User-Agent: nulls, not errors.
    let r = s.get(&format!("/{lang}/bare"));
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    let v = r.json();
    assert_eq!(v["method"], "GET", "{v}");
    assert_eq!(v["query"], "", "{v}");
    assert_eq!(v["user_agent"], Value::Null, "{v}");
    assert_eq!(v["body_bytes"], 0, "{v}");
    assert_eq!(v["echo"], Value::Null, "{v}");

    // A body that is not JSON is counted but not echoed.
    let r = s.request("PUT", &format!("/{lang}/text"), &[], b"not json {");
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    let v = r.json();
    assert_eq!(v["body_bytes"], 10, "{v}");
    assert_eq!(v["echo"], Value::Null, "{v}");

    // Bytes that are not UTF-8 arrive as lossy text plus body_base64; the size is
    // that of the real bytes.
    let r = s.request(
        "POST",
        &format!("/{lang}/bin"),
        &[],
        &[0xff, 0xfe, 0x00, 0x41],
    );
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    let v = r.json();
    assert_eq!(v["body_bytes"], 4, "{v}");
    assert_eq!(v["echo"], Value::Null, "{v}");
}

#[test]
fn rust() {
    if let Some(m) = built_or_skip("rust") {
        check_hello_api("rust", "rust", &serve("rust", &m), false);
    }
}

#[test]
fn c() {
    if let Some(m) = built_or_skip("c") {
        check_hello_api("c", "c", &serve("c", &m), false);
    }
}

#[test]
fn go() {
    if let Some(m) = built_or_skip("go") {
        check_hello_api("go", "go", &serve("go", &m), true);
    }
}

/// The Go SDK's own tests (`examples/go-hello/gojinn/gojinn_test.go`: its request
/// decoder and encoders against `encoding/json`, its URI split against
/// `net/url`), run on this machine with `go test`, which is how a user runs them.
#[test]
fn go_sdk_unit_tests() {
    let Some(go) = go_binary() else {
        skip(
            "go_sdk_unit_tests",
            "go not found (scripts/toolchains.sh go)",
        );
        return;
    };
    let out = Command::new(&go)
        .args(["test", "-count=1", "./gojinn"])
        .current_dir(root().join("examples/go-hello"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", root().join("target/toolchains/go-cache"))
        .env_remove("GOOS")
        .env_remove("GOARCH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", go.display()));
    assert!(
        out.status.success(),
        "go test ./gojinn failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zig() {
    if let Some(m) = built_or_skip("zig") {
        check_hello_api("zig", "zig", &serve("zig", &m), true);
    }
}

#[test]
fn assemblyscript() {
    if let Some(m) = built_or_skip("as") {
        check_hello_api("as", "assemblyscript", &serve("as", &m), true);
    }
}

/// WAT needs no toolchain: the server compiles the text at load. The example answers
/// without reading the request, so only its fixed answer is checked.
#[test]
fn wat() {
    let s = serve("wat", &root().join("examples/wat-hello/hello.wat"));
    let r = s.request("POST", "/wat/hello", &[], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "hello from wat"}));
    s.wait_for_log(|l| l.contains("wat-hello: answered"))
        .expect("wat-hello stderr in the log");
}

/// The skip path itself: a toolchain that is not there gives a `skipped:` line with
/// the reason and no module, and the script still succeeds (so test.sh goes on and
/// the language's test reports SKIPPED rather than failing the build).
#[test]
fn a_missing_toolchain_is_skipped_with_its_reason() {
    let dir = scratch("lang-missing");
    let out = Command::new("bash")
        .arg(root().join("scripts/build-examples.sh"))
        .arg("--out")
        .arg(&dir)
        .args(["go", "zig"])
        .env("GO", "/nonexistent/go")
        .env("ZIG", "/nonexistent/zig")
        .output()
        .expect("run scripts/build-examples.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("go: skipped: `/nonexistent/go env GOVERSION` does not run"),
        "{log}"
    );
    assert!(
        log.contains("zig: skipped: `/nonexistent/zig version` does not run"),
        "{log}"
    );
    assert!(!dir.join("go-hello.wasm").exists());
    assert!(!dir.join("zig-hello.wasm").exists());
}
