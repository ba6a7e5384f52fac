//! Process lifecycle: graceful shutdown on SIGTERM, reload on SIGHUP and with
//! `run --watch`, a bad reload refused while the old config keeps serving.

use crate::harness::{guest, request_to, scratch, try_get, Server};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Log filter that adds the "call started" line, so a test knows a request is
/// inside its sandbox.
const CALL_LOG: (&str, &str) = ("GOJINN_LOG", "info,gojinn::call=debug");

fn is_msg(line: &str, msg: &str) -> bool {
    line.contains(&format!("\"message\":\"{msg}\""))
}

/// A Caddyfile serving the test guest in `env` mode at `/` with `WHICH=which`.
fn which_caddyfile(which: &str) -> String {
    which_caddyfile_with(which, "admin off", "")
}

/// [`which_caddyfile`] with its global options and extra `gojinn` subdirectives.
fn which_caddyfile_with(which: &str, globals: &str, extra: &str) -> String {
    format!(
        "{{\n    {globals}\n}}\n\n:0 {{\n    gojinn {} {{\n        args env\n        env WHICH {which}\n        {extra}\n    }}\n}}\n",
        guest().display()
    )
}

/// Which function (`a`, `b`…) answered, from the `env` mode's echo of `WHICH`.
fn which_of(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["env"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == "WHICH")
        .and_then(|pair| pair[1].as_str().map(str::to_owned))
}

