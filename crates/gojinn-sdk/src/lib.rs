//! Guest-side SDK for Gojinn functions written in Rust.
//!
//! A Gojinn function is a WASI preview-1 command module (`wasm32-wasip1`) that the
//! server starts once per HTTP request. It reads one JSON request object on stdin,
//! writes one JSON response object on stdout, and may log free-form lines on stderr.
//! This crate owns the guest's side of that exchange: the typed [`Request`] and
//! [`Response`], and [`run`], which does the reading, parsing and writing around a
//! handler. It leaves routing, limits and the HTTP connection to the server, and does
//! not depend on the server's own contract crate, so a guest pulls in nothing but
//! `serde` and `serde_json`.
//!
//! ```no_run
//! use gojinn_sdk::{run, Response};
//!
//! fn main() {
//!     run(|req| Response::text(200, format!("you asked for {}", req.path())));
//! }
//! ```
//!
//! Binary bodies: when the request body is not valid UTF-8 the server passes a lossy
//! copy in [`Request::body`] and the exact bytes in [`Request::body_base64`];
//! [`Request::body_bytes`] hides that split. A handler returns bytes with
//! [`Response::binary`].
//!
//! Host capabilities, each granted per route in the Caddyfile and denied otherwise:
//! [`kv`] (key-value store and locks), [`db`] (SQL with bound parameters), [`http`]
//! (outbound requests) and [`log`] (structured log lines). Every call returns a
//! `Result` with an [`Error`] that says what went wrong and suggests a status.
//!
//! ```no_run
//! use gojinn_sdk::{kv, run, Response};
//!
//! fn main() {
//!     run(|_req| match kv::get_string("greeting") {
//!         Ok(Some(text)) => Response::text(200, text),
//!         Ok(None) => Response::text(404, "no greeting yet"),
//!         Err(e) => Response::error(e.status(), e.message()),
//!     });
//! }
//! ```
//!
//! The crate also builds on the host target (it is plain `std`; the host calls answer
//! [`Error::Unavailable`] there), so its unit tests run with the rest of the
//! workspace.

mod base64;
pub mod db;
mod error;
pub mod http;
pub mod kv;
#[path = "hostlog.rs"]
pub mod log;
mod request;
mod response;
mod sys;

pub use error::{code, Error};
pub use request::Request;
pub use response::Response;

use std::io::{Read, Write};

/// Stdin buffer reserved before the first read: large enough for a request with a
/// few headers and a small body, small next to the sandbox's first memory page.
const INITIAL_INPUT_CAPACITY: usize = 4 << 10;

/// Runs one request through `handler`: reads all of stdin, parses it as a
/// [`Request`], calls `handler`, and writes the [`Response`] to stdout.
///
/// Input that is not a request object is answered with a `400` JSON error and a line
/// on stderr, without calling the handler. I/O errors cannot be reported to the
/// client (stdout is the only channel back), so they go to stderr.
pub fn run(handler: impl FnOnce(Request) -> Response) {
    let response = match read_request() {
        Ok(request) => handler(request),
        Err(rejection) => rejection,
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(&response.to_json())
        .and_then(|()| out.flush())
    {
        log(&format!("gojinn-sdk: writing the response failed: {e}"));
    }
}

/// Reads and parses stdin, or says which 400 to send instead. The raw input is
/// dropped on return, before the handler runs, so a large body is not held twice
/// (raw and parsed) for the whole call.
fn read_request() -> Result<Request, Response> {
    // Start with room for a typical request so that `read_to_end` fills it with one
    // `fd_read` and learns of the end with a second, instead of growing from a
    // small probe read; every WASI call is a trip out of the sandbox.
    let mut input = Vec::with_capacity(INITIAL_INPUT_CAPACITY);
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        log(&format!("gojinn-sdk: reading stdin failed: {e}"));
        return Err(Response::error(400, "could not read the request"));
    }
    serde_json::from_slice(&input).map_err(|e| {
        log(&format!("gojinn-sdk: request is not valid JSON: {e}"));
        Response::error(400, "invalid request JSON")
    })
}

/// Writes `line` and a newline to stderr, which the server forwards to its log.
///
/// Unlike `eprintln!` this never panics: a failed write to stderr is dropped, since
/// there is nowhere else to report it.
pub fn log(line: &str) {
    // Stderr is unbuffered: join the line and its newline first so that the line
    // costs one `fd_write`, and so that the server never sees half a line.
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&buf);
}
