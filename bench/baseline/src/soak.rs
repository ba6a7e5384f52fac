//! Soak test: mixed traffic against a real `gojinn run` for a long while, with a
//! config reload every 30 s, reporting what a production operator would check.
//!
//! ```text
//! gojinn-soak --gojinn PATH --guest TEST_GUEST.wasm --hello RUST_HELLO.wasm
//!             [--duration SECS] [--clients N] [--reload-every SECS]
//! ```
//!
//! `scripts/soak.sh` builds what it needs and runs this for 10 minutes. Routes,
//! and the only status each may answer:
//!
//! | route | function | expected |
//! |---|---|---|
//! | `/ok` | the Rust hello example | 200 |
//! | `/fault` | the test guest's `panic` mode | 502 |
//! | `/slow` | the test guest's `nap` mode (1.5 s) | 200 |
//! | `/swap` | a WAT module answering `A` or `B`, swapped by every reload | 200 |
//!
//! Anything else (a 503, a 504, a wrong body) counts as unexpected; a failed
//! connection or a response that never came counts as a connection error. RSS
//! and open file descriptors of the server are sampled at every reload; the
//! "start" figures are taken after the first reload, once pools and caches are
//! warm.

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request deadline on the client side: far above any route's own.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    gojinn: PathBuf,
    guest: PathBuf,
    hello: PathBuf,
    duration: Duration,
    clients: usize,
    reload_every: Duration,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    unexpected: AtomicU64,
    conn_errors: AtomicU64,
    swap_a: AtomicU64,
    swap_b: AtomicU64,
}

fn main() -> ExitCode {
    match parse_args().and_then(run) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gojinn-soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn parse_args() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let (mut gojinn, mut guest, mut hello) = (None, None, None);
    let mut duration = Duration::from_secs(600);
    let mut clients = 16;
    let mut reload_every = Duration::from_secs(30);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--gojinn" => gojinn = Some(PathBuf::from(value()?)),
            "--guest" => guest = Some(PathBuf::from(value()?)),
            "--hello" => hello = Some(PathBuf::from(value()?)),
            "--duration" => duration = Duration::from_secs(value()?.parse()?),
            "--clients" => clients = value()?.parse()?,
            "--reload-every" => reload_every = Duration::from_secs(value()?.parse()?),
            other => bail!("unknown flag `{other}`"),
        }
    }
    // The config is written elsewhere, so relative paths must not stay relative.
    let absolute = |p: Option<PathBuf>, flag: &str| -> anyhow::Result<PathBuf> {
        let p = p.with_context(|| format!("{flag} is required"))?;
        std::fs::canonicalize(&p).with_context(|| format!("{flag} {}", p.display()))
    };
    Ok(Options {
        gojinn: absolute(gojinn, "--gojinn")?,
        guest: absolute(guest, "--guest")?,
        hello: absolute(hello, "--hello")?,
        duration,
        clients,
        reload_every,
    })
}

fn wat_answering(word: &str) -> String {
    let body = format!(r#"{{"status":200,"body":"{word}"}}"#);
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        body.replace('"', "\\22"),
        body.len()
    )
}

fn write_config(dir: &Path, o: &Options, port: u16, swap: &str) -> anyhow::Result<()> {
    let caddyfile = format!(
        "{{\n    admin off\n}}\n:{port} {{\n\
         handle /ok {{\n    gojinn {hello}\n}}\n\
         handle /fault {{\n    gojinn {guest} {{\n        args panic\n    }}\n}}\n\
         handle /slow {{\n    gojinn {guest} {{\n        args nap\n        pool_size 256\n    }}\n}}\n\
         handle /swap {{\n    gojinn ./{swap}.wat\n}}\n}}\n",
        hello = o.hello.display(),
        guest = o.guest.display(),
    );
    // Write beside and rename, so a reload never reads half a file.
    let tmp = dir.join("Caddyfile.tmp");
    std::fs::write(&tmp, caddyfile)?;
    std::fs::rename(&tmp, dir.join("Caddyfile"))?;
    Ok(())
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("0.0.0.0:0")?
        .local_addr()?
        .port())
}