#[test]
fn sigterm_drains_in_flight_requests_then_interrupts_the_rest() {
    let dir = scratch("sigterm-drain");
    let config = dir.join("Caddyfile");
    let g = guest().display();
    std::fs::write(
        &config,
        format!(
            "{{\n    admin off\n    grace_period 4s\n}}\n\n:0 {{\n    handle /nap {{\n        gojinn {g} {{\n            args nap\n        }}\n    }}\n    handle /sleep {{\n        gojinn {g} {{\n            args sleep\n        }}\n    }}\n}}\n"
        ),
    )
    .expect("write Caddyfile");
    let mut server = Server::start(&config, &[CALL_LOG]);
    let port = server.port;
    let nap = std::thread::spawn(move || try_get(port, "/nap"));
    let sleep = std::thread::spawn(move || try_get(port, "/sleep"));
    assert!(
        server.wait_for_logs(2, |l| is_msg(l, "call started")),
        "both calls should start; log:\n{}",
        server.logs().join("\n")
    );

    server.signal("TERM");
    assert!(server.wait_for_log(|l| is_msg(l, "draining")).is_some());
    // The listener is closed: a new connection is refused.
    let refused = (0..500).any(|_| {
        let r = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        if !r {
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    });
    assert!(refused, "the listener should close on SIGTERM");

    // Within the grace period: finishes normally.
    let nap = nap.join().expect("nap thread").expect("nap response");
    assert_eq!((nap.status, nap.text().contains("rested")), (200, true));
    // Past it: the sandbox is interrupted and the client told so.
    let sleep = sleep.join().expect("sleep thread").expect("sleep response");
    assert_eq!(sleep.status, 503, "{}", sleep.text());
    assert_eq!(sleep.header("retry-after"), Some("1"));

    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("gojinn should exit after draining");
    assert!(status.success(), "exit status {status:?}");
    let logs = server.logs().join("\n");
    assert!(logs.contains("grace period over"), "{logs}");
    assert!(logs.contains("\"message\":\"stopped\""), "{logs}");
}

#[test]
fn sigint_on_an_idle_server_exits_zero() {
    let mut server = Server::with_routes("sigint-idle", "    respond \"hi\"");
    assert_eq!(server.get("/").status, 200);
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("gojinn should exit");
    assert!(status.success(), "exit status {status:?}");
    assert!(!server.logs().join("\n").contains("grace period over"));
}

/// One answer seen by client `.0`: the status and which function, or an I/O error.
type Seen = (usize, Result<(u16, Option<String>), String>);

/// Sends requests from `threads` clients until `stop`, recording `(thread,
/// outcome)` in order; each client stops by itself after `max_each` requests.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, threads: usize, max_each: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..threads)
            .map(|t| {
                let (stop, seen) = (stop.clone(), seen.clone());
                std::thread::spawn(move || {
                    for _ in 0..max_each {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let outcome = try_get(port, "/")
                            .map(|r| (r.status, which_of(&r.text())))
                            .map_err(|e| e.to_string());
                        seen.lock().expect("lock").push((t, outcome));
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            handles,
        }
    }

    /// Waits (bounded) until `pred` holds for the outcomes so far.
    fn wait_until(&self, pred: impl Fn(&[Seen]) -> bool) -> bool {
        for _ in 0..3000 {
            if pred(&self.seen.lock().expect("lock")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.join().expect("client thread");
        }
        Arc::try_unwrap(self.seen)
            .expect("threads are done")
            .into_inner()
            .expect("lock")
    }
}

fn count_of(seen: &[Seen], which: &str) -> usize {
    seen.iter()
        .filter(|(_, o)| matches!(o, Ok((200, Some(w))) if w == which))
        .count()
}

/// Every request answered 200 by `a` or `b`, none refused, and each client saw
/// `a` only before its first `b` (the switch is atomic).
fn assert_clean_switch(seen: &[Seen]) {
    let mut switched = std::collections::HashSet::new();
    for (t, outcome) in seen {
        match outcome {
            Ok((200, Some(w))) if w == "b" => {
                switched.insert(*t);
            }
            Ok((200, Some(w))) if w == "a" => {
                assert!(!switched.contains(t), "client {t} saw `a` after `b`")
            }
            other => panic!("client {t}: unexpected outcome {other:?}"),
        }
    }
    assert!(count_of(seen, "a") > 0 && count_of(seen, "b") > 0);
}

fn write(path: &Path, text: &str) {
    // Write then rename, as editors do, so the server never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

#[test]
fn sighup_reload_under_load_loses_no_request_and_refuses_a_bad_config() {
    let dir = scratch("sighup-reload");
    let config = dir.join("Caddyfile");
    write(&config, &which_caddyfile("a"));
    let server = Server::start(&config, &[]);
    let load = Load::start(server.port, 4, 3000);
    assert!(
        load.wait_until(|s| count_of(s, "a") >= 20),
        "function a answers"
    );

    write(&config, &which_caddyfile("b"));
    server.signal("HUP");
    assert!(
        server
            .wait_for_log(|l| is_msg(l, "config reloaded"))
            .is_some(),
        "{}",
        server.logs().join("\n")
    );
    assert!(
        load.wait_until(|s| count_of(s, "b") >= 20),
        "function b answers"
    );

    // A config whose module does not exist: refused, and `b` keeps serving.
    let missing = dir.join("missing.wasm");
    write(
        &config,
        &format!(
            "{{\n    admin off\n}}\n\n:0 {{\n    gojinn {}\n}}\n",
            missing.display()
        ),
    );
    server.signal("HUP");
    let refused = server
        .wait_for_log(|l| is_msg(l, "reload refused; the previous config keeps serving"))
        .expect("bad reload refused");
    assert!(refused.contains("missing.wasm"), "{refused}");
    let before = load.seen.lock().expect("lock").len();
    assert!(load.wait_until(|s| s.len() >= before + 20));
    let seen = load.finish();
    assert_clean_switch(&seen);
    // One listener all along: the port never changed.
    let listening = server
        .logs()
        .iter()
        .filter(|l| is_msg(l, "listening"))
        .count();
    assert_eq!(listening, 1);
}

#[test]
fn watch_reloads_when_the_config_changes() {
    let dir = scratch("watch-reload");
    let config = dir.join("Caddyfile");
    write(&config, &which_caddyfile("a"));
    let server = Server::start_args(&config, &["--watch"], &[]);
    let load = Load::start(server.port, 2, 3000);
    assert!(load.wait_until(|s| count_of(s, "a") >= 10));

    write(&config, &which_caddyfile("b"));
    let line = server
        .wait_for_log(|l| is_msg(l, "config reloaded"))
        .expect("--watch reloads");
    assert!(line.contains("file change"), "{line}");
    assert!(load.wait_until(|s| count_of(s, "b") >= 10));
    assert_clean_switch(&load.finish());

    // A syntax error is refused; the running config stays.
    write(&config, ":0 {\n    gojinn\n");
    assert!(server
        .wait_for_log(|l| is_msg(l, "reload refused; the previous config keeps serving"))
        .is_some());
    let r = try_get(server.port, "/").expect("still serving");
    assert_eq!((r.status, which_of(&r.text())), (200, Some("b".to_owned())));

    // A config naming a module that is not built yet is refused, and the
    // module's folder is watched from then on: writing the module reloads.
    let module = dir.join("c.wasm");
    write(
        &config,
        &which_caddyfile("c").replace(
            &guest().display().to_string(),
            &module.display().to_string(),
        ),
    );
    assert!(server.wait_for_logs(2, |l| is_msg(
        l,
        "reload refused; the previous config keeps serving"
    )));
    std::fs::copy(guest(), dir.join("c.tmp")).expect("copy module");
    std::fs::rename(dir.join("c.tmp"), &module).expect("rename module");
    assert!(
        server.wait_for_logs(2, |l| is_msg(l, "config reloaded")),
        "{}",
        server.logs().join("\n")
    );
    let r = try_get(server.port, "/").expect("serving");
    assert_eq!((r.status, which_of(&r.text())), (200, Some("c".to_owned())));
}

/// `gojinn reload` against the admin listener of a server started with `config`.
fn gojinn_reload(config: &Path, admin: u16) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["reload", "--config"])
        .arg(config)
        .args(["--address", &format!("127.0.0.1:{admin}")])
        .output()
        .expect("run gojinn reload")
}

#[test]
fn admin_load_under_load_loses_no_request_refuses_a_bad_config_and_shows_the_new_one() {
    let dir = scratch("admin-load");
    let first = dir.join("Caddyfile");
    let globals = "admin 127.0.0.1:0";
    write(&first, &which_caddyfile_with("a", globals, ""));
    let server = Server::start(&first, &[]);
    let admin: u16 = server
        .wait_for_log(|l| is_msg(l, "admin listening"))
        .and_then(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            v["fields"]["port"].as_u64()?.try_into().ok()
        })
        .expect("admin port in the log");
    let load = Load::start(server.port, 4, 3000);
    assert!(load.wait_until(|s| count_of(s, "a") >= 20));

    // `gojinn reload` with another file: switches, and `/config` shows it.
    let second = dir.join("second.caddyfile");
    write(&second, &which_caddyfile_with("b", globals, "timeout 7s"));
    let out = gojinn_reload(&second, admin);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs().join("\n")
    );
    assert!(load.wait_until(|s| count_of(s, "b") >= 20));
    let shown = request_to(admin, "GET", "/config", &[], b"").json();
    let f = &shown["sites"][0]["routes"][0]["handle"];
    assert_eq!(f["timeout_ms"], 7000, "{shown}");
    let line = server
        .wait_for_log(|l| is_msg(l, "config reloaded"))
        .expect("reload logged");
    assert!(line.contains("POST /load"), "{line}");

    // A module that does not exist passes the local parse but not the server's
    // compile: refused with the reason, exit 1, and `b` keeps serving.
    let bad = dir.join("bad.caddyfile");
    write(
        &bad,
        &format!(
            "{{\n    {globals}\n}}\n\n:0 {{\n    gojinn {}\n}}\n",
            dir.join("missing.wasm").display()
        ),
    );
    let out = gojinn_reload(&bad, admin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("missing.wasm"),
        "{stderr}"
    );
    // A Caddyfile body straight to `/load`, with a syntax error: 400 naming the place.
    let direct = request_to(
        admin,
        "POST",
        "/load",
        &[("Content-Type", "text/caddyfile")],
        b":0 {\n    respond\n",
    );
    assert_eq!(direct.status, 400, "{}", direct.text());
    assert!(direct.text().contains("load-request:"), "{}", direct.text());
    let before = load.seen.lock().expect("lock").len();
    assert!(load.wait_until(|s| s.len() >= before + 20));
    let shown = request_to(admin, "GET", "/config", &[], b"").json();
    assert_eq!(shown["sites"][0]["routes"][0]["handle"]["timeout_ms"], 7000);
    assert_clean_switch(&load.finish());
}
