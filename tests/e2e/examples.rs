//! The shipped examples, built by `scripts/build-examples.sh` (which `scripts/test.sh`
//! runs first), served through their own Caddyfiles.

use crate::harness::{root, scratch, Server};
use std::io::Write;
use std::path::PathBuf;

fn require_built(paths: &[&str]) {
    for p in paths {
        assert!(
            root().join(p).exists(),
            "`{p}` is missing: run scripts/build-examples.sh (scripts/test.sh does)"
        );
    }
}

/// `examples/Caddyfile` with its port swapped for an ephemeral one, written next to
/// the original so relative module paths resolve the same way.
struct PortSwapped(PathBuf);

impl PortSwapped {
    /// The file, port swapped, without the routes of language examples that are
    /// not built (whose toolchain is missing here).
    fn built_only(original: &str) -> Self {
        let unbuilt: Vec<&str> = OPTIONAL
            .iter()
            .filter(|(_, module, _)| !root().join(module).exists())
            .map(|(route, _, _)| *route)
            .collect();
        PortSwapped::without(original, &unbuilt)
    }

    /// The copy leaves out the `handle PATH { … }` blocks of `dropped` (each block
    /// ends at the first `}` line at its own indentation).
    fn without(original: &str, dropped: &[&str]) -> Self {
        let src = std::fs::read_to_string(root().join(original)).expect("read Caddyfile");
        assert!(
            src.contains(":8080 {"),
            "expected a :8080 site in {original}"
        );
        let mut kept = String::new();
        let mut skipping: Option<String> = None;
        for line in src.lines() {
            if let Some(close) = &skipping {
                if line == close {
                    skipping = None;
                }
                continue;
            }
            let trimmed = line.trim_start();
            if dropped.iter().any(|p| trimmed == format!("handle {p} {{")) {
                let indent = &line[..line.len() - trimmed.len()];
                skipping = Some(format!("{indent}}}"));
                continue;
            }
            kept.push_str(line);
            kept.push('\n');
        }
        // Tests run in parallel: each copy gets its own name.
        static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = root()
            .join(original)
            .with_file_name(format!(".e2e-{}-{n}.Caddyfile", std::process::id()));
        // The admin listener's fixed default port would collide between tests
        // (and with anything else on the machine): switch it off.
        let kept = match kept.find("\n{\n") {
            Some(i)
                if kept[..i]
                    .lines()
                    .all(|l| l.trim().is_empty() || l.starts_with('#')) =>
            {
                format!("{}\n{{\n    admin off\n{}", &kept[..i], &kept[i + 3..])
            }
            _ => format!("{{\n    admin off\n}}\n{kept}"),
        };
        std::fs::write(&path, kept.replace(":8080 {", ":0 {")).expect("write copy");
        PortSwapped(path)
    }
}

impl Drop for PortSwapped {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Go, Zig and AssemblyScript routes of examples/Caddyfile, with the module each
/// serves and the message it answers with. Their toolchains may be missing (see
/// `languages`), so a module that was not built drops its route, with a SKIPPED line.
const OPTIONAL: [(&str, &str, &str); 3] = [
    ("/go/*", "examples/go-hello/go-hello.wasm", "hello from go"),
    (
        "/zig/*",
        "examples/zig-hello/zig-hello.wasm",
        "hello from zig",
    ),
    (
        "/as/*",
        "examples/as-hello/as-hello.wasm",
        "hello from assemblyscript",
    ),
];

#[test]
fn every_language_example_answers_through_examples_caddyfile() {
    require_built(&[
        "examples/rust-hello/rust-hello.wasm",
        "examples/c-hello/hello.wasm",
    ]);
    let (built, missing): (Vec<_>, Vec<_>) = OPTIONAL
        .iter()
        .partition(|(_, module, _)| root().join(module).exists());
    for (route, module, _) in &missing {
        // Past libtest's capture: a skip must show in every run.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED examples {route}: `{module}` is not built (its toolchain is missing: scripts/toolchains.sh)"
        );
    }
    let dropped: Vec<&str> = missing.iter().map(|(route, _, _)| *route).collect();
    let config = PortSwapped::without("examples/Caddyfile", &dropped);
    let stores = scratch("examples-stores");
    let env = example_env(&stores);
    let s = Server::start(&config.0, &env_refs(&env));

