//! Test guest for the end-to-end suite. `argv[1]` selects the behaviour.

use serde_json::{json, Value};
use std::io::{Read, Write};

mod host;
mod job;

fn read_request() -> Value {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    serde_json::from_str(&input).expect("request json")
}

fn respond(status: u16, body: &str) {
    let out = json!({"status": status, "headers": {"Content-Type": ["application/json"]}, "body": body});
    println!("{out}");
}

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: the stack-overflow fixture
fn recurse(n: u64) -> u64 {
    let buf = [n; 64];
    std::hint::black_box(&buf);
    recurse(n + 1) + buf[3]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("echo");
    match mode {
        // The request exactly as the guest saw it, as the response body.
        "echo" => {
            let req = read_request();
            eprintln!("echo guest: {} {}", req["method"], req["uri"]);
            respond(200, &req.to_string());
        }
        // Repeated and multi-valued response headers, array and string forms.
        "headers" => {
            let _ = read_request();
            println!(
                "{}",
                json!({"status": 201, "headers": {"X-Multi": ["a", "b"], "X-Single": "one"}, "body": "ok"})
            );
        }
        "env" => {
            let _ = read_request();
            let vars: Vec<(String, String)> = std::env::vars().collect();
            respond(200, &json!({"env": vars, "args": args}).to_string());
        }
        // Filesystem and network probes: everything must be denied.
        "sandbox" => {
            let _ = read_request();
            let fs_root = std::fs::read_dir("/").map(|_| "allowed").unwrap_or("denied");
            let fs_cwd = std::fs::read_dir(".").map(|_| "allowed").unwrap_or("denied");
            let passwd = std::fs::read("/etc/passwd").map(|_| "allowed").unwrap_or("denied");
            let create = std::fs::write("gojinn-probe", b"x").map(|_| "allowed").unwrap_or("denied");
            let net = std::net::TcpStream::connect("127.0.0.1:80").map(|_| "allowed").unwrap_or("denied");
            respond(
                200,
                &json!({"fs_root": fs_root, "fs_cwd": fs_cwd, "passwd": passwd, "create": create, "net": net}).to_string(),
            );
        }
        // Blocked in a host call (WASI poll_oneoff) well past any test deadline.
        "sleep" => {
            let _ = read_request();
            std::thread::sleep(std::time::Duration::from_secs(30));
            respond(200, "woke");
        }
        // Sleeps briefly, then answers: holds a pool slot for a while.
        "nap" => {
            let _ = read_request();
            std::thread::sleep(std::time::Duration::from_millis(1500));
            respond(200, "rested");
        }
        // Answers at once when the query asks for `quick`, else spins until the
        // deadline: one route whose pool slot a test can hold and then probe.
        "spin-unless-quick" => {
            let req = read_request();
            if req["uri"].as_str().is_some_and(|u| u.contains("quick")) {
                respond(200, "quick");
                return;
            }
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        // Filesystem probe for mounts: the body lists paths to read, write and
        // list; the answer says, per path, what happened.
        "fs" => {
            let req = read_request();
            let plan: Value =
                serde_json::from_str(req["body"].as_str().unwrap_or("{}")).unwrap_or_default();
            let paths = |key: &str| -> Vec<String> {
                plan[key]
                    .as_array()
                    .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            let outcome = |r: std::io::Result<String>| match r {
                Ok(v) => format!("ok:{v}"),
                Err(e) => format!("err:{:?}", e.kind()),
            };
            let mut out = serde_json::Map::new();
            for p in paths("read") {
                out.insert(format!("read {p}"), outcome(std::fs::read_to_string(&p)).into());
            }
            for p in paths("write") {
                let r = std::fs::write(&p, b"written by the guest").map(|()| String::new());
                out.insert(format!("write {p}"), outcome(r).into());
            }
            for p in paths("list") {
                let r = std::fs::read_dir(&p).map(|d| {
                    let mut names: Vec<String> = d
                        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect();
                    names.sort();
                    names.join(",")
                });
                out.insert(format!("list {p}"), outcome(r).into());
            }
            respond(200, &Value::Object(out).to_string());
        }
        "spin" => {
            let _ = read_request();
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "panic" => panic!("test guest panics on purpose"),
        "exit" => std::process::exit(3),
        "stack" => {
            std::hint::black_box(recurse(0));
        }
        "grow" => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut b = vec![0u8; 8 << 20];
                b[0] = 1;
                blocks.push(std::hint::black_box(b));
            }
        }
        "flood" => {
            let chunk = vec![b'x'; 1 << 20];
            let mut out = std::io::stdout().lock();
            for _ in 0..64 {
                if out.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        "stderr-flood" => {
            let _ = read_request();
            let line = "y".repeat(1000);
            for _ in 0..10_000 {
                eprintln!("{line}");
            }
            respond(200, "still fine");
        }
        // A body of `size` bytes from the query string (`?size=N`).
        "big" => {
            let req = read_request();
            let uri = req["uri"].as_str().unwrap_or("");
            let size: usize = uri
                .split("size=")
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(4 << 20);
            respond(200, &"z".repeat(size));
        }
        // Returns the request body's length and a checksum, for big uploads.
        "measure" => {
            let req = read_request();
            let body = req["body"].as_str().unwrap_or("");
            let sum: u64 = body.bytes().map(u64::from).sum();
            respond(200, &json!({"len": body.len(), "sum": sum}).to_string());
        }
        // Returns the exact request bytes (body_base64 when present) as binary.
        "binary" => {
            let req = read_request();
            let out = match req.get("body_base64") {
                Some(b64) => json!({"status": 200, "body_base64": b64}),
                None => json!({"status": 200, "body": req["body"]}),
            };
            println!("{out}");
        }
        // A response object with text after it: starts with `{` but is not one
        // JSON object, a broken response (text *before* it is plain output).
        "text-after" => {
            respond(200, "x");
            println!("hello after");
        }
        "status-string" => println!("{}", json!({"status": "200", "body": "x"})),
        "status-range" => println!("{}", json!({"status": 700, "body": "x"})),
        "header-number" => println!("{}", json!({"headers": {"X-N": 5}, "body": "x"})),
        "empty" => {}
        "host" => {
            let req = read_request();
            respond(200, &host::main(&req));
        }
        "job" => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).expect("stdin");
            respond(200, &job::main(&input).to_string());
        }
        "go-style" => {
            // Go's json.Encoder: a trailing newline and default status.
            print!("{}\n", json!({"body": "go"}));
        }
        other => respond(500, &format!("unknown mode {other}")),
    }
}
