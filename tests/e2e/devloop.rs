//! The developer loop, as a user runs it: `gojinn new x --lang L`, `gojinn build x`,
//! `gojinn run --config x/Caddyfile` (its port swapped to 0 and the admin listener
//! off), then the project's own test request (`tests/request.json`) must get a
//! response containing every line of `tests/expected.txt`.
//!
//! Rust, C and WAT always run. Go, Zig and AssemblyScript run when their toolchain is
//! installed (scripts/toolchains.sh); otherwise `gojinn build` reports the missing
//! toolchain and the test writes `SKIPPED devloop::<lang>: <reason>` to stderr
//! (`GOJINN_REQUIRE_TOOLCHAINS=1` turns that into a failure).
//! Also: missing toolchains name their install command, `new` refuses to overwrite
//! and rejects bad names, `run --watch` picks up a rebuilt module, completions and
//! `--help` for every command.

use crate::harness::{go_binary, root, scratch, Server};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn gojinn(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gojinn"));
    cmd.current_dir(cwd)
        // Flags meant for the host test build must not leak into the guest build,
        // and Rust guests share one target directory (serde compiles once).
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("CARGO_TARGET_DIR", root().join("target/guests"))
        .env("GOJINN_CACHE_DIR", root().join("target/e2e-cache"));
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `gojinn new NAME --lang LANG` in a fresh scratch folder; the project's path.
fn new_project(test: &str, name: &str, lang: &str) -> PathBuf {
    let base = scratch(&format!("devloop-{test}"));
    let out = gojinn(&base)
        .args(["new", name, "--lang", lang])
        .output()
        .expect("run gojinn new");
    assert!(out.status.success(), "gojinn new failed:\n{}", text(&out));
    let dir = base.join(name);
    for file in [
        "Caddyfile",
        "README.md",
        "tests/request.json",
        "tests/expected.txt",
    ] {
        assert!(dir.join(file).is_file(), "{lang}: no {file}");
    }
    dir
}

/// `gojinn build --test DIR` (from the folder above, as the README says): builds,
/// checks the module loads, and runs the project's own test in process.
fn build(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = gojinn(dir.parent().expect("parent"));
    cmd.args(["build", "--test"])
        .arg(dir.file_name().expect("name"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gojinn build")
}

/// Reports a skip where libtest cannot hide it, or fails under GOJINN_REQUIRE_TOOLCHAINS.
fn skip(lang: &str, reason: &str) {
    assert!(
        std::env::var_os("GOJINN_REQUIRE_TOOLCHAINS").is_none_or(|v| v.is_empty()),
        "devloop::{lang}: toolchain missing and GOJINN_REQUIRE_TOOLCHAINS is set: {reason}"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED devloop::{lang}: {reason}");
}

/// Serves the project's own Caddyfile, on port 0 and without the admin listener.
fn serve(dir: &Path, args: &[&str]) -> Server {
    let path = dir.join("Caddyfile");
    let src = std::fs::read_to_string(&path).expect("read Caddyfile");
    assert!(
        src.contains(":8080 {") && src.contains("    order gojinn last\n"),
        "{src}"
    );
    let src = src.replace(":8080 {", ":0 {").replace(
        "    order gojinn last\n",
        "    order gojinn last\n    admin off\n",
    );
    std::fs::write(&path, src).expect("write Caddyfile");
    Server::start_args(&path, args, &[])
}

/// Sends tests/request.json and checks every line of tests/expected.txt is in the
/// response body; returns the body.
fn check_project_test(lang: &str, dir: &Path, s: &Server) -> serde_json::Value {
    let body = std::fs::read(dir.join("tests/request.json")).expect("request.json");
    let expected = std::fs::read_to_string(dir.join("tests/expected.txt")).expect("expected");
    let r = s.request(
        "POST",
        "/hello?from=e2e",
        &[
            ("User-Agent", "devloop-e2e"),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{lang}");
    let got = r.text();
    let mut lines = 0;
    for line in expected.lines().filter(|l| !l.is_empty()) {
        assert!(got.contains(line), "{lang}: `{line}` not in {got}");
        lines += 1;
    }
    assert!(lines >= 1, "{lang}: empty expected.txt");
    r.json()
}

/// What the hello templates (the `examples/<lang>-hello` sources, renamed) echo
/// (header, query, path) and log: a stderr line, and in the languages whose
/// example also calls `host_log`, that line with the project's name.
fn check_echo_and_logs(lang: &str, name: &str, s: &Server, v: &serde_json::Value) {
    assert_eq!(v["user_agent"], "devloop-e2e", "{v}");
    assert_eq!(v["query"], "from=e2e", "{v}");
    assert_eq!(v["path"], "/hello", "{v}");
    s.wait_for_log(|l| l.contains(&format!("{name}: handled POST /hello")))
        .unwrap_or_else(|| panic!("{lang}: no handled line in {:?}", s.logs()));
    if matches!(lang, "go" | "zig" | "assemblyscript") {
        s.wait_for_log(|l| l.contains(&format!("{name}: answered through host_log")))
            .unwrap_or_else(|| panic!("{lang}: no host_log line in {:?}", s.logs()));
    }
}

/// new + build + run + the project's test, and the template's own echo of the
/// header and query. `None` when skipped.
fn devloop(lang: &str, env: &[(&str, &str)], always: bool) -> Option<(PathBuf, Server)> {
    let name = format!("fn-{lang}");
    let dir = new_project(lang, &name, lang);
    let out = build(&dir, env);
    let log = text(&out);
    if !always && !out.status.success() {
        if let Some((_, how)) = log.split_once("install it with: ") {
            let what = log
                .lines()
                .find(|l| l.contains("cannot build"))
                .unwrap_or("");
            skip(lang, &format!("{what} (install: {})", how.trim()));
            return None;
        }
    }
    assert!(out.status.success(), "{lang}: gojinn build failed:\n{log}");
    assert!(log.contains(&format!("built {name} ({lang})")), "{log}");
    assert!(
        log.contains(&format!("test {name} ({lang}): passed")),
        "{log}"
    );
    let s = serve(&dir, &[]);
    let v = check_project_test(lang, &dir, &s);
    if lang != "wat" {
        check_echo_and_logs(lang, &name, &s, &v);
    }
    Some((dir, s))
}

#[test]
fn rust() {
    devloop("rust", &[], true);
}

#[test]
fn c() {
    devloop("c", &[], true);
}

#[test]
fn wat() {
    let (_, s) = devloop("wat", &[], true).expect("wat always runs");
    s.wait_for_log(|l| l.contains("answered without reading the request"))
        .expect("wat stderr line in the log");
}

#[test]
fn go() {
    if let Some((dir, _)) = devloop("go", &[], false) {
        // go.mod names the Go that built the project, as `go mod init` writes
        // it (the example's own says 1.21), found where `gojinn build` looks.
        let go = go_binary().expect("the Go that built the project");
        let out = Command::new(&go)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .output()
            .expect("go env GOVERSION");
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let version = version.strip_prefix("go").expect("a release of Go");
        let gomod = std::fs::read_to_string(dir.join("go.mod")).expect("go.mod");
        assert!(
            gomod.lines().any(|l| l == format!("go {version}")),
            "go.mod does not name go {version}:\n{gomod}"
        );
    }
}

#[test]
fn zig() {
    // scripts/toolchains.sh zig installs Zig into this venv rather than on PATH.
    let venv = root().join("target/toolchains/zig-venv/bin/python");
    let zig = format!("{} -m ziglang", venv.display());
    let env: &[(&str, &str)] = if venv.is_file() && std::env::var_os("ZIG").is_none() {
        &[("ZIG", &zig)]
    } else {
        &[]
    };
    if let Some((dir, _server)) = devloop("zig", env, false) {
        // Zig writes the object it links beside the binary; `gojinn build` must not
        // leave one behind per build.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .expect("list the project")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| n.to_string_lossy().ends_with(".o"))
            .collect();
        assert!(left.is_empty(), "zig build left {left:?} in the project");
    }
}

#[test]
fn assemblyscript() {
    // The template pins the same compiler and shim as examples/as-hello (same
    // package-lock.json), where scripts/toolchains.sh installs them; the project
    // borrows that node_modules instead of running npm (no network in tests).
    let name = "fn-assemblyscript";
    let shared = root().join("examples/as-hello/node_modules");
    if !shared.join(".bin/asc").is_file() {
        // Still check that `gojinn build` says how to install it.
        let dir = new_project("assemblyscript-missing", name, "assemblyscript");
        let out = build(&dir, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let log = text(&out);
        assert!(
            log.contains("npm ci") || log.contains("apt-get install nodejs"),
            "{log}"
        );
        skip(
            "assemblyscript",
            "no node_modules in examples/as-hello (scripts/toolchains.sh as)",
        );
        return;
    }
    let dir = new_project("assemblyscript", name, "assemblyscript");
    std::os::unix::fs::symlink(&shared, dir.join("node_modules")).expect("link node_modules");
    let out = build(&dir, &[]);
    assert!(out.status.success(), "gojinn build failed:\n{}", text(&out));
    let s = serve(&dir, &[]);
    let v = check_project_test("assemblyscript", &dir, &s);
    check_echo_and_logs("assemblyscript", name, &s, &v);
}

/// A project whose toolchain is not on PATH: exit status 1 and the install command.
#[test]
fn missing_toolchain_names_the_install_command() {
    let empty = scratch("devloop-empty-path");
    for (lang, needle) in [
        ("c", "apt-get install clang lld wasi-libc"),
        ("rust", "https://sh.rustup.rs"),
        ("zig", "pip install ziglang==0.14.1"),
    ] {
        let dir = new_project(&format!("missing-{lang}"), "needs-tools", lang);
        let out = build(
            &dir,
            &[("PATH", empty.to_str().expect("utf-8")), ("ZIG", "")],
        );
        let log = text(&out);
        assert_eq!(out.status.code(), Some(1), "{lang}: {log}");
        assert!(log.contains("is not on PATH"), "{lang}: {log}");
        assert!(log.contains(needle), "{lang}: `{needle}` not in {log}");
        assert!(
            !dir.join("needs-tools.wasm").exists(),
            "{lang}: a module was written"
        );
    }
}

/// `build --test` fails, naming the missing line, when the response does not match.
#[test]
fn build_test_reports_a_mismatch() {
    let dir = new_project("mismatch", "off", "c");
    let expected = dir.join("tests/expected.txt");
    let mut lines = std::fs::read_to_string(&expected).expect("read");
    lines.push_str("\"message\":\"something else\"\n");
    std::fs::write(&expected, lines).expect("write");
    let out = build(&dir, &[]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("test of off (c) failed"), "{log}");
    assert!(log.contains("lacks 1 expected line"), "{log}");
    assert!(log.contains("\"message\":\"something else\""), "{log}");
    // The module itself was built and is in place; only the test failed.
    assert!(dir.join("off.wasm").is_file());
}

/// `gojinn build` on a folder that is no known kind of project.
#[test]
fn unknown_project_is_refused() {
    let dir = scratch("devloop-unknown");
    std::fs::write(dir.join("notes.txt"), "hi").expect("write");
    let out = gojinn(&dir).arg("build").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("cannot tell the language"),
        "{}",
        text(&out)
    );
}

#[test]
fn new_refuses_existing_paths_and_bad_names() {
    let dir = new_project("refuse", "taken", "c");
    std::fs::write(dir.join("main.c"), "mine").expect("write");
    let base = dir.parent().expect("parent");
    let out = gojinn(base)
        .args(["new", "taken", "--lang", "rust"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("main.c")).expect("read"),
        "mine"
    );
    assert!(!dir.join("Cargo.toml").exists());
    for bad in ["Upper", "../escape", "a b", ""] {
        let out = gojinn(base)
            .args(["new", bad, "--lang", "c"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(
            text(&out).contains("invalid project name"),
            "{bad}: {}",
            text(&out)
        );
    }
    assert!(!base.join("../escape").exists());
    let out = gojinn(base)
        .args(["new", "x", "--lang", "cobol"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("assemblyscript"), "{}", text(&out));
}

/// Edit, build, refresh: `run --watch` serves the rebuilt module without a restart.
#[test]
fn watch_serves_the_rebuilt_module() {
    let dir = new_project("watch", "live", "c");
    let out = build(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let s = serve(&dir, &["--watch"]);
    assert_eq!(s.get("/").json()["message"], "hello from c");

    let source = dir.join("main.c");
    let code = std::fs::read_to_string(&source).expect("read main.c");
    assert!(code.contains("hello from c"));
    std::fs::write(&source, code.replace("hello from c", "hello again from c")).expect("edit");
    let expected = dir.join("tests/expected.txt");
    let lines = std::fs::read_to_string(&expected).expect("read expected.txt");
    std::fs::write(
        &expected,
        lines.replace("hello from c", "hello again from c"),
    )
    .expect("edit expected.txt");
    let out = build(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = s.get("/").json();
        if v["message"] == "hello again from c" {
            break;
        }
        assert_eq!(v["message"], "hello from c", "{v}");
        assert!(
            Instant::now() < deadline,
            "the rebuilt module was not picked up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn completions_for_each_shell() {
    let cwd = root();
    for shell in ["bash", "zsh", "fish"] {
        let out = gojinn(&cwd)
            .args(["completions", shell])
            .output()
            .expect("run");
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).expect("utf-8");
        for word in ["build", "new", "completions", "assemblyscript", "watch"] {
            assert!(script.contains(word), "{shell}: no `{word}`");
        }
    }
    // bash is here: the bash script must at least parse.
    let out = gojinn(&cwd)
        .args(["completions", "bash"])
        .output()
        .expect("run");
    let file = scratch("devloop-completions").join("gojinn.bash");
    std::fs::write(&file, &out.stdout).expect("write");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash -n");
    assert!(check.status.success(), "{}", text(&check));
}

#[test]
fn help_for_every_command() {
    let cwd = root();
    for cmd in [
        "run",
        "validate",
        "adapt",
        "version",
        "new",
        "build",
        "completions",
    ] {
        let out = gojinn(&cwd).args([cmd, "--help"]).output().expect("run");
        assert!(out.status.success(), "{cmd}: {}", text(&out));
        let help = String::from_utf8(out.stdout).expect("utf-8");
        assert!(
            help.contains(&format!("Usage: gojinn {cmd}")),
            "{cmd}: {help}"
        );
    }
    let out = gojinn(&cwd).arg("--help").output().expect("run");
    let help = String::from_utf8(out.stdout).expect("utf-8");
    for cmd in ["new", "build", "completions"] {
        assert!(help.contains(cmd), "{help}");
    }
}

/// A function that stores and reads a KV value, as WebAssembly text.
const KV_WAT: &str = r#"(module
  (import "gojinn" "host_kv_set_v1" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "gojinn" "host_kv_get_v1" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "hello from kv")
  (data (i32.const 64) "{\"status\":200,\"body\":\"")
  (data (i32.const 200) "\"}")
  (func (export "_start")
    (local $len i32)
    (drop (call $set (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 13)))
    ;; the value lands right after the prefix, then the suffix after the value:
    ;; one contiguous response, written with one iovec
    (local.set $len
      (i32.wrap_i64 (call $get (i32.const 0) (i32.const 8) (i32.const 86) (i32.const 100))))
    (memory.copy (i32.add (i32.const 86) (local.get $len)) (i32.const 200) (i32.const 2))
    (i32.store (i32.const 300) (i32.const 64))
    (i32.store (i32.const 304) (i32.add (local.get $len) (i32.const 24)))
    (drop (call $write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 400)))))
"#;

/// `build --test` runs the function with its route's grants from the project's
/// Caddyfile (issue 14): a function that uses KV passes, as it does when served.
#[test]
fn build_test_grants_the_routes_capabilities() {
    let dir = new_project("grants", "kvtest", "wat");
    std::fs::write(dir.join("main.wat"), KV_WAT).expect("write module");
    std::fs::write(dir.join("tests/expected.txt"), "hello from kv\n").expect("write expected");
    let caddyfile = std::fs::read_to_string(dir.join("Caddyfile")).expect("read Caddyfile");
    let granted = caddyfile.replace(
        "        timeout 2s\n",
        "        timeout 2s\n        permissions {\n            kv_read greeting\n            kv_write greeting\n        }\n",
    );
    assert_ne!(granted, caddyfile, "the template's gojinn block changed");
    std::fs::write(dir.join("Caddyfile"), &granted).expect("write Caddyfile");
    let out = build(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Without the grant the same function is denied, and the test says so.
    std::fs::write(dir.join("Caddyfile"), &caddyfile).expect("write Caddyfile");
    let out = build(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
