//! Access logs and log outputs (issue 17): a site's `log` writes Caddy's
//! access-line shape to a file, stderr or nowhere; a file rolled by size keeps
//! every line whole and in some file, `roll_keep` deletes the oldest, rolled
//! files are gzipped; the global `log { output file … }` takes the server log.

use crate::harness::{request_to, scratch, Server};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for lines to reach a file.
const DEADLINE: Duration = Duration::from_secs(30);

/// Starts gojinn on `body` (a site block's contents) in a fresh directory.
fn serve(name: &str, body: &str) -> (Server, PathBuf) {
    let dir = scratch(name);
    let path = dir.join("Caddyfile");
    std::fs::write(
        &path,
        format!("{{\n    admin off\n}}\n\n:0 {{\n{body}\n}}\n"),
    )
    .expect("write Caddyfile");
    (Server::start(&path, &[]), dir)
}

/// Starts gojinn with an access log to `./logs/access.log` with the roll
/// `options` (lines of an `output file` block), then `routes`; returns the
/// server and the log file.
fn serve_logged(name: &str, options: &str, routes: &str) -> (Server, PathBuf) {
    let (s, dir) = serve(
        name,
        &format!("    log {{\n        output file ./logs/access.log {{\n{options}\n        }}\n    }}\n{routes}"),
    );
    (s, dir.join("logs/access.log"))
}

/// The `i` of an access line for `/n?i=<i>`.
fn index_of(line: &str) -> usize {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("a cut line ({e}): {line}"));
    let uri = v["request"]["uri"].as_str().expect("uri");
    uri.trim_start_matches("/n?i=").parse().expect("index")
}

/// `gojinn run --config <config>`, with the tests' compile cache and no stdin.
fn run_command(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gojinn"));
    cmd.args(["run", "--config"])
        .arg(config)
        .env(
            "GOJINN_CACHE_DIR",
            crate::harness::root().join("target/e2e-cache"),
        )
        .stdin(Stdio::null());
    cmd
}

/// A child process killed (and reaped) when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every line of the log file `current` and of its rolled files (gunzipped),
/// oldest first.
fn all_lines(current: &Path) -> Vec<String> {
    let dir = current.parent().expect("log dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read log dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("access-"))
        })
        .collect();
    // Rolled names carry their time (`access-2026-12-03T08-42-10.123.log`).
    files.sort();
    files.push(current.to_owned());
    let mut lines = Vec::new();
    for f in files {
        let mut text = String::new();
        if f.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(std::fs::File::open(&f).expect("open gz"))
                .read_to_string(&mut text)
                .expect("gunzip a rolled file");
        } else {
            // A file the roller is gzipping may vanish between listing and reading.
            text = std::fs::read_to_string(&f).unwrap_or_default();
        }
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

