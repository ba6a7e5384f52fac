//! {{name}}: a Gojinn function (made by `gojinn new`): answers every request with a JSON greeting that echoes
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
        "{{name}}: handled {} {}",
        req.method,
        req.path()
    ));
    // The same event through the host's `host_log`: a structured line in the server's
    // log with the level, route and trace id.
    log::info("{{name}}: answered 200");
    Response::json(200, &body)
}
