//! The CGI/container model: one fresh native process per request.
//!
//! Each request is encoded with gojinn's own contract code, piped to a new process
//! (`fork` + `exec` through `std::process`), and the process's stdout is decoded the
//! way gojinn decodes a sandbox's. The only difference from a gojinn route is what
//! isolates the function: a process instead of a wasm instance, so the row prices
//! exactly that.

use bytes::Bytes;
use gojinn_contract::{decode_response, encode_request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::{Request, Response, StatusCode};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Sequence number behind [`trace_id`].
static NEXT_TRACE: AtomicU64 = AtomicU64::new(1);

/// Runs `program` for `req` and turns what it printed into the response.
pub(crate) async fn answer(program: &Path, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return plain(StatusCode::BAD_REQUEST, "cannot read the request body");
    };
    let uri = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    // As in gojinn (and Go), `Host` is not among the headers a function sees.
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != HOST)
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let request =
        gojinn_contract::Request::new(parts.method.as_str(), uri, headers, &body, trace_id());
    let stdin = encode_request(&request);

    // Spawning and waiting block, so they run on tokio's blocking pool, one thread
    // per request in flight (32 at the benchmark's concurrency).
    let program = PathBuf::from(program);
    let output = match tokio::task::spawn_blocking(move || run(&program, &stdin)).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            eprintln!("gojinn-bench-baseline: cannot run the cgi program: {e}");
            return plain(StatusCode::BAD_GATEWAY, "bad gateway");
        }
        Err(e) => {
            eprintln!("gojinn-bench-baseline: cgi task failed: {e}");
            return plain(StatusCode::BAD_GATEWAY, "bad gateway");
        }
    };
    if !output.status.success() {
        eprintln!("gojinn-bench-baseline: cgi program {}", output.status);
        return plain(StatusCode::BAD_GATEWAY, "bad gateway");
    }
    // stderr is the function's log; gojinn logs it, the baseline drops it.
    match decode_response(&output.stdout) {
        Ok(decoded) => to_http(decoded),
        Err(e) => {
            eprintln!("gojinn-bench-baseline: cgi program answered badly: {e}");
            plain(StatusCode::BAD_GATEWAY, "bad gateway")
        }
    }
}

/// Starts `program` with no environment (as the sandbox has none), writes `stdin`
/// and collects stdout and stderr until it exits.
fn run(program: &Path, stdin: &[u8]) -> io::Result<Output> {
    let mut child = Command::new(program)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The whole request is written before any output is read. That cannot deadlock
    // here: the benchmark's requests (bodiless GETs) are far below the 64 KiB pipe
    // buffer. A program that exits without reading stdin makes the write fail with
    // EPIPE, which is its business, so the write error is dropped and the exit
    // status and output decide.
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    child.wait_with_output()
}

fn to_http(decoded: gojinn_contract::Response) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(decoded.body)));
    *resp.status_mut() = StatusCode::from_u16(decoded.status).unwrap_or(StatusCode::OK);
    for (name, value) in decoded.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        // Framing is the server's, as in gojinn.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        resp.headers_mut().append(name, value);
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

/// A well-formed W3C traceparent. gojinn draws random ids; a counter is as good for
/// a benchmark and costs nothing next to a fork.
fn trace_id() -> String {
    let n = NEXT_TRACE.fetch_add(1, Ordering::Relaxed);
    format!("00-{:032x}-{:016x}-01", u128::from(n), n)
}
