//! Coming from Gojinn (issue 16): Caddyfiles, layouts and habits written for
//! upstream Gojinn load and behave as they did there, or are refused with the
//! line that fixes them. Each test is the one `docs/gojinn.md` names for its row.

use crate::harness::{guest, request_to, root, samples, scratch, Resp, Server};
use crate::host::{calls, host_route, serve, storage};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `gojinn { wasm_file … }` (the module inside the block), Gojinn's driver name
/// `sqlite3`, and a `db_dsn` with no `permissions`: the DSN is the grant, to
/// write as well as read, as on Gojinn. `permissions { db read }` narrows it.
#[test]
fn wasm_file_sqlite3_and_a_dsn_without_permissions_serve_as_on_gojinn() {
    let store = storage("compat-db");
    let dsn = store.join("app.db");
    let route = |path: &str, extra: &str| {
        format!(
            "    handle {path} {{\n        gojinn {{\n            wasm_file {}\n            args host\n            db_driver sqlite3\n            db_dsn {}\n{extra}        }}\n    }}\n",
            guest().display(),
            dsn.display()
        )
    };
    let body = format!(
        "{}{}",
        route("/db/*", ""),
        route(
            "/ro/*",
            "            permissions {\n                db read\n            }\n"
        )
    );
    let server = serve("compat-db", &store, &body);
    let r = calls(
        &server,
        "/db/x",
        json!([
            {"call": "db_exec", "sql": "CREATE TABLE t (x INTEGER)"},
            {"call": "db_exec", "sql": "INSERT INTO t (x) VALUES (?1)", "params": [7]},
            {"call": "db_query", "sql": "SELECT x FROM t"},
        ]),
    );
    assert_eq!(r[0]["ret"], 0, "{}", r[0]);
    assert_eq!(r[1]["ret"], 1, "{}", r[1]);
    assert_eq!(r[2]["out"], "[{\"x\":7}]", "{}", r[2]);

    let r = calls(
        &server,
        "/ro/x",
        json!([
            {"call": "db_query", "sql": "SELECT x FROM t"},
            {"call": "db_exec", "sql": "INSERT INTO t (x) VALUES (8)"},
        ]),
    );
    assert_eq!(r[0]["out"], "[{\"x\":7}]", "{}", r[0]);
    assert!(r[1]["ret"].as_i64().unwrap_or(0) < 0, "{}", r[1]);
}

/// `permissions { kv_read users: … }`: every pattern is a key prefix, as
/// Gojinn meant it; `prefix*` still works; other keys stay denied.
#[test]
fn kv_patterns_are_prefixes_as_on_gojinn() {
    let store = storage("compat-kv");
    let grants = "            permissions {\n                kv_read users: config\n                kv_write users: sessions:*\n            }";
    let server = serve("compat-kv", &store, &host_route("/kv", grants));
    let r = calls(
        &server,
        "/kv",
        json!([
            {"call": "kv_set_v1", "key": "users:alice", "value": "1"},
            {"call": "kv_get", "key": "users:alice"},
            {"call": "kv_set_v1", "key": "sessions:9", "value": "s"},
            {"call": "kv_set_v1", "key": "admins:root", "value": "x"},
            {"call": "kv_get_v1", "key": "configuration"},
            {"call": "kv_get_v1", "key": "sessions:9"},
        ]),
    );
    assert_eq!(r[0]["ret"], 0, "{}", r[0]);
    assert_eq!(r[1]["out"], "1", "{}", r[1]);
    assert_eq!(r[2]["ret"], 0, "{}", r[2]);
    assert_eq!(r[3]["ret"], -2, "outside every kv_write prefix: {}", r[3]);
    // `config` covers `configuration` (a miss, not a denial)...
    assert_eq!(r[4]["ret"], -1, "{}", r[4]);
    // ...and `sessions:*` is writable, not readable.
    assert_eq!(r[5]["ret"], -2, "{}", r[5]);
}

