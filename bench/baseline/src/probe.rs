//! Helpers for `bench/run.sh`, for what shell tools measure too coarsely.
//!
//! ```text
//! gojinn-bench-probe free-port
//!     prints a TCP port that was free on every interface a moment ago
//! gojinn-bench-probe cold-start URL -- COMMAND [ARGS...]
//!     starts COMMAND, requests URL in a tight loop until it answers 200, then prints
//!     `first_response_ms=F idle_rss_kib=N` on one line and kills COMMAND
//! ```
//!
//! `cold-start` times from just before the spawn to the first complete 200 response,
//! so the figure covers process start, config load, module compilation, binding and
//! the first request's sandbox. Polling a closed port costs a refused `connect`
//! (a few µs), so the loop adds at most [`POLL_INTERVAL`] to the figure. `URL` is
//! plain `http://HOST:PORT/PATH`; the request is a bodiless `GET` with
//! `Connection: close`.

use anyhow::{bail, Context};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Pause between two connection attempts while the server is not up yet.
const POLL_INTERVAL: Duration = Duration::from_micros(200);

/// How long the server may take to answer its first 200 before the probe gives up.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Wait between the first response and the RSS reading, so that what the first
/// request set in motion (lazily started threads, the log writer) has settled and
/// the reading is the idle figure.
const IDLE_SETTLE: Duration = Duration::from_millis(500);

/// Read timeout of one probe request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("free-port") if args.len() == 1 => free_port(),
        Some("cold-start") => cold_start(&args[1..]),
        _ => Err(anyhow::anyhow!(
            "usage: gojinn-bench-probe free-port | cold-start URL -- COMMAND [ARGS...]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gojinn-bench-probe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn free_port() -> anyhow::Result<()> {
    // gojinn listens on all interfaces, so probe all of them rather than loopback.
    let listener = TcpListener::bind("0.0.0.0:0").context("cannot bind a probe socket")?;
    println!("{}", listener.local_addr()?.port());
    Ok(())
}

/// Kills the server however the probe ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cold_start(args: &[String]) -> anyhow::Result<()> {
    let (url, command) = match args {
        [url, dashes, command @ ..] if dashes == "--" && !command.is_empty() => (url, command),
        _ => bail!("usage: gojinn-bench-probe cold-start URL -- COMMAND [ARGS...]"),
    };
    let (addr, path) = parse_url(url)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");

    let started = Instant::now();
    let mut child = KillOnDrop(
        Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start `{}`", command[0]))?,
    );
    let first_response = loop {
        if let Some(status) = child.0.try_wait()? {
            bail!("`{}` exited before answering: {status}", command[0]);
        }
        if started.elapsed() > START_DEADLINE {
            bail!("no response from {url} within {START_DEADLINE:?}");
        }
        match get_status(addr, &request) {
            Ok(200) => break started.elapsed(),
            Ok(status) => bail!("{url} answered {status}, not 200"),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => std::thread::sleep(POLL_INTERVAL),
            Err(e) => return Err(e).with_context(|| format!("cannot request {url}")),
        }
    };

    std::thread::sleep(IDLE_SETTLE);
    let rss = vm_rss_kib(child.0.id())?;
    println!(
        "first_response_ms={:.1} idle_rss_kib={rss}",
        first_response.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Splits `http://HOST:PORT/PATH` into `HOST:PORT` and `/PATH`.
fn parse_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("url `{url}` does not start with http://"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// Sends `request` and returns the status code of the answer.
fn get_status(addr: &str, request: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    // "HTTP/1.1 200 OK": the code is the second word of the first line.
    std::str::from_utf8(&answer)
        .ok()
        .and_then(|text| text.split_ascii_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no HTTP status line"))
}

/// The resident set of process `pid`, from `/proc/PID/status`.
fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}
