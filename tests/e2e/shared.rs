//! Two gojinn nodes sharing state through Redis (`kv redis://…`): what one writes
//! the other reads, a lock one takes blocks the other until its TTL, and a Redis
//! outage is an `UNAVAILABLE` result (no hang) that heals when Redis returns.
//!
//! The tests start their own `redis-server` on a free loopback port; when the
//! binary is missing they say so on stderr and pass without running (install
//! Debian's `redis-server`; `.ci/run` does).

use crate::harness::free_port;
use crate::host::{calls, host_route, one, serve, storage};
use serde_json::json;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway `redis-server`; killed on drop.
pub(crate) struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts redis-server on `port` (0: a free one); `None` if it is not installed.
    pub(crate) fn start(dir: &Path, port: u16) -> Option<Redis> {
        let port = if port == 0 { free_port() } else { port };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "SKIPPED: cannot start redis-server ({e}); install Debian's `redis-server`"
                );
                return None;
            }
        };
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_route(url: &str) -> String {
    host_route(
        "/kv",
        &format!(
            "            permissions {{\n                kv_read *\n                kv_write *\n            }}\n            kv {url}"
        ),
    )
}

#[test]
fn two_nodes_share_kv_and_locks_through_redis() {
    let dir = storage("redis-two");
    let Some(redis) = Redis::start(&dir, 0) else {
        return;
    };
    let a = serve("redis-node-a", &dir.join("a"), &redis_route(&redis.url()));
    let b = serve("redis-node-b", &dir.join("b"), &redis_route(&redis.url()));

    let r = one(
        &a,
        "/kv",
        json!({"call": "kv_set_v1", "key": "shared:greeting", "value": "from a"}),
    );
    assert_eq!(r["ret"], 0, "{r}");
    let r = one(
        &b,
        "/kv",
        json!({"call": "kv_get_v1", "key": "shared:greeting"}),
    );
    assert_eq!(
        r["out"], "from a",
        "node b does not see node a's write: {r}"
    );
    // Gojinn's original functions go to the same store.
    let r = one(
        &b,
        "/kv",
        json!({"call": "kv_get", "key": "shared:greeting"}),
    );
    assert_eq!(r["out"], "from a", "{r}");
    let r = calls(
        &b,
        "/kv",
        json!([
            {"call": "kv_set_v1", "key": "shared:x*[y]", "value": "1"},
            {"call": "kv_list", "key": "shared:"},
            {"call": "kv_list", "key": "shared:x*"},
            {"call": "kv_delete", "key": "shared:x*[y]"},
        ]),
    );
    assert_eq!(
        r[1]["out"],
        json!({"keys": ["shared:greeting", "shared:x*[y]"], "more": false}).to_string()
    );
    assert_eq!(
        r[2]["out"],
        json!({"keys": ["shared:x*[y]"], "more": false}).to_string()
    );
    assert_eq!(r[3]["ret"], 1);

    // A lock taken on A blocks B (who cannot release it) until the TTL passes.
    let started = Instant::now();
    let r = one(&a, "/kv", json!({"call": "lock", "key": "job", "ttl": 2}));
    assert_eq!(r["ret"], 1, "{r}");
    let r = calls(
        &b,
        "/kv",
        json!([{"call": "lock", "key": "job", "ttl": 2}, {"call": "unlock", "key": "job"}]),
    );
    assert_eq!(
        (r[0]["ret"].as_i64(), r[1]["ret"].as_i64()),
        (Some(0), Some(0)),
        "{r:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = one(&b, "/kv", json!({"call": "lock", "key": "job", "ttl": 60}));
        if r["ret"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lock taken on node a never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "released before its TTL"
    );
    let r = one(&a, "/kv", json!({"call": "lock", "key": "job", "ttl": 2}));
    assert_eq!(r["ret"], 0, "node b now holds it: {r}");
}

#[test]
fn a_redis_outage_is_unavailable_without_hanging_and_heals() {
    let dir = storage("redis-outage");
    let Some(redis) = Redis::start(&dir, 0) else {
        return;
    };
    let port = redis.port;
    let node = serve("redis-outage", &dir.join("n"), &redis_route(&redis.url()));
    let r = one(
        &node,
        "/kv",
        json!({"call": "kv_set_v1", "key": "k", "value": "before"}),
    );
    assert_eq!(r["ret"], 0, "{r}");

    drop(redis);
    // The request still answers (the harness would fail after its 60 s read
    // timeout), and the guest learns why.
    let r = calls(
        &node,
        "/kv",
        json!([
            {"call": "kv_get_v1", "key": "k"},
            {"call": "kv_set_v1", "key": "k", "value": "x"},
        ]),
    );
    assert_eq!(r[0]["ret"], -6, "{}", r[0]);
    assert!(
        r[0]["error"].as_str().unwrap_or("").contains("redis"),
        "{}",
        r[0]
    );
    assert_eq!(r[1]["ret"], -6, "{}", r[1]);
    assert!(
        r[1]["error"].as_str().unwrap_or("").contains("unavailable"),
        "{}",
        r[1]
    );

    // Redis comes back (empty: it kept nothing on disk); the node recovers.
    let _redis = Redis::start(&dir, port).expect("redis-server restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = one(
            &node,
            "/kv",
            json!({"call": "kv_set_v1", "key": "k", "value": "after"}),
        );
        if r["ret"] == 0 {
            break;
        }
        assert_eq!(r["ret"], -6, "{r}");
        assert!(Instant::now() < deadline, "the node never reconnected: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = one(&node, "/kv", json!({"call": "kv_get_v1", "key": "k"}));
    assert_eq!(r["out"], "after", "{r}");
}

#[test]
fn a_reload_that_keeps_the_redis_url_keeps_its_connection() {
    use crate::reload_state::{redis_connections, sighup, site};
    let dir = storage("redis-reload");
    let Some(redis) = Redis::start(&dir, 0) else {
        return;
    };
    let config = crate::harness::scratch("redis-reload").join("Caddyfile");
    let routes = redis_route(&redis.url());
    std::fs::write(&config, site("admin off", &dir, 1, &routes)).expect("write Caddyfile");
    let server = crate::harness::Server::start(&config, &[]);
    let r = one(
        &server,
        "/kv",
        json!({"call": "kv_set_v1", "key": "k", "value": "v"}),
    );
    assert_eq!(r["ret"], 0, "{r}");
    let before = redis_connections(redis.port);

    sighup(&server, &config, &site("admin off", &dir, 2, &routes), 2);
    let r = one(&server, "/kv", json!({"call": "kv_get_v1", "key": "k"}));
    assert_eq!(r["out"], "v", "{r}");
    // One more: this count's own connection, none from the server.
    assert_eq!(
        redis_connections(redis.port),
        before + 1,
        "the reload opened a new connection to Redis for an unchanged URL"
    );
}