/// A module importing KV calls on a route that grants no KV: Gojinn up to
/// v0.22 let every route use KV, so the load warns, naming the fix (in the
/// server's log and in `gojinn validate`).
#[test]
fn a_kv_module_without_a_kv_grant_is_warned_about_at_load() {
    let store = storage("compat-kv-warn");
    let server = serve(
        "compat-kv-warn",
        &store,
        &format!(
            "{}{}",
            host_route("/none", ""),
            host_route(
                "/granted",
                "            permissions {\n                kv_read *\n            }"
            )
        ),
    );
    let warnings: Vec<String> = server
        .logs()
        .into_iter()
        .filter(|l| l.contains("gojinn::load") && l.contains("grants no KV access"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, for the ungranted route: {warnings:?}"
    );
    let w = &warnings[0];
    assert!(w.contains("\"level\":\"WARN\""), "{w}");
    assert!(
        w.contains("`host_kv_get`") && w.contains("`host_kv_set`"),
        "{w}"
    );
    assert!(
        w.contains("permissions { kv_read <prefix> kv_write <prefix> }"),
        "{w}"
    );

    let config = root()
        .join("target/e2e")
        .join(format!("compat-kv-warn-{}", std::process::id()))
        .join("Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .expect("run gojinn validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains("grants no KV access"))
        .unwrap_or_else(|| panic!("no KV warning from validate:\n{err}"));
    assert!(
        line.contains(&format!("{}:", config.display())),
        "names the directive: {line}"
    );
}

/// A read-only mount is the default here; Gojinn mounted read-write. The load
/// says so, with the line that restores Gojinn's behaviour.
#[test]
fn a_read_only_mount_is_announced_at_load_with_the_rw_fix() {
    let dir = scratch("compat-mount-files");
    let body = format!(
        "    gojinn {} {{\n        args echo\n        mount {} /data\n    }}\n",
        guest().display(),
        dir.display()
    );
    let s = Server::with_routes("compat-mount", &body);
    let line = s
        .logs()
        .into_iter()
        .find(|l| l.contains("gojinn::load") && l.contains("read-only"))
        .unwrap_or_else(|| panic!("no read-only mount line:\n{}", s.logs().join("\n")));
    assert!(
        line.contains(&format!("write `mount {} /data rw`", dir.display())),
        "{line}"
    );
}

/// Gojinn's benchmark layout: `--config configs/Caddyfile` run from the
/// repository root, with `gojinn bin/guest.wasm` relative to the working
/// directory. It serves; with a second, different module next to the Caddyfile
/// the path is ambiguous and the load is refused naming both files.
#[test]
fn module_paths_relative_to_the_working_directory_load() {
    let top = scratch("compat-cwd");
    std::fs::create_dir_all(top.join("bin")).expect("mkdir bin");
    std::fs::create_dir_all(top.join("configs")).expect("mkdir configs");
    std::fs::copy(guest(), top.join("bin/guest.wasm")).expect("copy guest");
    let caddyfile = top.join("configs/Caddyfile");
    std::fs::write(
        &caddyfile,
        "{\n    admin off\n}\n\n:0 {\n    gojinn bin/guest.wasm {\n        args echo\n    }\n}\n",
    )
    .expect("write Caddyfile");
    let s = Server::start_in(Some(&top), Path::new("configs/Caddyfile"), &[], &[]);
    let r = s.get("/hello");
    assert_eq!(r.status, 200, "{}", r.text());
    drop(s);

    std::fs::create_dir_all(top.join("configs/bin")).expect("mkdir configs/bin");
    std::fs::write(top.join("configs/bin/guest.wasm"), b"(module)").expect("write other");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .current_dir(&top)
        .args(["validate", "--config", "configs/Caddyfile"])
        .output()
        .expect("run gojinn validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("configs/Caddyfile:6:12: module `bin/guest.wasm` is ambiguous"),
        "{err}"
    );
    assert!(
        err.contains(&top.join("bin/guest.wasm").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&top.join("configs/bin/guest.wasm").display().to_string()),
        "{err}"
    );
}

/// Polls the admin `/metrics` until `key` has `want`: the sign that a request
/// is running (observed, not waited for with a sleep).
fn wait_metric(admin: u16, key: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = request_to(admin, "GET", "/metrics", &[], b"");
        if samples(&r.text()).get(key) == Some(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} never reached {want}:\n{}",
            r.text()
        );
        std::thread::yield_now();
    }
}

/// Sends `GET path` on another thread.
fn spawn_get(port: u16, path: &str) -> std::thread::JoinHandle<(Resp, Duration)> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    std::thread::spawn(move || {
        let started = Instant::now();
        let r = crate::harness::raw_to(port, head.as_bytes());
        (r, started.elapsed())
    })
}

