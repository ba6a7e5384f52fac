//! `args job`: what the job tests run. The input is a job's payload (a cron
//! event, what `host_enqueue` was given, or an asynchronous request, whose
//! body is the payload); its `do` says what to do:
//! - `mark` (the default): sets KV key `key` (a cron event: `cron:<scheduled_at>`)
//!   and, if it was set already, `dup:<key>` too — so a test counts runs and
//!   runs twice;
//! - `enqueue`: queues `module` with `payload`, `count` times (`key` in the
//!   payload gets `:<i>` appended per copy); answers the return values;
//! - `flaky`: fails (exit 1) on its first two runs for `key`, then marks;
//! - `fail`: always fails;
//! - `sleep`: sleeps `ms`, then marks.

use serde_json::{json, Value};

#[link(wasm_import_module = "gojinn")]
extern "C" {
    fn host_enqueue(f_ptr: *const u8, f_len: i32, p_ptr: *const u8, p_len: i32) -> i32;
    fn host_kv_get_v1(k_ptr: *const u8, k_len: i32, out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_kv_set_v1(k_ptr: *const u8, k_len: i32, v_ptr: *const u8, v_len: i32) -> i32;
}

fn kv_get(key: &str) -> Option<String> {
    let mut out = vec![0u8; 256];
    let n = unsafe { host_kv_get_v1(key.as_ptr(), key.len() as i32, out.as_mut_ptr(), 256) };
    (n >= 0).then(|| {
        out.truncate(n as usize);
        String::from_utf8_lossy(&out).into_owned()
    })
}

fn kv_set(key: &str, value: &str) {
    let r = unsafe { host_kv_set_v1(key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32) };
    assert_eq!(r, 0, "kv_set {key} failed");
}

fn mark(key: &str) -> Value {
    if kv_get(key).is_some() {
        kv_set(&format!("dup:{key}"), "1");
    }
    kv_set(key, "1");
    json!({ "marked": key })
}

pub(crate) fn main(input: &str) -> Value {
    let v: Value = serde_json::from_str(input).unwrap_or(Value::Null);
    // An asynchronous request carries the payload as its body.
    let p = if v.get("method").is_some() {
        serde_json::from_str(v["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
    } else {
        v
    };
    let key = match (p["key"].as_str(), p["event_type"].as_str()) {
        (Some(k), _) => k.to_owned(),
        (None, Some("cron")) => format!("cron:{}", p["scheduled_at"].as_str().unwrap_or("")),
        _ => "unnamed".to_owned(),
    };
    match p["do"].as_str().unwrap_or("mark") {
        "enqueue" => {
            let module = p["module"].as_str().unwrap_or("");
            let count = p["count"].as_u64().unwrap_or(1);
            let rets: Vec<i32> = (0..count)
                .map(|i| {
                    let mut payload = p["payload"].clone();
                    if count > 1 {
                        let k = payload["key"].as_str().unwrap_or("k").to_owned();
                        payload["key"] = json!(format!("{k}:{i}"));
                    }
                    let payload = payload.to_string();
                    unsafe {
                        host_enqueue(module.as_ptr(), module.len() as i32, payload.as_ptr(), payload.len() as i32)
                    }
                })
                .collect();
            json!({ "rets": rets })
        }
        "flaky" => {
            let runs_key = format!("runs:{key}");
            let runs: u32 = kv_get(&runs_key).and_then(|r| r.parse().ok()).unwrap_or(0);
            kv_set(&runs_key, &(runs + 1).to_string());
            if runs < 2 {
                eprintln!("flaky run {runs} fails");
                std::process::exit(1);
            }
            mark(&key)
        }
        "fail" => {
            eprintln!("this job always fails");
            std::process::exit(1);
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(p["ms"].as_u64().unwrap_or(0)));
            mark(&key)
        }
        _ => mark(&key),
    }
}
