//! rust-hello: a Gojinn function (`gojinn new --lang rust` starts new projects from
//! this file) that answers every request with a JSON greeting that echoes
//! what it received (method, path, query, user agent, body size, and the body itself
//! when it is JSON). Built for `wasm32-wasip1`; see README.md.

use gojinn_sdk::{log, run, Request, Response};
use serde_json::{json, Value};

fn main() {
    run(handle);
}

fn handle(req: Request) -> Response {
    // `ok()`: a body that is not JSON (or is empty) is echoed as null rather than
    // rejected; this endpoint accepts anything.
    let echo: Option<Value> = req.json().ok();
    let body = json!({
        "message": "hello from rust",
        "method": req.method,
        "path": req.path(),
        "query": req.query(),
        "user_agent": req.header("User-Agent"),
        "body_bytes": req.body_bytes().len(),
        "echo": echo,
    });
    log(&format!(
        "rust-hello: handled {} {}",
        req.method,
        req.path()
    ));
    Response::json(200, &body)
}
