//! Gojinn seed function: reports the request it received and which environment
//! grants the `gojinn` directive gave it (`env DB_HOST …`, `env API_KEY …`).
//!
//! A function sees only the variables its directive grants, never the server's own
//! environment; `{env.SECRET_KEY}` in the Caddyfile is resolved by the server when
//! the config loads.

use gojinn_sdk::{log, run, Request, Response};
use serde_json::json;

fn main() {
    run(handle);
}

fn handle(req: Request) -> Response {
    let db_host = std::env::var("DB_HOST").ok();
    // Only whether the key is there: a secret must never travel back in a response
    // (or a log line).
    let api_key_set = std::env::var_os("API_KEY").is_some_and(|key| !key.is_empty());
    log(&format!(
        "processor: {} {} (trace {})",
        req.method, req.uri, req.trace_id
    ));
    Response::json(
        200,
        &json!({
            "processed": true,
            "method": req.method,
            "uri": req.uri,
            "db_host": db_host,
            "api_key_set": api_key_set,
            "body_length": req.body_bytes().len(),
        }),
    )
}
