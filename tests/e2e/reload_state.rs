//! What a reload keeps (issue 14): the stores are the process's, not the
//! config's. A lock taken under one config still excludes a request on the next,
//! whichever way the reload came (SIGHUP, `--watch`, `POST /load`), until its TTL
//! passes. A reload that keeps a Redis URL or a PostgreSQL DSN keeps its
//! connection instead of opening a new one.

use crate::harness::{scratch, Server};
use crate::host::{host_route, one, storage};
use serde_json::json;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lease the first request takes: long enough to span a reload on a busy
/// machine, short enough to wait out.
const TTL_SECS: u64 = 4;

const ALL_KV: &str =
    "            permissions {\n                kv_read *\n                kv_write *\n            }";

/// A Caddyfile serving `routes` and a `respond /generation` that names the
/// config, so a test can tell which one serves.
pub(crate) fn site(globals: &str, store: &Path, generation: u32, routes: &str) -> String {
    format!(
        "{{\n    {globals}\n    storage {}\n}}\n\n:0 {{\n    respond /generation \"{generation}\" 200\n{routes}}}\n",
        store.display(),
    )
}

/// The KV test config of `generation`.
fn caddyfile(globals: &str, store: &Path, generation: u32) -> String {
    site(globals, store, generation, &host_route("/kv", ALL_KV))
}

/// Writes `text` to `config`, sends SIGHUP and waits until generation
/// `generation` serves.
pub(crate) fn sighup(server: &Server, config: &Path, text: &str, generation: u32) {
    std::fs::write(config, text).expect("write Caddyfile");
    server.signal("HUP");
    wait_for_generation(server, generation);
}

/// Waits for the reload log line, then checks that generation `generation` serves.
fn wait_for_generation(server: &Server, generation: u32) {
    assert!(
        server
            .wait_for_log(|l| is_msg(l, "config reloaded"))
            .is_some(),
        "no reload; log:\n{}",
        server.logs().join("\n")
    );
    assert_eq!(
        server.get("/generation").text(),
        generation.to_string(),
        "the new config serves"
    );
}

fn is_msg(line: &str, msg: &str) -> bool {
    line.contains(&format!("\"message\":\"{msg}\""))
}

/// Starts a server on generation 1 of the config in `dir`.
fn start(dir: &Path, globals: &str, args: &[&str]) -> (Server, PathBuf) {
    let store = storage(&format!(
        "reload-lock-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let config = dir.join("Caddyfile");
    std::fs::write(&config, caddyfile(globals, &store, 1)).expect("write Caddyfile");
    (Server::start_args(&config, args, &[]), store)
}

/// Takes the lock under generation 1, lets `reload` switch to generation 2,
/// then checks the lock still excludes until its TTL has passed.
fn lock_survives(server: &Server, reload: impl FnOnce()) {
    let taken = Instant::now();
    let r = one(
        server,
        "/kv",
        json!({"call": "lock", "key": "job", "ttl": TTL_SECS}),
    );
    assert_eq!(r["ret"], 1, "the first lock: {r}");
    reload();
    wait_for_generation(server, 2);

    let r = one(
        server,
        "/kv",
        json!({"call": "lock", "key": "job", "ttl": 60}),
    );
    if taken.elapsed() < Duration::from_secs(TTL_SECS) {
        assert_eq!(
            r["ret"], 0,
            "a lock taken before the reload was granted again after it: {r}"
        );
    }
    // It frees once the TTL has passed, not before.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = one(
            server,
            "/kv",
            json!({"call": "lock", "key": "job", "ttl": 60}),
        );
        if r["ret"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the lock never expired: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        taken.elapsed() >= Duration::from_secs(TTL_SECS) - Duration::from_millis(100),
        "the lock was free again after {:?}, before its TTL of {TTL_SECS} s",
        taken.elapsed()
    );
}

#[test]
fn a_lock_survives_a_sighup_reload() {
    let dir = scratch("reload-lock-sighup");
    let (server, store) = start(&dir, "admin off", &[]);
    lock_survives(&server, || {
        std::fs::write(dir.join("Caddyfile"), caddyfile("admin off", &store, 2))
            .expect("write Caddyfile");
        server.signal("HUP");
    });
}

#[test]
fn a_lock_survives_a_watch_reload() {
    let dir = scratch("reload-lock-watch");
    let (server, store) = start(&dir, "admin off", &["--watch"]);
    lock_survives(&server, || {
        std::fs::write(dir.join("Caddyfile"), caddyfile("admin off", &store, 2))
            .expect("write Caddyfile");
    });
}

#[test]
fn a_lock_survives_a_post_load_reload() {
    let dir = scratch("reload-lock-load");
    let globals = "admin 127.0.0.1:0";
    let (server, store) = start(&dir, globals, &[]);
    let admin: u16 = server
        .wait_for_log(|l| is_msg(l, "admin listening"))
        .and_then(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            v["fields"]["port"].as_u64()?.try_into().ok()
        })
        .expect("admin port in the log");
    lock_survives(&server, || {
        let next = dir.join("next.caddyfile");
        std::fs::write(&next, caddyfile(globals, &store, 2)).expect("write Caddyfile");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gojinn"))
            .args(["reload", "--config"])
            .arg(&next)
            .args(["--address", &format!("127.0.0.1:{admin}")])
            .output()
            .expect("run gojinn reload");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `total_connections_received` of the Redis server on `port` (this query's
/// own connection included).
pub(crate) fn redis_connections(port: u16) -> u64 {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    conn.write_all(b"INFO stats\r\n").expect("send INFO");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains("total_connections_received:") || !text.ends_with("\r\n") {
        let n = conn.read(&mut buf).expect("read INFO");
        assert!(n > 0, "redis closed the connection: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connection count in INFO: {text}"))
}
