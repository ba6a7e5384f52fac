//! Hostile modules written in WAT: the shapes a compiled guest rarely takes but an
//! attacker can write by hand. Each gets a defined status or a load error that
//! names the module and the limit, and the server keeps serving.

use crate::harness::{scratch, Server};
use std::process::Command;

/// A start function that never returns: instantiation itself must hit the deadline.
const START_LOOP: &str = r#"(module
  (memory (export "memory") 1)
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "_start")))"#;

/// A loop that calls out to the host on every turn, so it is rarely in wasm code
/// when a tick comes.
const HOST_CALL_LOOP: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 16)))
      (br $l))))"#;

/// 1000 pages (65.5 MB) declared up front, over a 16 MB limit.
const BIG_INITIAL_MEMORY: &str =
    r#"(module (memory (export "memory") 1000) (func (export "_start")))"#;

/// Exports `_start`, says nothing, and loops `memory.grow` by one page until refused.
const GROW_TO_THE_LIMIT: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))"#;

fn hostile_server() -> Server {
    let dir = scratch("hostile-modules");
    for (name, text) in [
        ("start-loop.wat", START_LOOP),
        ("host-call-loop.wat", HOST_CALL_LOOP),
        ("big-initial-memory.wat", BIG_INITIAL_MEMORY),
        ("grow.wat", GROW_TO_THE_LIMIT),
    ] {
        std::fs::write(dir.join(name), text).expect("write module");
    }
    let caddyfile = "{\n    admin off\n}\n:0 {\n\
        handle /start-loop {\n    gojinn ./start-loop.wat {\n        timeout 500ms\n    }\n}\n\
        handle /host-call-loop {\n    gojinn ./host-call-loop.wat {\n        timeout 500ms\n    }\n}\n\
        handle /big-initial-memory {\n    gojinn ./big-initial-memory.wat {\n        memory_limit 16MB\n    }\n}\n\
        handle /grow {\n    gojinn ./grow.wat {\n        memory_limit 16MB\n    }\n}\n\
        respond \"ok\"\n}\n";
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("write Caddyfile");
    Server::start(&path, &[])
}