fn run(o: Options) -> anyhow::Result<bool> {
    let dir = std::env::temp_dir().join(format!("gojinn-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("a.wat"), wat_answering("A"))?;
    std::fs::write(dir.join("b.wat"), wat_answering("B"))?;
    let port = free_port()?;
    write_config(&dir, &o, port, "a")?;
    let child = Command::new(&o.gojinn)
        .arg("run")
        .arg("--config")
        .arg(dir.join("Caddyfile"))
        .env("GOJINN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", o.gojinn.display()))?;
    let mut server = KillOnDrop(child);
    let pid = server.0.id();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(&client, &base, &mut server.0).await?;

        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..o.clients {
            workers.push(tokio::spawn(worker(
                i,
                client.clone(),
                base.clone(),
                counters.clone(),
                stop.clone(),
            )));
        }

        let started = Instant::now();
        let mut baseline: Option<(u64, usize)> = None;
        let mut swap = "a";
        let mut reloads = 0u32;
        println!(
            "{:>6} {:>10} {:>10} {:>8} {:>9} {:>5}",
            "t_s", "served", "unexpected", "conn_err", "rss_kib", "fds"
        );
        while started.elapsed() < o.duration {
            tokio::time::sleep(
                o.reload_every
                    .min(o.duration.saturating_sub(started.elapsed())),
            )
            .await;
            let (rss, fds) = (rss_kib(pid), open_fds(pid));
            println!(
                "{:>6} {:>10} {:>10} {:>8} {:>9} {:>5}",
                started.elapsed().as_secs(),
                counters.served.load(Ordering::Relaxed),
                counters.unexpected.load(Ordering::Relaxed),
                counters.conn_errors.load(Ordering::Relaxed),
                rss,
                fds
            );
            baseline.get_or_insert((rss, fds));
            if started.elapsed() < o.duration {
                swap = if swap == "a" { "b" } else { "a" };
                write_config(&dir, &o, port, swap)?;
                let status = Command::new("kill")
                    .args(["-s", "HUP", &pid.to_string()])
                    .status()?;
                if !status.success() {
                    bail!("cannot send SIGHUP to the server");
                }
                reloads += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await?;
        }
        let (rss_end, fds_end) = (rss_kib(pid), open_fds(pid));
        let (rss_start, fds_start) = baseline.unwrap_or((rss_end, fds_end));
        let served = counters.served.load(Ordering::Relaxed);
        let unexpected = counters.unexpected.load(Ordering::Relaxed);
        let conn_errors = counters.conn_errors.load(Ordering::Relaxed);
        let growth_mib = (rss_end as f64 - rss_start as f64) / 1024.0;
        println!();
        println!("duration_s={}", o.duration.as_secs());
        println!("reloads={reloads}");
        println!("requests_served={served}");
        println!(
            "swap_answers=A:{} B:{}",
            counters.swap_a.load(Ordering::Relaxed),
            counters.swap_b.load(Ordering::Relaxed)
        );
        println!("unexpected_statuses={unexpected}");
        println!("connection_errors={conn_errors}");
        println!("rss_kib_start={rss_start} rss_kib_end={rss_end} growth_mib={growth_mib:.1}");
        println!("fds_start={fds_start} fds_end={fds_end}");
        let _ = std::fs::remove_dir_all(&dir);
        Ok(unexpected == 0 && conn_errors == 0 && growth_mib < 10.0)
    })
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

async fn wait_until_up(client: &HttpClient, base: &str, server: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.try_wait()? {
            bail!("the server exited before answering ({status})");
        }
        if let Ok(resp) = client.get(format!("{base}/ok").parse()?).await {
            if resp.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the server did not answer /ok within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn worker(
    seed: usize,
    client: HttpClient,
    base: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    // A fixed mix: 70 % ok, 15 % fault, 10 % swap, 5 % slow.
    const MIX: [&str; 20] = [
        "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok", "/ok",
        "/ok", "/fault", "/fault", "/fault", "/swap", "/swap", "/slow",
    ];
    let mut i = seed;
    while !stop.load(Ordering::Relaxed) {
        let path = MIX[i % MIX.len()];
        i = i.wrapping_mul(31).wrapping_add(7);
        let Ok(uri) = format!("{base}{path}").parse::<hyper::Uri>() else {
            return;
        };
        let result = tokio::time::timeout(CLIENT_TIMEOUT, async {
            let resp = client.get(uri).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, body))
        })
        .await;
        let Ok(Ok((status, body))) = result else {
            counters.conn_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let expected = match path {
            "/fault" => status == 502,
            "/swap" => {
                match &body[..] {
                    b"A" => counters.swap_a.fetch_add(1, Ordering::Relaxed),
                    b"B" => counters.swap_b.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                status == 200 && (&body[..] == b"A" || &body[..] == b"B")
            }
            _ => status == 200,
        };
        if expected {
            counters.served.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.unexpected.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "unexpected: {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}
