//! The `cgi-fork` row's function: `examples/rust-hello` compiled for the host
//! instead of `wasm32-wasip1`.
//!
//! The handler is a copy of the example's, on the same SDK, so a native process does
//! exactly the work a sandbox does: read the request JSON on stdin, parse it with
//! serde_json, build the greeting, write the response JSON on stdout and one log line
//! on stderr. Keep the two in step; `bench/run.sh` checks that both answer the same
//! bytes before it measures anything.

use gojinn_sdk::{log, run, Request, Response};
use serde_json::{json, Value};

fn main() {
    run(handle);
}

fn handle(req: Request) -> Response {
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