#[test]
fn hostile_modules_get_their_status_and_a_named_fault() {
    let s = hostile_server();
    for (path, status, fault) in [
        ("/start-loop", 504, "timeout"),
        ("/host-call-loop", 504, "timeout"),
        ("/big-initial-memory", 502, "memory"),
        ("/grow", 502, "memory"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let line = s
            .wait_for_log(|l| {
                l.contains("gojinn::fault")
                    && l.contains(&format!("\"route\":\"{path}\""))
                    && l.contains(&format!("\"fault\":\"{fault}\""))
            })
            .unwrap_or_else(|| panic!("no `{fault}` fault logged for {path}"));
        assert!(line.contains("WARN") || line.contains("ERROR"), "{line}");
        let ok = s.get("/");
        assert_eq!(ok.status, 200, "server must keep serving after {path}");
    }
}

#[test]
fn modules_past_the_pool_limits_are_refused_at_load_naming_the_limit() {
    let dir = scratch("hostile-load");
    for (name, text, expect) in [
        (
            "four-gib-memory.wat",
            r#"(module (memory (export "memory") 65536) (func (export "_start")))"#,
            "minimum byte size of 4294967296",
        ),
        (
            "huge-table.wat",
            r#"(module (memory (export "memory") 1) (table 100000000 funcref) (func (export "_start")))"#,
            "minimum element size of 100000000",
        ),
    ] {
        std::fs::write(dir.join(name), text).expect("write module");
        let cfg = dir.join("Caddyfile");
        std::fs::write(
            &cfg,
            format!(":0 {{\n    gojinn ./{name} {{\n        memory_limit 16MB\n    }}\n}}\n"),
        )
        .expect("write Caddyfile");
        let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
            .args(["validate", "--config"])
            .arg(&cfg)
            .output()
            .expect("run gojinn validate");
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
}

#[test]
fn a_guest_cannot_leave_its_mounts_or_write_to_a_read_only_one() {
    use crate::harness::guest_route;
    let dir = scratch("hostile-mounts");
    let assets = dir.join("assets");
    let data = dir.join("data");
    let outside = dir.join("outside");
    for d in [&assets, &data, &outside] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(assets.join("hello.txt"), "hello").expect("write asset");
    std::fs::write(outside.join("secret.txt"), "secret").expect("write secret");
    // Links that point out of the mount, by absolute and by relative path.
    let _ = std::fs::remove_file(assets.join("abs-link"));
    let _ = std::fs::remove_file(assets.join("rel-link"));
    let _ = std::fs::remove_file(assets.join("dir-link"));
    std::os::unix::fs::symlink(outside.join("secret.txt"), assets.join("abs-link"))
        .expect("symlink");
    std::os::unix::fs::symlink("../outside/secret.txt", assets.join("rel-link")).expect("symlink");
    std::os::unix::fs::symlink("../outside", assets.join("dir-link")).expect("symlink");
    let _ = std::fs::remove_file(data.join("new.txt"));

    let s = Server::with_routes(
        "hostile-mounts-server",
        &guest_route(
            "/fs",
            "fs",
            &format!(
                "            mount {} /assets\n            mount {} /data rw",
                assets.display(),
                data.display()
            ),
        ),
    );
    let plan = serde_json::json!({
        "read": [
            "/assets/hello.txt",
            "/assets/../outside/secret.txt",
            "/assets/../../../../etc/passwd",
            "/assets/abs-link",
            "/assets/rel-link",
            "/assets/dir-link/secret.txt",
            "/etc/passwd",
            format!("{}", outside.join("secret.txt").display()),
        ],
        "write": ["/assets/new.txt", "/assets/hello.txt", "/data/new.txt", "/data/../outside/new.txt"],
        "list": ["/assets", "/", "/data/.."],
    });
    let r = s.request("POST", "/fs", &[], plan.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_str(&r.text()).expect("probe answer");
    let got = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("no `{k}` in {v}"))
            .to_owned()
    };

    assert_eq!(got("read /assets/hello.txt"), "ok:hello");
    for escape in [
        "read /assets/../outside/secret.txt",
        "read /assets/../../../../etc/passwd",
        "read /assets/abs-link",
        "read /assets/rel-link",
        "read /assets/dir-link/secret.txt",
        "read /etc/passwd",
        &format!("read {}", outside.join("secret.txt").display()),
        "write /assets/new.txt",
        "write /assets/hello.txt",
        "write /data/../outside/new.txt",
        "list /",
        "list /data/..",
    ] {
        assert!(got(escape).starts_with("err:"), "{escape} was allowed: {v}");
    }
    assert_eq!(got("write /data/new.txt"), "ok:");
    assert_eq!(
        std::fs::read_to_string(data.join("new.txt")).expect("written file"),
        "written by the guest"
    );
    assert_eq!(
        std::fs::read_to_string(assets.join("hello.txt")).expect("asset"),
        "hello"
    );
    assert!(!assets.join("new.txt").exists());
    assert!(!outside.join("new.txt").exists());
    assert_eq!(
        got("list /assets"),
        "ok:abs-link,dir-link,hello.txt,rel-link"
    );
}

/// A million empty-ish `host_log` calls in one request.
const HOST_LOG_FLOOD: &str = r#"(module
  (import "gojinn" "host_log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x")
  (data (i32.const 64) "{\22status\22:200,\22body\22:\22done\22}")
  (func (export "_start")
    (local $i i32)
    (loop $l
      (call $log (i32.const 1) (i32.const 16) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000000))))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 28))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn a_million_host_log_calls_are_bounded_in_the_log() {
    let dir = scratch("hostile-host-log");
    std::fs::write(dir.join("flood.wat"), HOST_LOG_FLOOD).expect("write module");
    let cfg = dir.join("Caddyfile");
    std::fs::write(
        &cfg,
        "{\n    admin off\n}\n:0 {\n    handle /flood {\n        gojinn ./flood.wat {\n            timeout 30s\n        }\n    }\n    respond \"ok\"\n}\n",
    )
    .expect("write Caddyfile");
    let s = Server::start(&cfg, &[]);
    let r = s.get("/flood");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "done");
    let warning = s
        .wait_for_log(|l| l.contains("host log lines dropped"))
        .expect("a line saying how many host_log lines were dropped");
    let v: serde_json::Value = serde_json::from_str(&warning).expect("json log line");
    let dropped = v["fields"]["dropped"].as_u64().expect("dropped count");
    let written = s
        .logs()
        .iter()
        .filter(|l| l.contains("gojinn::guest") && l.contains("\"route\":\"/flood\""))
        .count() as u64;
    assert_eq!(
        written + dropped,
        1_000_000,
        "every call is written or counted"
    );
    assert!(written <= 600, "{written} lines written for one call");
    assert_eq!(s.get("/").status, 200);
}
