//! `args host`: runs the host calls listed in the request body and answers with
//! what each returned. The `gojinn` imports are declared here by hand with
//! Gojinn's exact signatures (no SDK), as a Gojinn-style function would.
//!
//! Body: a JSON array of calls, e.g.
//! `[{"call": "kv_set", "key": "a", "value": "b"}, {"call": "kv_get", "key": "a"}]`.
//! Answer: one object per call, `{"ret": n, "out": "…", "error": "…"}`.

use serde_json::{json, Value};

#[link(wasm_import_module = "gojinn")]
extern "C" {
    // Gojinn's original functions.
    fn host_log(level: i32, ptr: *const u8, len: i32);
    fn host_kv_set(k_ptr: *const u8, k_len: i32, v_ptr: *const u8, v_len: i32);
    fn host_kv_get(k_ptr: *const u8, k_len: i32, out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_db_query(q_ptr: *const u8, q_len: i32, out_ptr: *mut u8, out_max: i32) -> i32;
    fn host_mutex_lock(k_ptr: *const u8, k_len: i32, ttl_seconds: i32) -> i32;
    fn host_mutex_unlock(k_ptr: *const u8, k_len: i32) -> i32;
    // ABI v1.
    fn host_abi_version() -> i32;
    fn host_last_error(out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_result_take(out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_kv_get_v1(k_ptr: *const u8, k_len: i32, out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_kv_set_v1(k_ptr: *const u8, k_len: i32, v_ptr: *const u8, v_len: i32) -> i32;
    fn host_kv_delete(k_ptr: *const u8, k_len: i32) -> i32;
    fn host_kv_list(p_ptr: *const u8, p_len: i32, out_ptr: *mut u8, out_max: i32) -> i64;
    fn host_db_query_v1(
        q_ptr: *const u8,
        q_len: i32,
        p_ptr: *const u8,
        p_len: i32,
        out_ptr: *mut u8,
        out_max: i32,
    ) -> i64;
    fn host_db_exec(q_ptr: *const u8, q_len: i32, p_ptr: *const u8, p_len: i32) -> i64;
    fn host_http_request(r_ptr: *const u8, r_len: i32, out_ptr: *mut u8, out_max: i32) -> i64;
}

fn s<'a>(c: &'a Value, k: &str) -> &'a str {
    c[k].as_str().unwrap_or("")
}

fn last_error() -> String {
    let mut buf = vec![0u8; 4096];
    let n = unsafe { host_last_error(buf.as_mut_ptr(), buf.len() as i32) };
    buf.truncate(n.clamp(0, 4096) as usize);
    String::from_utf8_lossy(&buf).into_owned()
}

/// One call; `max` is the output buffer size (`"max"` in the call, default 64 KiB).
fn run(c: &Value) -> Value {
    let max = c["max"].as_u64().unwrap_or(64 << 10) as usize;
    let mut out = vec![0u8; max];
    let key = s(c, "key");
    let value: Vec<u8> = match c["size"].as_u64() {
        Some(n) => vec![b'v'; n as usize],
        None => s(c, "value").as_bytes().to_vec(),
    };
    let sql = s(c, "sql");
    let request = c.get("request").map(|r| r.to_string()).unwrap_or_default();
    let params = c.get("params").map(|p| p.to_string()).unwrap_or_default();
    let (kp, kl) = (key.as_ptr(), key.len() as i32);
    let (op, ol) = (out.as_mut_ptr(), max as i32);
    let ret: i64 = unsafe {
        match s(c, "call") {
            "log" => {
                host_log(c["level"].as_i64().unwrap_or(1) as i32, value.as_ptr(), value.len() as i32);
                0
            }
            "kv_set" => {
                host_kv_set(kp, kl, value.as_ptr(), value.len() as i32);
                0
            }
            "kv_get" => host_kv_get(kp, kl, op, ol),
            "db_query" => host_db_query(sql.as_ptr(), sql.len() as i32, op, ol).into(),
            "lock" => host_mutex_lock(kp, kl, c["ttl"].as_i64().unwrap_or(1) as i32).into(),
            "unlock" => host_mutex_unlock(kp, kl).into(),
            "abi_version" => host_abi_version().into(),
            "result_take" => host_result_take(op, ol),
            "kv_get_v1" => host_kv_get_v1(kp, kl, op, ol),
            "kv_set_v1" => host_kv_set_v1(kp, kl, value.as_ptr(), value.len() as i32).into(),
            "kv_delete" => host_kv_delete(kp, kl).into(),
            "kv_list" => host_kv_list(kp, kl, op, ol),
            "db_query_v1" => host_db_query_v1(
                sql.as_ptr(),
                sql.len() as i32,
                params.as_ptr(),
                params.len() as i32,
                op,
                ol,
            ),
            "db_exec" => host_db_exec(sql.as_ptr(), sql.len() as i32, params.as_ptr(), params.len() as i32),
            "http" => host_http_request(request.as_ptr(), request.len() as i32, op, ol),
            "bad_pointer" => host_kv_get_v1(usize::MAX as *const u8, 16, op, ol),
            other => return json!({"ret": null, "error": format!("unknown call {other}")}),
        }
    };
    let written = if ret > 0 && (ret as usize) <= max { ret as usize } else { 0 };
    let text = String::from_utf8_lossy(&out[..written]).into_owned();
    let error = if ret < 0 || s(c, "call") == "kv_set" { last_error() } else { String::new() };
    json!({"ret": ret, "out": text, "error": error})
}

/// Runs every call of the request body.
pub(crate) fn main(req: &Value) -> String {
    let calls: Value = serde_json::from_str(req["body"].as_str().unwrap_or("[]")).unwrap_or(json!([]));
    let results: Vec<Value> = calls.as_array().map(|a| a.iter().map(run).collect()).unwrap_or_default();
    Value::Array(results).to_string()
}