/// `pool_size 1` with `queue_timeout`: Gojinn queued requests for a free
/// instance, so a second concurrent request waits for the first (1.5 s) and is
/// answered; with the default 200 ms wait it is turned away with a 503.
#[test]
fn queue_timeout_lets_a_second_request_wait_for_the_only_sandbox() {
    let route = |path: &str, extra: &str| {
        format!(
            "    handle {path} {{\n        gojinn {} {{\n            args nap\n            pool_size 1\n{extra}        }}\n    }}\n",
            guest().display()
        )
    };
    let body = format!(
        "{}{}",
        route("/queued", "            queue_timeout 30s\n"),
        route("/default", "")
    );
    let (s, admin) = Server::with_admin("compat-queue", &body);

    for (path, second_status) in [("/queued", 200), ("/default", 503)] {
        let in_flight = format!(r#"gojinn_sandboxes_in_flight{{route="{path}"}}"#);
        let first = spawn_get(s.port, path);
        wait_metric(admin, &in_flight, 1.0);
        let (second, waited) = spawn_get(s.port, path).join().expect("second request");
        let (first, _) = first.join().expect("first request");
        assert_eq!(first.status, 200, "{path}: {}", first.text());
        assert_eq!(second.status, second_status, "{path}: {}", second.text());
        if second_status == 200 {
            assert_eq!(second.text(), first.text());
        } else {
            assert!(
                waited < Duration::from_millis(1500),
                "{path}: waited {waited:?}"
            );
            assert_eq!(second.header("retry-after"), Some("1"));
        }
    }
}

/// `fuel_limit`: a guest that spins is stopped when its fuel is gone, long
/// before its 30 s deadline: 504, fault kind `fuel`. A route with enough fuel,
/// and one without a limit on the same engine, answer as usual.
#[test]
fn fuel_limit_ends_a_spinning_guest_with_504_and_fault_kind_fuel() {
    let route = |path: &str, mode: &str, extra: &str| {
        format!(
            "    handle {path} {{\n        gojinn {} {{\n            args {mode}\n            timeout 30s\n{extra}        }}\n    }}\n",
            guest().display()
        )
    };
    let body = format!(
        "{}{}{}",
        route("/spin", "spin", "            fuel_limit 50000000\n"),
        route("/echo", "echo", "            fuel_limit 1000000000\n"),
        route("/free", "echo", "")
    );
    let s = Server::with_routes("compat-fuel", &body);
    let started = Instant::now();
    let r = s.get("/spin");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.text(), "function ran out of fuel\n");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped by the deadline, not fuel"
    );
    let line = s
        .wait_for_log(|l| l.contains("\"fault\":\"fuel\""))
        .unwrap_or_else(|| panic!("no fuel fault logged:\n{}", s.logs().join("\n")));
    assert!(line.contains("50000000"), "{line}");
    assert_eq!(s.get("/echo").status, 200);
    assert_eq!(s.get("/free").status, 200);
    // The next call gets its whole limit again.
    assert_eq!(s.get("/echo").status, 200);
}

