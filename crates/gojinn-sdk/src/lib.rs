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
//! The crate also builds on the host target (it is plain `std`), so its unit tests run
//! with the rest of the workspace.

mod base64;
mod request;
mod response;

pub use request::Request;
pub use response::Response;

use std::io::{Read, Write};

/// Runs one request through `handler`: reads all of stdin, parses it as a
/// [`Request`], calls `handler`, and writes the [`Response`] to stdout.
///
/// Input that is not a request object is answered with a `400` JSON error and a line
/// on stderr, without calling the handler. I/O errors cannot be reported to the
/// client (stdout is the only channel back), so they go to stderr.
pub fn run(handler: impl FnOnce(Request) -> Response) {
    let mut input = Vec::new();
    let response = match std::io::stdin().lock().read_to_end(&mut input) {
        Err(e) => {
            log(&format!("gojinn-sdk: reading stdin failed: {e}"));
            Response::error(400, "could not read the request")
        }
        Ok(_) => match serde_json::from_slice::<Request>(&input) {
            Ok(request) => handler(request),
            Err(e) => {
                log(&format!("gojinn-sdk: request is not valid JSON: {e}"));
                Response::error(400, "invalid request JSON")
            }
        },
    };
    // Drop the input before serialising: a large body would otherwise stay live
    // while the output is built, doubling the guest's peak memory.
    drop(input);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(&response.to_json())
        .and_then(|()| out.flush())
    {
        log(&format!("gojinn-sdk: writing the response failed: {e}"));
    }
}

/// Writes `line` and a newline to stderr, which the server forwards to its log.
///
/// Unlike `eprintln!` this never panics: a failed write to stderr is dropped, since
/// there is nowhere else to report it.
pub fn log(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}
