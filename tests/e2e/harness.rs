//! Spawns the real `gojinn` binary on an ephemeral port and talks plain HTTP/1.1
//! to it over TCP, so tests see exactly the bytes a client would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the workspace lives.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How long a test waits for the server to come up or a log line to appear.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The test guest (tests/guest), built once per test run for wasm32-wasip1.
pub(crate) fn guest() -> &'static Path {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| {
        let target = root().join("target/guests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1"])
            .arg("--manifest-path")
            .arg(root().join("tests/guest/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            // Flags meant for the host test build must not leak into the guest build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build the test guest");
        assert!(
            status.success(),
            "building tests/guest failed (is the wasm32-wasip1 target installed? `rustup target add wasm32-wasip1`)"
        );
        target.join("wasm32-wasip1/release/gojinn-test-guest.wasm")
    })
}

/// A scratch directory unique to one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = root()
        .join("target/e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A port that is free now, for programs that take their port on the command
/// line rather than reporting one (Pebble, redis-server, gojinn's
/// `http_port`). Drawn below the kernel's ephemeral range, which every `:0`
/// listener and every outgoing connection of the tests draws from, and never
/// handed out twice in one run; so only a process outside the tests can take
/// it before its user binds it.
pub(crate) fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Start at a place that differs per process, so parallel test runs on one
    // machine rarely try the same ports.
    let span = u32::from(high - low);
    let start = (std::process::id().wrapping_mul(7919)
        + u32::try_from(given.len()).unwrap_or(0) * 13)
        % span;
    for i in 0..span {
        let port = low + u16::try_from((start + i) % span).expect("in range");
        if given.contains(&port) {
            continue;
        }
        let free = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            given.push(port);
            return port;
        }
    }
    panic!("no free port between {low} and {high}");
}

/// Captured server log lines, with a condition variable to wait on.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
    closed: Mutex<bool>,
}

/// A running `gojinn run`; killed on drop.
pub(crate) struct Server {
    child: Child,
    /// The bound port.
    pub(crate) port: u16,
    log: Arc<Log>,
}

impl Server {
    /// Serves `body` (the site block's contents) on `:0` with the admin listener off.
    pub(crate) fn with_routes(name: &str, body: &str) -> Server {
        Server::with_routes_env(name, body, &[])
    }

    /// Like [`Server::with_routes`], with extra environment for the server process.
    pub(crate) fn with_routes_env(name: &str, body: &str, env: &[(&str, &str)]) -> Server {
        Server::with_globals(name, "admin off", body, env)
    }

    /// Serves `body` on `:0` with `globals` as the global options block.
    pub(crate) fn with_globals(
        name: &str,
        globals: &str,
        body: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let dir = scratch(name);
        let caddyfile = format!("{{\n{globals}\n}}\n\n:0 {{\n{body}\n}}\n");
        let path = dir.join("Caddyfile");
        std::fs::write(&path, caddyfile).expect("write Caddyfile");
        Server::start(&path, env)
    }

    /// Serves `body` with the admin listener on `127.0.0.1:0`; returns the server
    /// and the admin port (from its `admin listening` log line).
    pub(crate) fn with_admin(name: &str, body: &str) -> (Server, u16) {
        let s = Server::with_globals(name, "    admin 127.0.0.1:0", body, &[]);
        let line = s
            .wait_for_log(|l| l.contains("\"message\":\"admin listening\""))
            .unwrap_or_else(|| panic!("no admin listening line; log:\n{}", s.logs().join("\n")));
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        let port = v["fields"]["port"].as_u64().expect("port field") as u16;
        (s, port)
    }

    /// Starts `gojinn run --config path` and waits for its `listening` log line.
    pub(crate) fn start(config: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_args(config, &[], env)
    }

    /// Like [`Server::start`], with extra arguments after `run --config path`.
    pub(crate) fn start_args(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(None, config, args, env)
    }