/// Gojinn's metric names: `gojinn_active_sandboxes{path}` and
/// `gojinn_function_duration_seconds{path,status}` (`path` = the module file),
/// queried with PromQL by promtool (`promtool test rules` over the scraped
/// samples), as Gojinn's dashboards query them.
#[test]
fn gojinn_metric_names_answer_promql_through_promtool() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("SKIPPED gojinn_metric_names_answer_promql_through_promtool: `promtool` is not installed (Debian package `prometheus`)");
        return;
    }
    let body = format!(
        "{}{}",
        crate::harness::guest_route("/ok", "echo", ""),
        crate::harness::guest_route("/exit", "exit", "")
    );
    let (s, admin) = Server::with_admin("compat-promql", &body);
    for _ in 0..3 {
        assert_eq!(s.get("/ok").status, 200);
    }
    assert_eq!(s.get("/exit").status, 502);
    let scrape = request_to(admin, "GET", "/metrics", &[], b"").text();

    // Every sample of the two families becomes a one-point input series.
    let mut series = String::new();
    for l in scrape.lines().filter(|l| {
        l.starts_with("gojinn_active_sandboxes")
            || l.starts_with("gojinn_function_duration_seconds")
    }) {
        let (key, value) = l.rsplit_once(' ').expect("sample line");
        let value = if value == "+Inf" { "Inf" } else { value };
        series.push_str(&format!(
            "      - series: '{key}'\n        values: '{value}'\n"
        ));
    }
    let path = guest().display().to_string();
    let dir = scratch("compat-promql-rules");
    let tests = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n{series}    promql_expr_test:\n      - expr: sum by (path, status) (gojinn_function_duration_seconds_count)\n        eval_time: 0m\n        exp_samples:\n          - labels: '{{path=\"{path}\", status=\"200\"}}'\n            value: 3\n          - labels: '{{path=\"{path}\", status=\"502\"}}'\n            value: 1\n      - expr: sum by (path) (gojinn_active_sandboxes)\n        eval_time: 0m\n        exp_samples:\n          - labels: '{{path=\"{path}\"}}'\n            value: 0\n      - expr: count(histogram_quantile(0.99, sum by (le, path) (gojinn_function_duration_seconds_bucket{{status=\"200\"}})) > 0)\n        eval_time: 0m\n        exp_samples:\n          - labels: '{{}}'\n            value: 1\n"
    );
    let file = dir.join("gojinn-names.test.yml");
    std::fs::write(&file, &tests).expect("write promtool test");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{tests}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Gojinn's systemd unit has `Type=notify`: the server says `READY=1` once it
/// serves, `RELOADING=1` then `READY=1` around a reload, `STOPPING=1` on
/// shutdown, on the datagram socket `$NOTIFY_SOCKET` names (bound here).
#[test]
fn run_notifies_systemd_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let sock_path = std::env::temp_dir().join(format!("gojinn-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let next = || {
        let mut buf = [0u8; 512];
        let n = sock
            .recv(&mut buf)
            .expect("a notification before the timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let dir = scratch("compat-notify");
    let caddyfile = dir.join("Caddyfile");
    std::fs::write(
        &caddyfile,
        "{\n    admin off\n}\n\n:0 {\n    respond \"hi\"\n}\n",
    )
    .expect("write Caddyfile");
    let socket = sock_path.to_string_lossy().into_owned();
    let mut s = Server::start(&caddyfile, &[("NOTIFY_SOCKET", socket.as_str())]);
    assert_eq!(next(), "READY=1");
    s.signal("HUP");
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    assert_eq!(s.get("/").text(), "hi");
    s.signal("TERM");
    assert_eq!(next(), "STOPPING=1");
    assert!(s
        .wait_exit(Duration::from_secs(30))
        .is_some_and(|st| st.success()));
    let _ = std::fs::remove_file(&sock_path);
}

/// `gojinn run --envfile FILE` feeds `{env.X}` placeholders (variables already
/// set win, as in Caddy), and `--environ` prints the environment at start,
/// before the config is even read.
#[test]
fn run_envfile_feeds_placeholders_and_environ_prints_the_environment() {
    let dir = scratch("compat-envfile");
    let envfile = dir.join("gojinn.env");
    std::fs::write(
        &envfile,
        "# as Gojinn's unit has it\nGREETING=\"hello from the envfile\"\nexport PRESET=file\n",
    )
    .expect("write envfile");
    let caddyfile = dir.join("Caddyfile");
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n    admin off\n}}\n\n:0 {{\n    gojinn {} {{\n        args env\n        env GREETING {{env.GREETING}}\n        env PRESET {{env.PRESET}}\n    }}\n}}\n",
            guest().display()
        ),
    )
    .expect("write Caddyfile");
    let file = envfile.to_string_lossy().into_owned();
    let s = Server::start_args(&caddyfile, &["--envfile", &file], &[("PRESET", "process")]);
    let r = s.get("/");
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.json()["env"].clone();
    assert!(
        env.as_array().is_some_and(|vars| vars
            .contains(&json!(["GREETING", "hello from the envfile"]))
            && vars.contains(&json!(["PRESET", "process"]))),
        "{env}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["run", "--environ", "--envfile", &file, "--config"])
        .arg(dir.join("missing.Caddyfile"))
        .output()
        .expect("run gojinn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "GREETING=hello from the envfile"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("PATH=")), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.Caddyfile"), "{err}");
}