/// Polls `check` until it holds or the deadline passes.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The names of the rolled files beside `current`.
fn rolled(current: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(current.parent().expect("dir"))
        .expect("read log dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("access-"))
        .collect();
    names.sort();
    names
}

#[test]
fn access_lines_have_caddys_shape_and_hide_credentials() {
    let (s, file) = serve_logged(
        "access-shape",
        "            roll_disabled",
        "    respond /ok \"hello\" 200\n    respond /down \"gone\" 503",
    );
    let r = request_to(
        s.port,
        "GET",
        "/ok?x=1",
        &[
            ("Cookie", "session=s3cret"),
            ("User-Agent", "e2e \"agent\""),
            ("X-Two", "a"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/down").status, 503);
    wait_until("two access lines", || all_lines(&file).len() == 2);
    let lines = all_lines(&file);
    let ok: serde_json::Value = serde_json::from_str(&lines[0]).expect("json line");
    assert_eq!(ok["level"], "info");
    assert_eq!(ok["logger"], "http.log.access.log0");
    assert_eq!(ok["msg"], "handled request");
    assert!(ok["ts"].as_f64().is_some_and(|t| t > 1.7e9), "{ok}");
    assert!(
        ok["duration"]
            .as_f64()
            .is_some_and(|d| (0.0..60.0).contains(&d)),
        "{ok}"
    );
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["size"], 5);
    assert_eq!(ok["user_id"], "");
    let req = &ok["request"];
    assert_eq!(req["remote_ip"], "127.0.0.1");
    assert!(
        req["remote_port"]
            .as_str()
            .is_some_and(|p| p.parse::<u16>().is_ok()),
        "{req}"
    );
    assert_eq!(req["proto"], "HTTP/1.1");
    assert_eq!(req["method"], "GET");
    assert_eq!(req["host"], "localhost");
    assert_eq!(req["uri"], "/ok?x=1");
    assert_eq!(
        req["headers"]["User-Agent"],
        serde_json::json!(["e2e \"agent\""])
    );
    assert_eq!(req["headers"]["X-Two"], serde_json::json!(["a"]));
    assert_eq!(req["headers"]["Cookie"], serde_json::json!(["REDACTED"]));
    assert!(!lines[0].contains("s3cret"), "{}", lines[0]);
    assert_eq!(
        ok["resp_headers"]["Content-Type"],
        serde_json::json!(["text/plain; charset=utf-8"])
    );
    let down: serde_json::Value = serde_json::from_str(&lines[1]).expect("json line");
    assert_eq!(
        (down["level"].as_str(), down["status"].as_u64()),
        (Some("error"), Some(503))
    );
}

#[test]
fn an_access_log_rolled_by_size_loses_no_line_and_cuts_none() {
    let (s, file) = serve_logged(
        "access-roll",
        "            roll_size 16KiB\n            roll_keep 1000",
        "    respond \"ok\"",
    );
    const N: usize = 600;
    for i in 0..N {
        assert_eq!(s.get(&format!("/n?i={i}")).status, 200);
    }
    // Lines reach the file through a writer thread, and rolled files are
    // gzipped by another: wait for every line, then for every roll to be gzipped.
    wait_until("every access line", || all_lines(&file).len() >= N);
    wait_until("the rolled files to be gzipped", || {
        rolled(&file).iter().all(|n| n.ends_with(".log.gz"))
    });
    let files = rolled(&file);
    // ~350 bytes a line: 600 lines make about 200 KiB, a dozen rolls of 16 KiB.
    assert!(files.len() >= 8, "too few rolled files: {files:?}");
    for name in &files {
        let meta = std::fs::metadata(file.with_file_name(name)).expect("rolled file");
        assert!(meta.len() > 0, "{name}");
    }
    let mut seen = vec![0_u32; N];
    for line in all_lines(&file) {
        seen[index_of(&line)] += 1;
    }
    let wrong: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 1)
        .map(|(i, &c)| (i, c))
        .collect();
    assert!(
        wrong.is_empty(),
        "lines lost or doubled (index, count): {wrong:?}"
    );
}

#[test]
fn roll_keep_deletes_the_oldest_rolled_files() {
    let (s, file) = serve_logged(
        "access-keep",
        "            roll_size 4KiB\n            roll_keep 2\n            roll_uncompressed",
        "    respond \"ok\"",
    );
    for i in 0..200 {
        assert_eq!(s.get(&format!("/n?i={i}")).status, 200);
    }
    wait_until("the last access line", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("/n?i=199"))
    });
    wait_until("two rolled files kept", || rolled(&file).len() == 2);
    let files = rolled(&file);
    assert!(files.iter().all(|n| n.ends_with(".log")), "{files:?}");
    // What is kept is the newest stretch, without a gap: 199 and the lines before it.
    let indices: Vec<usize> = all_lines(&file).iter().map(|l| index_of(l)).collect();
    let first = indices[0];
    assert!(first > 0, "nothing was deleted");
    assert_eq!(indices, (first..200).collect::<Vec<_>>());
}