    /// Like [`Server::start_args`], run from the working directory `cwd`.
    pub(crate) fn start_in(
        cwd: Option<&Path>,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gojinn"));
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // Keep the compile cache of tests out of the user's cache directory, and
        // the default storage (jobs, KV) out of the user's data directory: one
        // under target/ per config directory (a restart on the same config finds
        // its store; a server the user runs cannot hold a test's open; configs
        // in examples/ leave nothing in the source tree).
        cmd.env("GOJINN_CACHE_DIR", root().join("target/e2e-cache"));
        if let Some(dir) = config.parent() {
            let key = dir.strip_prefix(root()).unwrap_or(dir).to_string_lossy();
            let data = root().join("target/e2e-data").join(key.replace('/', "_"));
            cmd.env("XDG_DATA_HOME", data);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gojinn");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().expect("log lock").push(line);
                sink.changed.notify_all();
            }
            *sink.closed.lock().expect("log lock") = true;
            sink.changed.notify_all();
        });
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        let line = server
            .wait_for_log(|l| l.contains("\"message\":\"listening\""))
            .unwrap_or_else(|| {
                panic!(
                    "gojinn did not start listening; its log:\n{}",
                    server.logs().join("\n")
                )
            });
        let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        server.port = v["fields"]["port"].as_u64().expect("port field") as u16;
        // "ready" comes once reload triggers (SIGHUP, --watch) are in place.
        if server.wait_for_log(|l| l.contains(" ready\"")).is_none() {
            panic!(
                "gojinn listened but never said ready; its log:\n{}",
                server.logs().join("\n")
            );
        }
        server
    }

    /// Every log line so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.log.lines.lock().expect("log lock").clone()
    }

    /// Waits for a log line matching `pred`; `None` if the log closed or the wait
    /// timed out first.
    pub(crate) fn wait_for_log(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut lines = self.log.lines.lock().expect("log lock");
        loop {
            if let Some(l) = lines.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            if *self.log.closed.lock().expect("log lock") {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self
                .log
                .changed
                .wait_timeout(lines, left)
                .expect("log lock")
                .0;
        }
    }

    /// Sends `signal` (a name such as `TERM` or `HUP`) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the server to exit; `None` if it is still running at the deadline.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `count` log lines match `pred`; false if the log closed or the
    /// wait timed out first.
    pub(crate) fn wait_for_logs(&self, count: usize, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut lines = self.log.lines.lock().expect("log lock");
        loop {
            if lines.iter().filter(|l| pred(l)).count() >= count {
                return true;
            }
            if *self.log.closed.lock().expect("log lock") {
                return false;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            lines = self
                .log
                .changed
                .wait_timeout(lines, left)
                .expect("log lock")
                .0;
        }
    }

    /// The server's resident set size, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], b"")
    }

    /// One request on a fresh connection.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw)
    }

    /// Sends raw bytes and parses the response.
    pub(crate) fn raw(&self, bytes: &[u8]) -> Resp {
        try_raw(self.port, bytes).expect("request")
    }
}

/// `GET path` on a fresh connection to `port`, with I/O errors (a refused
/// connection, a reset) returned instead of panicking.
pub(crate) fn try_get(port: u16, path: &str) -> std::io::Result<Resp> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    try_raw(port, head.as_bytes())
}

fn try_raw(port: u16, bytes: &[u8]) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(bytes)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    Ok(Resp::parse(&buf))
}

/// One request to `127.0.0.1:port` on a fresh connection (for the admin listener).
pub(crate) fn request_to(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    raw_to(port, &raw)
}

/// Sends raw bytes to `127.0.0.1:port` and parses the response.
pub(crate) fn raw_to(port: u16, bytes: &[u8]) -> Resp {
    try_raw(port, bytes).expect("request")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    fn parse(buf: &[u8]) -> Resp {
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let rest = &buf[end + 4..];
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// Every value of header `name` (lower-case), in order.
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&rest[..pos]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = pos + 2;
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// A `gojinn` block for the test guest in `mode`, with extra sub-directives.
/// The Go `gojinn build` uses (`$GO`, else `go` on PATH, else Debian's
/// golang-1.23-go), if there is one.
pub(crate) fn go_binary() -> Option<PathBuf> {
    std::env::var_os("GO")
        .filter(|g| !g.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|p| p.join("go"))
                .find(|p| p.is_file())
        })
        .or_else(|| Some(PathBuf::from("/usr/lib/go-1.23/bin/go")).filter(|p| p.is_file()))
}

pub(crate) fn guest_route(path: &str, mode: &str, extra: &str) -> String {
    format!(
        "    handle {path} {{\n        gojinn {} {{\n            args {mode}\n{extra}\n        }}\n    }}\n",
        guest().display()
    )
}

/// Every sample of a classic-text scrape, keyed by `name{labels}` as written.
pub(crate) fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}
