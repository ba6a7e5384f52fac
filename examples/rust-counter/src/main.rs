//! Gojinn example function: counts visits per path in the route's KV store.
//!
//! `GET /counter/<name>` increments and returns the count of `<name>`;
//! `DELETE /counter/<name>` resets it. A lock keeps two concurrent requests from
//! both reading the same old value. Needs `permissions { kv_read counter:*;
//! kv_write counter:* lock:* }` (see examples/Caddyfile).

use gojinn_sdk::{kv, log, run, Error, Request, Response};
use serde_json::json;
use std::time::Duration;

fn main() {
    run(|req| handle(&req).unwrap_or_else(|e| Response::error(e.status(), e.message())));
}

fn handle(req: &Request) -> Result<Response, Error> {
    let name = req.path().rsplit('/').next().unwrap_or("").to_owned();
    if name.is_empty() {
        return Ok(Response::error(400, "name a counter: /counter/<name>"));
    }
    let key = format!("counter:{name}");
    if req.method == "DELETE" {
        let existed = kv::delete(&key)?;
        return Ok(Response::json(200, &json!({"counter": name, "deleted": existed})));
    }
    let lock = format!("lock:{name}");
    // A short lease; if this request died holding it, the TTL frees it.
    let mut tries = 0;
    while !kv::lock(&lock, Duration::from_secs(2))? {
        tries += 1;
        if tries > 200 {
            return Ok(Response::error(503, "counter is busy"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let count = kv::get_string(&key)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let stored = kv::set(&key, count.to_string());
    kv::unlock(&lock)?;
    stored?;
    gojinn_sdk::log::info(&format!("counter {name} is now {count}"));
    log(&format!("rust-counter: {name} = {count}"));
    Ok(Response::json(200, &json!({"counter": name, "count": count})))
}
