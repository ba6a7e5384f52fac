//! The `gojinn` host ABI against real stores: embedded KV (redb) and SQLite,
//! through the test guest's `host` mode, which declares Gojinn's imports itself.

use crate::harness::{guest, root, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A storage directory that survives the server (unlike `scratch`, which each
/// `Server` start would clear).
pub(crate) fn storage(name: &str) -> PathBuf {
    let dir = root()
        .join("target/e2e-storage")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create storage dir");
    dir
}

/// Starts a server whose Caddyfile sets `storage` and serves `body`.
pub(crate) fn serve(name: &str, store: &Path, body: &str) -> Server {
    let dir = root()
        .join("target/e2e")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create config dir");
    let path = dir.join("Caddyfile");
    let text = format!(
        "{{\n    admin off\n    storage {}\n}}\n\n:0 {{\n{body}\n}}\n",
        store.display()
    );
    std::fs::write(&path, text).expect("write Caddyfile");
    Server::start(&path, &[])
}

/// A `gojinn` route at `path` running the guest's `host` mode with `grants`.
pub(crate) fn host_route(path: &str, grants: &str) -> String {
    format!(
        "    handle {path} {{\n        gojinn {} {{\n            args host\n            timeout 2s\n{grants}\n        }}\n    }}\n",
        guest().display()
    )
}

/// Runs `calls` in one request; the guest's per-call results.
pub(crate) fn calls(server: &Server, path: &str, calls: Value) -> Vec<Value> {
    let resp = server.request("POST", path, &[], calls.to_string().as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: Value = resp.json();
    let inner = body["body"].as_str().map_or(body.clone(), |s| {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("guest answer is not JSON ({e}): {s}"))
    });
    inner.as_array().expect("array of results").clone()
}

pub(crate) fn one(server: &Server, path: &str, call: Value) -> Value {
    calls(server, path, json!([call])).remove(0)
}

const ALL_KV: &str = "            permissions {\n                kv_read *\n                kv_write *\n            }";

#[test]
fn kv_values_persist_across_requests_and_a_restart() {
    let store = storage("kv-persist");
    let body = host_route("/kv", ALL_KV);
    {
        let server = serve("kv-persist-a", &store, &body);
        let r = one(
            &server,
            "/kv",
            json!({"call": "kv_set", "key": "greeting", "value": "hello"}),
        );
        assert_eq!(r["error"], "", "{r}");
        // Another request, another sandbox: the value is there.
        let r = one(&server, "/kv", json!({"call": "kv_get", "key": "greeting"}));
        assert_eq!(
            (r["ret"].as_i64(), r["out"].as_str()),
            (Some(5), Some("hello")),
            "{r}"
        );
        let r = one(&server, "/kv", json!({"call": "kv_get", "key": "missing"}));
        assert_eq!(r["ret"], -1, "{r}");
    }
    // The first server is killed and waited for (its file lock released).
    let server = serve("kv-persist-b", &store, &body);
    let r = one(&server, "/kv", json!({"call": "kv_get", "key": "greeting"}));
    assert_eq!(r["out"], "hello", "value lost across a restart: {r}");
    assert!(store.join("kv.redb").is_file());
}

#[test]
fn ungranted_calls_link_and_are_denied_and_logged() {
    let store = storage("kv-denied");
    let grants = "            permissions {\n                kv_read public:*\n            }";
    let body = format!(
        "{}{}",
        host_route("/limited/*", grants),
        host_route("/nothing/*", "")
    );
    let server = serve("kv-denied", &store, &body);
    // Gojinn's host_kv_set cannot return the denial: it traps (issue 16), the
    // request is a 502, and the log says why.
    let r = server.request(
        "POST",
        "/limited/x",
        &[],
        json!([{"call": "kv_set", "key": "public:a", "value": "x"}])
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let r = calls(
        &server,
        "/limited/x",
        json!([
            {"call": "kv_get", "key": "public:a"},
            {"call": "kv_set_v1", "key": "public:a", "value": "x"},
            {"call": "kv_get_v1", "key": "secret"},
            {"call": "kv_delete", "key": "public:a"},
            {"call": "lock", "key": "public:a", "ttl": 5},
            {"call": "db_query", "sql": "SELECT 1"},
            {"call": "db_exec", "sql": "SELECT 1"},
        ]),
    );
    assert_eq!(
        r[0]["ret"], -1,
        "the write must not have happened: {}",
        r[0]
    );
    assert_eq!(r[1]["ret"], -2, "{}", r[1]);
    assert_eq!(r[2]["ret"], -2, "{}", r[2]);
    assert_eq!(r[3]["ret"], -2, "{}", r[3]);
    assert_eq!(r[4]["ret"], 0, "{}", r[4]);
    let rows: Value = serde_json::from_str(r[5]["out"].as_str().unwrap_or("")).expect("JSON rows");
    assert!(
        rows[0]["error"].as_str().unwrap_or("").contains("denied"),
        "{rows}"
    );
    assert_eq!(r[6]["ret"], -2, "{}", r[6]);

    // A route with no permissions at all: the module still links and runs.
    let r = one(
        &server,
        "/nothing/x",
        json!({"call": "kv_get_v1", "key": "public:a"}),
    );
    assert_eq!(r["ret"], -2, "{r}");
    let r = one(&server, "/nothing/x", json!({"call": "abi_version"}));
    assert_eq!(r["ret"], 1, "{r}");

    let line = server
        .wait_for_log(|l| {
            l.contains("gojinn::host") && l.contains("denied") && l.contains("/limited/*")
        })
        .expect("a denial log line naming the route");
    assert!(line.contains("host_kv_set"), "{line}");
    assert!(line.contains("trace_id"), "{line}");
}

#[test]
fn values_over_one_mib_are_refused_and_buffers_too_small_are_reported() {
    let store = storage("kv-limits");
    let server = serve("kv-limits", &store, &host_route("/kv", ALL_KV));
    let mib = 1 << 20;
    let r = calls(
        &server,
        "/kv",
        json!([
            {"call": "kv_set_v1", "key": "big", "size": mib + 1},
            {"call": "kv_get_v1", "key": "big"},
            {"call": "kv_set_v1", "key": "exact", "size": mib},
            {"call": "kv_get_v1", "key": "exact", "max": 16},
            {"call": "result_take", "max": mib},
            {"call": "result_take", "max": mib},
            {"call": "kv_get", "key": "exact", "max": 16},
        ]),
    );
    assert_eq!(r[0]["ret"], -4, "{}", r[0]);
    assert!(
        r[0]["error"].as_str().unwrap_or("").contains("1048576"),
        "{}",
        r[0]
    );
    assert_eq!(r[1]["ret"], -1, "{}", r[1]);
    assert_eq!(r[2]["ret"], 0, "{}", r[2]);
    // Too small a buffer: the needed size, nothing written (no silent truncation).
    assert_eq!(r[3]["ret"], mib, "{}", r[3]["ret"]);
    assert_eq!(r[3]["out"], "");
    assert_eq!(r[4]["ret"], mib);
    assert_eq!(r[4]["out"].as_str().map(str::len), Some(mib));
    assert_eq!(r[5]["ret"], -1, "a pending result is taken once");
    // Gojinn's host_kv_get cuts the value to the buffer, as Gojinn did.
    assert_eq!(r[6]["ret"], 16, "{}", r[6]["ret"]);
    assert_eq!(r[6]["out"].as_str().map(str::len), Some(16));

    // Gojinn's host_kv_set cannot report the refusal: it traps (502).
    let r = server.request(
        "POST",
        "/kv",
        &[],
        json!([{"call": "kv_set", "key": "big", "size": mib + 1}])
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let line = server
        .wait_for_log(|l| l.contains("`host_kv_set` failed"))
        .expect("the trap's reason in the log");
    assert!(line.contains("over the limit"), "{line}");
}

#[test]
fn kv_delete_and_list_by_prefix_respect_the_read_grant() {
    let store = storage("kv-list");
    let grants = "            permissions {\n                kv_read users:* config\n                kv_write *\n            }";
    let server = serve("kv-list", &store, &host_route("/kv", grants));
    let r = calls(
        &server,
        "/kv",
        json!([
            {"call": "kv_set_v1", "key": "users:bob", "value": "2"},
            {"call": "kv_set_v1", "key": "users:alice", "value": "1"},
            {"call": "kv_set_v1", "key": "userz", "value": "x"},
            {"call": "kv_set_v1", "key": "secret", "value": "x"},
            {"call": "kv_list", "key": "user"},
            {"call": "kv_list", "key": ""},
            {"call": "kv_delete", "key": "users:bob"},
            {"call": "kv_delete", "key": "users:bob"},
            {"call": "kv_list", "key": "users:"},
        ]),
    );
    let list = |i: usize| -> Value {
        serde_json::from_str(r[i]["out"].as_str().unwrap_or("")).expect("list JSON")
    };
    assert_eq!(
        list(4),
        json!({"keys": ["users:alice", "users:bob"], "more": false})
    );
    assert_eq!(
        list(5),
        json!({"keys": ["users:alice", "users:bob"], "more": false})
    );
    assert_eq!(r[6]["ret"], 1);
    assert_eq!(r[7]["ret"], 0);
    assert_eq!(list(8), json!({"keys": ["users:alice"], "more": false}));
}

#[test]
fn lock_is_exclusive_across_requests_until_its_ttl() {
    let store = storage("kv-lock");
    let server = serve("kv-lock", &store, &host_route("/kv", ALL_KV));
    let first = calls(
        &server,
        "/kv",
        json!([
            {"call": "lock", "key": "job", "ttl": 2},
            {"call": "lock", "key": "job", "ttl": 2},
        ]),
    );
    assert_eq!(first[0]["ret"], 1);
    assert_eq!(first[1]["ret"], 1, "the holder may renew its lock");
    // The first request has ended without unlocking; another sandbox is blocked
    // and cannot release it.
    let started = Instant::now();
    let r = calls(
        &server,
        "/kv",
        json!([{"call": "lock", "key": "job", "ttl": 2}, {"call": "unlock", "key": "job"}]),
    );
    assert_eq!(
        (r[0]["ret"].as_i64(), r[1]["ret"].as_i64()),
        (Some(0), Some(0)),
        "{r:?}"
    );
    // ... until the TTL passes.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = one(
            &server,
            "/kv",
            json!({"call": "lock", "key": "job", "ttl": 60}),
        );
        if r["ret"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the lock never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "released before its TTL"
    );
    // Taken and released within one request.
    let r = calls(
        &server,
        "/kv",
        json!([
            {"call": "lock", "key": "other", "ttl": 60},
            {"call": "unlock", "key": "other"},
            {"call": "lock", "key": "other", "ttl": 60},
        ]),
    );
    assert_eq!(
        r.iter().map(|x| x["ret"].as_i64()).collect::<Vec<_>>(),
        [Some(1), Some(1), Some(1)]
    );
}

fn db_route(path: &str, mode: &str, dsn: &Path, extra: &str) -> String {
    host_route(
        path,
        &format!(
            "            permissions {{\n                db {mode}\n            }}\n            db_dsn {}\n{extra}",
            dsn.display()
        ),
    )
}

#[test]
fn sqlite_queries_bind_parameters_and_report_errors_as_json() {
    let store = storage("sql");
    let dsn = store.join("app.db");
    let body = format!(
        "{}{}",
        db_route("/rw", "write", &dsn, ""),
        db_route("/ro", "read", &dsn, "")
    );
    let server = serve("sql", &store, &body);
    let evil = "x'); DROP TABLE notes; --";
    let r = calls(
        &server,
        "/rw",
        json!([
            {"call": "db_exec", "sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"},
            {"call": "db_exec", "sql": "INSERT INTO notes (text) VALUES (?1)", "params": [evil]},
            {"call": "db_exec", "sql": "INSERT INTO notes (text) VALUES (?1), (?2)", "params": ["a \"quoted\" note", null]},
            {"call": "db_query_v1", "sql": "SELECT id, text FROM notes WHERE text = ?1", "params": [evil]},
            {"call": "db_query", "sql": "SELECT count(*) AS n FROM notes"},
            {"call": "db_query", "sql": "SELEC oops"},
            {"call": "db_query_v1", "sql": "SELECT * FROM nowhere", "params": []},
            {"call": "db_query_v1", "sql": "SELECT ?1", "params": "not an array"},
            {"call": "db_query", "sql": "SELECT 1; DROP TABLE notes"},
        ]),
    );
    assert_eq!(r[0]["ret"], 0, "{}", r[0]);
    assert_eq!(r[1]["ret"], 1, "{}", r[1]);
    assert_eq!(r[2]["ret"], 2, "{}", r[2]);
    let rows: Value = serde_json::from_str(r[3]["out"].as_str().unwrap_or("")).expect("rows");
    assert_eq!(rows, json!([{"id": 1, "text": evil}]));
    let rows: Value = serde_json::from_str(r[4]["out"].as_str().unwrap_or("")).expect("rows");
    assert_eq!(
        rows,
        json!([{"n": 3}]),
        "the injection attempt dropped nothing"
    );
    // Gojinn's error shape, valid JSON whatever the message holds.
    let rows: Value = serde_json::from_str(r[5]["out"].as_str().unwrap_or("")).expect("error rows");
    assert!(
        rows[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("syntax error"),
        "{rows}"
    );
    assert_eq!(r[6]["ret"], -5, "{}", r[6]);
    assert!(
        r[6]["error"].as_str().unwrap_or("").contains("nowhere"),
        "{}",
        r[6]
    );
    assert_eq!(r[7]["ret"], -3, "{}", r[7]);
    let rows: Value = serde_json::from_str(r[8]["out"].as_str().unwrap_or("")).expect("error rows");
    assert!(rows[0]["error"].is_string(), "{rows}");

    // `db read`: queries yes, changes no.
    let r = calls(
        &server,
        "/ro",
        json!([
            {"call": "db_query_v1", "sql": "SELECT count(*) AS n FROM notes"},
            {"call": "db_exec", "sql": "DELETE FROM notes"},
            {"call": "db_query", "sql": "DELETE FROM notes RETURNING id"},
        ]),
    );
    assert_eq!(r[0]["out"], r#"[{"n":3}]"#);
    assert_eq!(r[1]["ret"], -2, "{}", r[1]);
    assert!(
        r[2]["out"].as_str().unwrap_or("").contains("db read"),
        "{}",
        r[2]
    );
}

#[test]
fn a_slow_query_ends_in_504_and_its_connection_returns_to_the_pool() {
    let store = storage("sql-slow");
    let dsn = store.join("slow.db");
    let body = db_route("/db", "read", &dsn, "            timeout 300ms");
    // The route's own `timeout 2s` comes first; give the slow route its own block.
    let body = body.replace("            timeout 2s\n", "");
    let server = serve("sql-slow", &store, &body);
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    // More slow queries than the pool has connections: each must come back.
    for _ in 0..(gojinn_pool_size() + 2) {
        let resp = server.request(
            "POST",
            "/db",
            &[],
            json!([{"call": "db_query", "sql": endless}])
                .to_string()
                .as_bytes(),
        );
        assert_eq!(resp.status, 504, "{}", resp.text());
    }
    let r = one(
        &server,
        "/db",
        json!({"call": "db_query_v1", "sql": "SELECT 42 AS answer"}),
    );
    assert_eq!(r["out"], r#"[{"answer":42}]"#, "{r}");
}

/// Connections per DSN in the server (`gojinn_host::DEFAULT_SQL_POOL_SIZE`).
fn gojinn_pool_size() -> usize {
    8
}

#[test]
fn host_log_reaches_the_structured_log_with_route_and_trace_id() {
    let store = storage("host-log");
    let server = serve("host-log", &store, &host_route("/log/*", ""));
    let resp = server.request(
        "POST",
        "/log/x",
        &[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )],
        json!([{"call": "log", "level": 2, "value": "disk \"almost\" full"}])
            .to_string()
            .as_bytes(),
    );
    assert_eq!(resp.status, 200);
    let line = server
        .wait_for_log(|l| l.contains("almost") && l.contains("gojinn::guest"))
        .expect("the guest's log line");
    let v: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["level"], "WARN", "{line}");
    assert_eq!(v["fields"]["route"], "/log/*", "{line}");
    assert!(
        v["fields"]["trace_id"]
            .as_str()
            .is_some_and(|t| t.contains("0af7651916cd43dd8448eb211c80319c")),
        "{line}"
    );
}

#[test]
fn a_bad_pointer_is_an_invalid_argument_not_a_crash() {
    let store = storage("host-ptr");
    let server = serve("host-ptr", &store, &host_route("/kv", ALL_KV));
    let r = one(&server, "/kv", json!({"call": "bad_pointer"}));
    assert_eq!(r["ret"], -3, "{r}");
    assert_eq!(server.get("/kv").status, 200);
}

/// A plain hyper server on `127.0.0.1:0` standing in for an upstream API: it
/// answers 201 with what it received, or 5 MiB at `/big`. Runs until the test
/// process ends.
fn upstream() -> u16 {
    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::service::service_fn;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = listener.local_addr().expect("upstream addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("upstream runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let svc = service_fn(|req: hyper::Request<Incoming>| async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_owned();
                        let header = req
                            .headers()
                            .get("x-test")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                        let text = if path == "/big" {
                            "b".repeat(5 << 20)
                        } else {
                            json!({"method": method, "path": path, "x-test": header, "body": String::from_utf8_lossy(&body)}).to_string()
                        };
                        let resp = hyper::Response::builder()
                            .status(201)
                            .header("x-upstream", "yes")
                            .body(Full::new(Bytes::from(text)))
                            .expect("response");
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
    });
    port
}

#[test]
fn outbound_http_reaches_granted_hosts_only() {
    let port = upstream();
    // A port nothing granted: another local listener's.
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let other_port = other.local_addr().expect("addr").port();
    let store = storage("http-out");
    let grants = format!(
        "            permissions {{\n                http 127.0.0.1:{port}\n            }}"
    );
    let server = serve("http-out", &store, &host_route("/out", &grants));
    let r = calls(
        &server,
        "/out",
        json!([
            {"call": "http", "request": {
                "method": "POST",
                "url": format!("http://127.0.0.1:{port}/echo"),
                "headers": {"X-Test": "hello", "Content-Type": ["text/plain"]},
                "body": "ping"
            }},
            {"call": "http", "request": {"url": format!("http://127.0.0.1:{other_port}/")}},
            {"call": "http", "request": {"url": format!("http://localhost:{port}/")}},
            {"call": "http", "request": {"url": format!("http://127.0.0.1:{port}/big")}},
            {"call": "http", "request": {"url": "ftp://127.0.0.1/x"}},
        ]),
    );
    assert_eq!(r[0]["ret"].as_i64().map(|n| n > 0), Some(true), "{}", r[0]);
    let resp: Value =
        serde_json::from_str(r[0]["out"].as_str().unwrap_or("")).expect("response JSON");
    assert_eq!(resp["status"], 201, "{resp}");
    assert_eq!(resp["headers"]["x-upstream"], json!(["yes"]));
    let echoed: Value = serde_json::from_str(resp["body"].as_str().unwrap_or("")).expect("echo");
    assert_eq!(
        echoed,
        json!({"method": "POST", "path": "/echo", "x-test": "hello", "body": "ping"})
    );
    assert_eq!(r[1]["ret"], -2, "another port is not granted: {}", r[1]);
    assert_eq!(
        r[2]["ret"], -2,
        "another host name is not granted: {}",
        r[2]
    );
    assert_eq!(r[3]["ret"], -4, "{}", r[3]);
    assert_eq!(r[4]["ret"], -3, "{}", r[4]);

    // A route without the grant.
    drop(server);
    let server = serve("http-none", &store, &host_route("/out", ""));
    let r = one(
        &server,
        "/out",
        json!({"call": "http", "request": {"url": format!("http://127.0.0.1:{port}/")}}),
    );
    assert_eq!(r["ret"], -2, "{r}");
}
