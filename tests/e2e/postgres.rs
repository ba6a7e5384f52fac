//! Two gojinn nodes on one PostgreSQL database (`db_driver postgres`): a row
//! written through one is read through the other, parameters stay data, `db read`
//! cannot write, and the database going away is `UNAVAILABLE` (no hang) until it
//! returns.
//!
//! The tests make a throwaway cluster with Debian's `postgresql` binaries
//! (`initdb`/`pg_ctl` under /usr/lib/postgresql/*/bin), as the `postgres` user when
//! run as root, on a free loopback port; when that is impossible they say so on
//! stderr and pass without running.

use crate::host::{calls, host_route, one, serve, storage};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    pub(crate) fn start() -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            eprintln!("SKIPPED: no PostgreSQL binaries under /usr/lib/postgresql (install Debian's `postgresql`)");
            return None;
        };
        let port = crate::harness::free_port();
        // Outside the work tree: the server's user must own and reach it.
        let dir = std::env::temp_dir().join(format!("gojinn-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "SKIPPED: cannot hand {} to the postgres user",
                    dir.display()
                );
                return None;
            }
        }
        let pg = Postgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let init = pg
            .cmd("initdb")
            .arg("-D")
            .arg(pg.dir.join("data"))
            .args(["-A", "trust", "-U", "gojinn", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !init.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: initdb failed in {}", pg.dir.display());
            return None;
        }
        if !pg.up() {
            eprintln!("SKIPPED: pg_ctl could not start PostgreSQL on port {port}");
            return None;
        }
        Some(pg)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    fn up(&self) -> bool {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        self.cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl stop -m immediate`: the database vanishes mid-run.
    fn down(&self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The database as a URL (what `storage postgres://…` takes).
    pub(crate) fn url(&self) -> String {
        format!("postgres://gojinn@127.0.0.1:{}/postgres", self.port)
    }

    fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=gojinn dbname=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_route(path: &str, mode: &str, dsn: &str) -> String {
    host_route(
        path,
        &format!(
            "            permissions {{\n                db {mode}\n            }}\n            db_driver postgres\n            db_dsn \"{dsn}\""
        ),
    )
}

fn rows(r: &Value) -> Value {
    serde_json::from_str(r["out"].as_str().unwrap_or("")).unwrap_or(Value::Null)
}

#[test]
fn two_nodes_share_one_postgres_database_and_survive_its_outage() {
    let Some(pg) = Postgres::start() else { return };
    let dir = storage("pg-two");
    let dsn = pg.dsn();
    let routes = format!(
        "{}{}",
        pg_route("/rw", "write", &dsn),
        pg_route("/ro", "read", &dsn)
    );
    let a = serve("pg-node-a", &dir.join("a"), &routes);
    let b = serve("pg-node-b", &dir.join("b"), &routes);

    let evil = "x'); DROP TABLE notes; --";
    let r = calls(
        &a,
        "/rw",
        json!([
            {"call": "db_exec", "sql": "CREATE TABLE notes (id SERIAL PRIMARY KEY, text TEXT, n INT, meta JSONB)"},
            {"call": "db_exec", "sql": "INSERT INTO notes (text, n, meta) VALUES ($1, $2, $3)", "params": [evil, 7, {"k": [1]}]},
            {"call": "db_query", "sql": "SELEC broken"},
        ]),
    );
    assert_eq!(r[0]["ret"], 0, "{}", r[0]);
    assert_eq!(r[1]["ret"], 1, "{}", r[1]);
    assert!(
        rows(&r[2])[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("syntax"),
        "{}",
        r[2]
    );

    let r = calls(
        &b,
        "/ro",
        json!([
            {"call": "db_query_v1", "sql": "SELECT id, text, n, meta FROM notes WHERE text = $1", "params": [evil]},
            {"call": "db_exec", "sql": "DELETE FROM notes"},
            {"call": "db_query_v1", "sql": "SELECT n FROM notes WHERE n = $1", "params": ["seven"]},
        ]),
    );
    assert_eq!(
        rows(&r[0]),
        json!([{"id": 1, "text": evil, "n": 7, "meta": {"k": [1]}}]),
        "{}",
        r[0]
    );
    assert_eq!(r[1]["ret"], -2, "db read must not delete: {}", r[1]);
    assert_eq!(r[2]["ret"], -3, "{}", r[2]);

    // The database goes away: answers, promptly enough for the harness, with -6.
    pg.down();
    let r = one(
        &b,
        "/ro",
        json!({"call": "db_query_v1", "sql": "SELECT 1 AS one"}),
    );
    assert_eq!(r["ret"], -6, "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("postgres"),
        "{r}"
    );

    // ... and comes back: the pools reconnect.
    assert!(pg.up(), "PostgreSQL restarts");
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in [&a, &b] {
        loop {
            let r = one(
                node,
                "/ro",
                json!({"call": "db_query_v1", "sql": "SELECT count(*)::int AS n FROM notes"}),
            );
            if r["ret"].as_i64().is_some_and(|n| n > 0) {
                assert_eq!(rows(&r), json!([{"n": 1}]));
                break;
            }
            assert!(Instant::now() < deadline, "never reconnected: {r}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_reload_that_keeps_the_dsn_keeps_the_pool() {
    use crate::reload_state::{sighup, site};
    let Some(pg) = Postgres::start() else { return };
    let dir = storage("pg-reload");
    let config = crate::harness::scratch("pg-reload").join("Caddyfile");
    let routes = pg_route("/rw", "write", &pg.dsn());
    std::fs::write(&config, site("admin off", &dir, 1, &routes)).expect("write Caddyfile");
    let server = crate::harness::Server::start(&config, &[]);
    let pid = |server: &crate::harness::Server| {
        let r = one(
            server,
            "/rw",
            json!({"call": "db_query", "sql": "SELECT pg_backend_pid() AS pid"}),
        );
        rows(&r)[0]["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("no backend pid: {r}"))
    };
    let before = pid(&server);
    assert_eq!(pid(&server), before, "one idle connection, reused");

    sighup(&server, &config, &site("admin off", &dir, 2, &routes), 2);
    assert_eq!(
        pid(&server),
        before,
        "the reload replaced the pool of an unchanged DSN (a new backend answered)"
    );
}
