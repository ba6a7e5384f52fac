use crate::harness::{guest, scratch};
use std::process::{Command, Output};

fn gojinn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(args)
        .output()
        .expect("run gojinn")
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path.display().to_string()
}

#[test]
fn version_names_gojinn_and_wasmtime() {
    let out = gojinn(&["version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("gojinn ") && text.contains("wasmtime"),
        "{text}"
    );
}

#[test]
fn validate_accepts_a_good_config_and_compiles_its_modules() {
    let dir = scratch("cli-valid");
    let cfg = write(
        &dir,
        "Caddyfile",
        &format!(
            ":0 {{\n    gojinn {} {{\n        timeout 1s\n    }}\n}}\n",
            guest().display()
        ),
    );
    let out = gojinn(&["validate", "--config", &cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_reports_file_line_col_for_a_bad_directive() {
    let dir = scratch("cli-typo");
    let cfg = write(
        &dir,
        "Caddyfile",
        &format!(
            ":0 {{\n    gojinn {} {{\n        timeot 1s\n    }}\n}}\n",
            guest().display()
        ),
    );
    let out = gojinn(&["validate", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{cfg}:3:9")), "{err}");
    assert!(
        err.contains("`timeot`") && err.contains("`timeout`"),
        "{err}"
    );
}

#[test]
fn validate_fails_on_modules_that_cannot_load_naming_module_and_place() {
    let dir = scratch("cli-modules");
    write(&dir, "not-wasm.wasm", "this is not wasm");
    write(
        &dir,
        "unknown-import.wat",
        r#"(module (import "gojinn" "host_teleport" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
    );
    write(
        &dir,
        "reactor.wat",
        r#"(module (memory (export "memory") 1))"#,
    );
    for (module, expect) in [
        ("missing.wasm", "cannot read module"),
        ("not-wasm.wasm", "is not valid WebAssembly"),
        ("unknown-import.wat", "host_teleport"),
        ("reactor.wat", "_start"),
    ] {
        let cfg = write(
            &dir,
            "Caddyfile",
            &format!(":0 {{\n    gojinn ./{module}\n}}\n"),
        );
        let out = gojinn(&["validate", "--config", &cfg]);
        assert_eq!(out.status.code(), Some(1), "{module}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{cfg}:2:5")), "{module}: {err}");
        assert!(
            err.contains(module) && err.contains(expect),
            "{module}: {err}"
        );
    }
}

#[test]
fn run_refuses_a_bad_config_before_binding_any_port() {
    let dir = scratch("cli-nobind");
    // Reserve a port, release it, and configure it next to a broken module: the
    // server must fail on the module without ever binding the port.
    let port = crate::harness::free_port();
    let cfg = write(
        &dir,
        "Caddyfile",
        &format!("{{\n    admin off\n}}\n:{port} {{\n    respond \"up\"\n}}\n:0 {{\n    gojinn ./missing.wasm\n}}\n"),
    );
    let out = gojinn(&["run", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.wasm"), "{err}");
    assert!(
        !err.contains("listening"),
        "bound a socket before validating: {err}"
    );
}

#[test]
fn adapt_prints_the_resolved_config_as_json() {
    let dir = scratch("cli-adapt");
    let cfg = write(
        &dir,
        "Caddyfile",
        ":0 {\n    handle /api/* {\n        gojinn ./fn.wasm {\n            timeout 2s\n            memory_limit 64MiB\n        }\n    }\n}\n",
    );
    let out = gojinn(&["adapt", "--config", &cfg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let route = &v["sites"][0]["routes"][0];
    assert_eq!(route["match"], "/api/*");
    let f = &route["handle"]["routes"][0]["handle"];
    assert_eq!(f["handler"], "gojinn");
    assert_eq!(f["timeout_ms"], 2000);
    assert_eq!(f["memory_limit"], 64 << 20);
    assert_eq!(f["module"], dir.join("fn.wasm").display().to_string());
}

/// A module whose answer is `word`, as WebAssembly text.
fn wat_answering(word: &str) -> String {
    let json = format!(r#"{{"status":200,"body":"{word}"}}"#);
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        json.replace('"', "\\\""),
        json.len()
    )
}

#[test]
fn compile_cache_is_filled_and_never_serves_a_stale_module() {
    let dir = scratch("cli-cache");
    let cache = dir.join("cache");
    std::fs::write(dir.join("fn.wat"), wat_answering("one")).expect("write module");
    let cfg = write(
        &dir,
        "Caddyfile",
        "{\n    admin off\n}\n:0 {\n    gojinn ./fn.wat\n}\n",
    );
    let cache_env = cache.display().to_string();
    let env = [("GOJINN_CACHE_DIR", cache_env.as_str())];
    {
        let s = crate::harness::Server::start(std::path::Path::new(&cfg), &env);
        assert_eq!(s.get("/").text(), "one");
    }
    let entries = walk_files(&cache);
    assert!(
        entries > 0,
        "compiled module stored under {}",
        cache.display()
    );
    // Same size, different content: the cache is keyed by content, not by name.
    std::fs::write(dir.join("fn.wat"), wat_answering("two")).expect("rewrite module");
    let s = crate::harness::Server::start(std::path::Path::new(&cfg), &env);
    assert_eq!(s.get("/").text(), "two");
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk_files(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