#[test]
fn site_log_to_stderr_joins_the_server_log() {
    let (s, _dir) = serve(
        "access-stderr",
        "    log {\n        format console\n    }\n    respond \"ok\"",
    );
    assert_eq!(s.get("/hello").status, 200);
    let line = s
        .wait_for_log(|l| l.contains("http.log.access.log0"))
        .expect("an access line on stderr");
    let fields: Vec<&str> = line.splitn(5, '\t').collect();
    assert_eq!(fields.len(), 5, "{line}");
    assert_eq!(
        &fields[1..4],
        ["INFO", "http.log.access.log0", "handled request"]
    );
    let v: serde_json::Value = serde_json::from_str(fields[4]).expect("json fields");
    assert_eq!(v["request"]["uri"], "/hello");
}

#[test]
fn global_log_output_file_takes_the_server_log() {
    let dir = scratch("global-log-file");
    let config = dir.join("Caddyfile");
    std::fs::write(
        &config,
        "{\n    admin off\n    log {\n        output file ./server.log\n    }\n}\n\n:0 {\n    respond \"ok\"\n}\n",
    )
    .expect("write Caddyfile");
    let mut child = KillOnDrop(
        run_command(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gojinn"),
    );
    let log = dir.join("server.log");
    let mut port = 0;
    let deadline = Instant::now() + DEADLINE;
    while port == 0 {
        assert!(
            Instant::now() < deadline,
            "no listening line in {}",
            log.display()
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        port = text
            .lines()
            .filter(|l| l.contains("\"message\":\"listening\""))
            .find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                u16::try_from(v["fields"]["port"].as_u64()?).ok()
            })
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = crate::harness::try_get(port, "/").expect("request");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let _ = child.0.kill();
    let mut stderr = String::new();
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        !stderr.contains("listening"),
        "the server log went to stderr too:\n{stderr}"
    );
}

#[test]
fn an_unwritable_log_file_stops_the_start_naming_the_directive() {
    let dir = scratch("access-unwritable");
    std::fs::write(dir.join("blocker"), "a file, not a directory").expect("write");
    let config = dir.join("Caddyfile");
    std::fs::write(
        &config,
        "{\n    admin off\n}\n\n:0 {\n    log {\n        output file ./blocker/access.log\n    }\n    respond \"ok\"\n}\n",
    )
    .expect("write Caddyfile");
    let out = run_command(&config).output().expect("run gojinn");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Caddyfile:6:5: cannot open log file")
            && stderr.contains("blocker/access.log"),
        "{stderr}"
    );
}

#[test]
fn a_reload_keeps_the_open_log_file_and_says_when_its_options_wait() {
    let (s, file) = serve_logged(
        "access-reload",
        "            roll_size 1MiB",
        "    respond \"one\"",
    );
    for i in 0..20 {
        assert_eq!(s.get(&format!("/n?i={i}")).text(), "one");
    }
    let config = file
        .parent()
        .and_then(Path::parent)
        .expect("scratch dir")
        .join("Caddyfile");
    let text = std::fs::read_to_string(&config).expect("read Caddyfile");
    std::fs::write(
        &config,
        text.replace("roll_size 1MiB", "roll_size 2MiB")
            .replace("\"one\"", "\"two\""),
    )
    .expect("rewrite Caddyfile");
    s.signal("HUP");
    s.wait_for_log(|l| l.contains("config reloaded"))
        .expect("a reload");
    assert!(
        s.logs()
            .iter()
            .any(|l| l.contains("is already open with other options")),
        "no notice that the new roll options wait for a restart:\n{}",
        s.logs().join("\n")
    );
    for i in 20..40 {
        assert_eq!(s.get(&format!("/n?i={i}")).text(), "two");
    }
    wait_until("every access line", || all_lines(&file).len() >= 40);
    let indices: Vec<usize> = all_lines(&file).iter().map(|l| index_of(l)).collect();
    assert_eq!(indices, (0..40).collect::<Vec<_>>());
}
