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
