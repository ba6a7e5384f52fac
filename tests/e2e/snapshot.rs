//! A route's `snapshot` option through the server: the module's initialisation
//! runs once at load and every request starts from what it left; a module whose
//! initialisation reads random bytes is refused at load, naming the module and
//! the config place.

use crate::harness::{scratch, Server};
use std::process::Command;

/// A command that also exports `wizer.initialize`. Its response is the JSON at
/// 1024, `{"body":"init=0 req=0"}`: the initialisation adds one to the first
/// digit (and, with `random`, reads random bytes), `_start` adds one to the
/// second and writes the response.
fn module(random: bool) -> String {
    let json = r#"{\"body\":\"init=0 req=0\"}"#;
    let len = json.replace('\\', "").len();
    let init_digit = 1024 + r#"{"body":"init="#.len();
    let req_digit = init_digit + "0 req=".len();
    let random_call = if random {
        "(drop (call $random_get (i32.const 256) (i32.const 8)))"
    } else {
        ""
    };
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{json}")
  (func $bump (param $at i32)
    (i32.store8 (local.get $at) (i32.add (i32.load8_u (local.get $at)) (i32.const 1))))
  (func (export "wizer.initialize")
    (call $bump (i32.const {init_digit}))
    {random_call})
  (func (export "_start")
    (call $bump (i32.const {req_digit}))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#
    )
}

#[test]
fn requests_start_from_the_state_the_initialisation_left() {
    let dir = scratch("snapshot-serve-module");
    std::fs::write(dir.join("init.wat"), module(false)).expect("write module");
    let m = dir.join("init.wat").display().to_string();
    let s = Server::with_routes(
        "snapshot-serve",
        &format!(
            "    handle /snap/* {{\n        gojinn {m} {{\n            snapshot\n        }}\n    }}\n    \
             handle /plain/* {{\n        gojinn {m}\n    }}"
        ),
    );
    for _ in 0..3 {
        assert_eq!(s.get("/snap/x").text(), "init=1 req=1");
    }
    // The same module without `snapshot` never runs its initialisation.
    assert_eq!(s.get("/plain/x").text(), "init=0 req=1");
}

#[test]
fn an_initialisation_that_reads_random_bytes_is_refused_at_load() {
    let dir = scratch("snapshot-random");
    std::fs::write(dir.join("seeded.wat"), module(true)).expect("write module");
    let cfg = dir.join("Caddyfile");
    std::fs::write(
        &cfg,
        ":0 {\n    gojinn ./seeded.wat {\n        snapshot\n    }\n}\n",
    )
    .expect("write Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("run gojinn");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}:2:5", cfg.display()))
            && err.contains("seeded.wat")
            && err.contains("random_get"),
        "{err}"
    );
}