    for (route, _, message) in &built {
        let path = route.replace('*', "hello");
        let r = s.request("POST", &path, &[("User-Agent", "e2e")], br#"{"k":[true]}"#);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["message"], *message, "{v}");
        assert_eq!(v["user_agent"], "e2e", "{v}");
        assert_eq!(v["echo"], serde_json::json!({"k": [true]}), "{v}");
    }

    let r = s.request(
        "POST",
        "/rust/hello?name=you",
        &[("user-agent", "e2e")],
        br#"{"n":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["message"], "hello from rust");
    assert_eq!(v["path"], "/rust/hello");
    assert_eq!(v["query"], "name=you");
    assert_eq!(v["user_agent"], "e2e");
    assert_eq!(v["echo"], serde_json::json!({"n": 1}));
    s.wait_for_log(|l| l.contains("rust-hello: handled POST /rust/hello"))
        .expect("rust-hello stderr in the log");

    let r = s.request("POST", "/c/echo", &[], br#"{"x":[1,2]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["echo"], serde_json::json!({"x": [1, 2]}), "{v}");

    let r = s.get("/wat/hello");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "hello from wat");
    assert_eq!(r.header("content-type"), Some("application/json"));

    assert_eq!(s.get("/").status, 200);
    assert_eq!(s.get("/elsewhere").status, 404);
}

/// Environment that keeps examples/Caddyfile's stores (the KV file in the user data
/// directory, the notes database) inside `dir` instead of the user's home and the
/// repository.
fn example_env(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("XDG_DATA_HOME", dir.join("data").display().to_string()),
        (
            "GOJINN_NOTES_DB",
            dir.join("notes.db").display().to_string(),
        ),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn host_capability_examples_answer_through_examples_caddyfile() {
    require_built(&[
        "examples/rust-counter/rust-counter.wasm",
        "examples/rust-notes/rust-notes.wasm",
        "examples/c-log/log.wasm",
    ]);
    let config = PortSwapped::built_only("examples/Caddyfile");
    let stores = scratch("examples-host");
    let env = example_env(&stores);
    let s = Server::start(&config.0, &env_refs(&env));

    // Counter: KV across requests.
    for expected in 1..=3 {
        let r = s.get("/counter/visits");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["count"], expected);
    }
    assert_eq!(s.get("/counter/other").json()["count"], 1);
    let r = s.request("DELETE", "/counter/visits", &[], b"");
    assert_eq!(r.json()["deleted"], true);
    assert_eq!(s.get("/counter/visits").json()["count"], 1);
    assert!(stores.join("data/gojinn/kv.redb").is_file());

    // Notes: SQLite, with a value that would break a concatenated statement.
    let tricky = "it's \"quoted\"; DROP TABLE notes; --";
    let r = s.request(
        "POST",
        "/notes",
        &[("content-type", "application/json")],
        serde_json::json!({"text": tricky}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().expect("id");
    let r = s.get(&format!("/notes/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["text"], tricky);
    let r = s.get("/notes");
    assert_eq!(
        r.json()["notes"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text()
    );
    assert_eq!(
        s.request("DELETE", &format!("/notes/{id}"), &[], b"")
            .status,
        204
    );
    assert_eq!(s.get(&format!("/notes/{id}")).status, 404);
    assert_eq!(s.request("POST", "/notes", &[], b"not json").status, 400);
    assert!(stores.join("notes.db").is_file());

    // C: host_log lines in the structured log, with the route.
    let r = s.get("/c-log/");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["logged"], 3);
    let line = s
        .wait_for_log(|l| l.contains("c-log: a warning"))
        .expect("the C guest's host_log line");
    assert!(line.contains("\"level\":\"WARN\""), "{line}");
    assert!(line.contains("/c-log/*"), "{line}");
    assert!(line.contains("\\\"quotes\\\""), "quotes survive: {line}");
}

/// The Caddyfile from the Gojinn documentation, unmodified: it serves on :8080.
#[test]
fn seed_caddyfile_runs_unmodified() {
    require_built(&["examples/seed/functions/processor.wasm"]);
    let config = root().join("examples/seed/Caddyfile");
    let original = std::fs::read_to_string(&config).expect("read seed");
    assert!(
        original.contains("env API_KEY {env.SECRET_KEY}"),
        "seed must stay as documented"
    );
    let s = Server::start(&config, &[("SECRET_KEY", "s3cret")]);
    assert_eq!(s.port, 8080);
    let r = s.request("POST", "/api/process?x=1", &[], b"payload");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["processed"], true);
    assert_eq!(v["db_host"], "localhost");
    assert_eq!(v["api_key_set"], true);
    assert_eq!(v["uri"], "/api/process?x=1");
    assert!(
        !r.text().contains("s3cret"),
        "the key itself never leaves the function"
    );
    assert_eq!(s.get("/other").status, 404);
}
