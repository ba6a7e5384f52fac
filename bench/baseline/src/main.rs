//! The benchmark's reference servers, on the same hyper/tokio stack as gojinn.
//!
//! ```text
//! gojinn-bench-baseline PORT               every request gets HELLO_JSON (the `baseline` row)
//! gojinn-bench-baseline --cgi PATH PORT    every request runs PATH once (the `cgi-fork` row)
//! ```
//!
//! Binds `127.0.0.1:PORT` (`0` picks a free port) and prints the bound port alone on
//! one stdout line. Runs until killed.
//!
//! The static mode is the ceiling the gojinn rows are compared with: the least a
//! hyper HTTP/1.1 server can do per request, with the runtime flavour and socket
//! options gojinn uses, so the ratio isolates what gojinn adds (routing, the
//! sandbox, logging). The CGI mode is described in [`cgi`].

mod cgi;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What `examples/rust-hello` answers to wrk's default request (`GET /rust/hello`,
/// only a `Host` header), byte for byte. `bench/run.sh` checks that the gojinn
/// rows still answer exactly this before it measures them.
const HELLO_JSON: &[u8] = br#"{"body_bytes":0,"echo":null,"message":"hello from rust","method":"GET","path":"/rust/hello","query":"","user_agent":null}"#;

/// Pause after a failed `accept` (out of file descriptors and the like), so the
/// loop backs off instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How each request is answered.
enum Mode {
    /// [`HELLO_JSON`] from memory.
    Static,
    /// A fresh process of this program per request.
    Cgi(PathBuf),
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gojinn-bench-baseline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<(Mode, u16)> {
    const USAGE: &str = "usage: gojinn-bench-baseline [--cgi PROGRAM] PORT";
    let mut mode = Mode::Static;
    let mut port = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cgi" => match args.next() {
                Some(path) => mode = Mode::Cgi(PathBuf::from(path)),
                None => bail!("`--cgi` needs a program path\n{USAGE}"),
            },
            _ if port.is_none() => {
                port = Some(
                    arg.parse::<u16>()
                        .with_context(|| format!("bad port `{arg}`\n{USAGE}"))?,
                );
            }
            _ => bail!("unexpected argument `{arg}`\n{USAGE}"),
        }
    }
    let Some(port) = port else {
        bail!("missing PORT\n{USAGE}");
    };
    if let Mode::Cgi(path) = &mode {
        if !path.is_file() {
            bail!("cgi program `{}` is not a file", path.display());
        }
    }
    Ok((mode, port))
}

fn run((mode, port): (Mode, u16)) -> anyhow::Result<()> {
    // The same runtime gojinn's `run` builds: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(Arc::new(mode), port))
}

async fn serve(mode: Arc<Mode>, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("cannot bind 127.0.0.1:{port}"))?;
    let bound = listener.local_addr().context("no local address")?.port();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{bound}")
        .and_then(|()| out.flush())
        .context("cannot print the port")?;
    drop(out);

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                eprintln!("gojinn-bench-baseline: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // As gojinn does: small responses go out without waiting for Nagle.
        let _ = stream.set_nodelay(true);
        let mode = mode.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let mode = mode.clone();
                async move { Ok::<_, Infallible>(answer(&mode, req).await) }
            });
            // A client that resets its connection (wrk at the end of a run) is not
            // worth reporting.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(mode: &Mode, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match mode {
        Mode::Static => {
            let mut resp = Response::new(Full::new(Bytes::from_static(HELLO_JSON)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Mode::Cgi(program) => cgi::answer(program, req).await,
    }
}
