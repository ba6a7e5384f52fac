//! One accepted connection: the TLS handshake (bounded by `read_header`), the
//! protocol (HTTP/1.1; HTTP/2 by ALPN over TLS; HTTP/2 with prior knowledge on
//! cleartext when `h2c` is enabled), request-head limits, and the two clocks that
//! hostile clients meet:
//!
//! - **read_header** (slowloris): the first request head must arrive within this
//!   time of the accept (of the handshake, on TLS), and every later head within
//!   this time of its first byte, else the connection is dropped. As in Go's
//!   `http.Server`, which Caddy uses.
//! - **idle**: a connection with no request in flight and no bytes arriving for
//!   this long is closed gracefully.
//!
//! Both are checked by the connection task on a coarse tick (a quarter of the
//! shorter one), from counters the requests and the socket bump: no timer and no
//! clock read per request. hyper's own `header_read_timeout` is off because it
//! also runs while a keep-alive connection waits for its next request, which
//! would cap `idle` at `read_header`.
//!
//! The options are read from the app current when the connection is accepted;
//! a reload applies to new connections, existing ones keep theirs.

use crate::server::{drained, respond, ConnectionGuard, Shared};
use crate::tls::ALPN_H2;
use gojinn_config::{Protocol, ServerOptions};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

/// Protocols and limits of a connection, fixed when it is accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnOptions {
    /// Offer HTTP/2 by ALPN on TLS ports.
    pub(crate) h2: bool,
    /// Accept HTTP/2 with prior knowledge on cleartext ports.
    h2c: bool,
    read_header: Duration,
    idle: Duration,
    /// hyper's read buffer cap (HTTP/1.1) and header list size (HTTP/2).
    max_header_size: usize,
    max_headers: usize,
}

impl ConnOptions {
    pub(crate) fn new(o: &ServerOptions) -> ConnOptions {
        ConnOptions {
            h2: o.speaks(Protocol::H2),
            h2c: o.speaks(Protocol::H2c),
            read_header: Duration::from_millis(o.read_header_timeout_ms),
            idle: Duration::from_millis(o.idle_timeout_ms),
            // Validated by gojinn-config: 8 KiB (hyper's minimum) to 16 MiB.
            max_header_size: usize::try_from(o.max_header_size).unwrap_or(usize::MAX),
            max_headers: usize::try_from(o.max_headers).unwrap_or(usize::MAX),
        }
    }

    /// How often the connection task looks at its counters.
    fn tick(&self) -> Duration {
        (self.read_header.min(self.idle) / 4).max(Duration::from_millis(1))
    }
}

/// What a connection's requests, its socket and its task share.
struct Activity {
    shared: Arc<Shared>,
    /// Requests in the service now.
    busy: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// Reads that returned data so far.
    reads: AtomicU64,
    /// A request came over HTTP/2: the head clock does not apply (frames, not a
    /// byte-by-byte head; pings are not a slow head).
    h2: AtomicBool,
}

/// Decrements `busy` when a request ends, however it ends.
struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Relaxed);
    }
}

/// How the connection speaks HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    H1,
    H2,
    /// HTTP/1.1 or HTTP/2 prior knowledge, told apart by the first bytes.
    Either,
}

/// Who is at the other end of a connection: put in every request's extensions
/// for the matchers and placeholders that need it (`remote_ip`, `protocol`,
/// `{remote_host}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    /// The peer's address.
    pub(crate) addr: std::net::SocketAddr,
    /// The connection is TLS.
    pub(crate) tls: bool,
}

/// Serves one accepted connection on `port` until it closes.
pub(crate) async fn serve(
    guard: ConnectionGuard,
    port: u16,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    opts: ConnOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let shared = guard.0.clone();
    let mut peer = Peer {
        addr: peer,
        tls: false,
    };
    match tls {
        None => {
            let proto = if opts.h2c { Proto::Either } else { Proto::H1 };
            run(shared, port, stream, peer, opts, proto).await;
        }
        Some(config) => {
            let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
            let stream = tokio::select! {
                r = tokio::time::timeout(opts.read_header, accept) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("tls handshake timed out");
                        return;
                    }
                },
                () = drained(shared.drain.subscribe()) => return,
            };
            let proto = match stream.get_ref().1.alpn_protocol() {
                Some(ALPN_H2) => Proto::H2,
                // A TLS-ALPN-01 validation: the handshake was the answer.
                Some(gojinn_certs::ACME_TLS_ALPN) => return,
                _ => Proto::H1,
            };
            peer.tls = true;
            run(shared, port, stream, peer, opts, proto).await;
        }
    }
    drop(guard);
}

async fn run<S>(
    shared: Arc<Shared>,
    port: u16,
    stream: S,
    peer: Peer,
    opts: ConnOptions,
    proto: Proto,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let drain = drained(shared.drain.subscribe());
    let activity = Arc::new(Activity {
        shared,
        busy: AtomicUsize::new(0),
        started: AtomicU64::new(0),
        reads: AtomicU64::new(0),
        h2: AtomicBool::new(proto == Proto::H2),
    });
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let a = activity.clone();
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let a = a.clone();
        req.extensions_mut().insert(peer);
        // Who is asking, for `reverse_proxy` (`X-Forwarded-For`, `-Proto`).
        req.extensions_mut().insert(gojinn_proxy::ClientInfo {
            remote: peer.addr,
            tls: peer.tls,
        });
        async move {
            a.started.fetch_add(1, Relaxed);
            a.busy.fetch_add(1, Relaxed);
            let _busy = Busy(&a);
            if req.version() == http::Version::HTTP_2 && !a.h2.load(Relaxed) {
                a.h2.store(true, Relaxed);
            }
            Ok::<_, std::convert::Infallible>(respond(&a.shared, port, req).await)
        }
    });
    match proto {
        // `serve_connection_with_upgrades` of hyper-util's auto builder reads
        // the version from the first bytes whatever `http1_only` says, so an
        // HTTP/1-only connection is served by hyper's HTTP/1 builder itself.
        Proto::H1 => {
            let mut h1 = hyper::server::conn::http1::Builder::new();
            h1.header_read_timeout(None)
                .max_headers(opts.max_headers)
                .max_buf_size(opts.max_header_size);
            let conn = h1.serve_connection(io, service).with_upgrades();
            drive(conn, drain, &opts, &activity, proto).await;
        }
        Proto::H2 | Proto::Either => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .header_read_timeout(None)
                .max_headers(opts.max_headers)
                .max_buf_size(opts.max_header_size);
            builder
                .http2()
                .max_header_list_size(u32::try_from(opts.max_header_size).unwrap_or(u32::MAX));
            if proto == Proto::H2 {
                let builder = builder.http2_only();
                let conn = builder.serve_connection(io, service);
                drive(conn, drain, &opts, &activity, proto).await;
            } else {
                // With upgrades on HTTP/1: `reverse_proxy` passes WebSocket and
                // other `Upgrade` requests through.
                let conn = builder.serve_connection_with_upgrades(io, service);
                drive(conn, drain, &opts, &activity, proto).await;
            }
        }
    }
}

/// A served connection that can be asked to finish its in-flight requests and
/// close (hyper's `graceful_shutdown`, which each connection type has on its own).
trait Graceful: Future {
    fn graceful(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Graceful for auto::Connection<'_, I, S, TokioExecutor>
where
    S: hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<B>,
    >,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Graceful for auto::UpgradeableConnection<'_, I, S, TokioExecutor>
where
    S: hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<B>,
    >,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serves `conn` until it ends, closing it when the server drains or the
/// connection idles, dropping it when a request head is too slow.
async fn drive<C, E>(
    conn: C,
    drain: impl Future<Output = ()>,
    opts: &ConnOptions,
    activity: &Activity,
    proto: Proto,
) where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    tokio::pin!(conn);
    tokio::pin!(drain);

    let every = opts.tick();
    // HTTP/2 by ALPN has no head to wait for; everything else does at once.
    let mut clocks = Clocks::new(opts, every, proto != Proto::H2);
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut closing = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            () = &mut drain, if !closing => {
                closing = true;
                conn.as_mut().graceful();
            }
            _ = ticker.tick() => {
                let seen = Seen {
                    busy: activity.busy.load(Relaxed),
                    started: activity.started.load(Relaxed),
                    reads: activity.reads.load(Relaxed),
                    h2: activity.h2.load(Relaxed),
                };
                match clocks.tick(seen) {
                    Verdict::Keep => {}
                    Verdict::SlowHead => {
                        tracing::debug!("request head not received within read_header; connection dropped");
                        return;
                    }
                    Verdict::Idle if !closing => {
                        tracing::debug!("connection idle; closing it");
                        closing = true;
                        conn.as_mut().graceful();
                    }
                    Verdict::Idle => {}
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The counters of a connection as one tick saw them.
#[derive(Debug, Clone, Copy)]
struct Seen {
    busy: usize,
    started: u64,
    reads: u64,
    h2: bool,
}

/// What a tick decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    /// Bytes of a head arrived more than `read_header` ago and no request started.
    SlowHead,
    /// Nothing in flight and nothing arrived for `idle`.
    Idle,
}

/// The `read_header` and `idle` clocks, counted in ticks.
struct Clocks {
    idle_limit: u32,
    head_limit: u32,
    /// `started` and `reads` at the previous tick.
    last: (u64, u64),
    /// Ticks with nothing in flight and nothing read.
    quiet: u32,
    /// Ticks since bytes of a head that has not become a request were seen.
    head: Option<u32>,
}

impl Clocks {
    /// `first_head`: the head clock runs from now (a fresh HTTP/1 connection).
    fn new(opts: &ConnOptions, every: Duration, first_head: bool) -> Clocks {
        let ticks = |d: Duration| {
            u32::try_from(d.as_millis().div_ceil(every.as_millis().max(1))).unwrap_or(u32::MAX)
        };
        Clocks {
            idle_limit: ticks(opts.idle).max(1),
            head_limit: ticks(opts.read_header).max(1),
            last: (0, 0),
            quiet: 0,
            head: first_head.then_some(0),
        }
    }

    fn tick(&mut self, now: Seen) -> Verdict {
        let (last_started, last_reads) = self.last;
        self.last = (now.started, now.reads);
        if now.busy > 0 || now.started != last_started {
            self.quiet = 0;
            self.head = None;
        } else if now.reads != last_reads {
            self.quiet = 0;
            // HTTP/2 sends frames, not a head byte by byte; its pings are not slow heads.
            if !now.h2 {
                self.head.get_or_insert(0);
            }
        } else {
            self.quiet = self.quiet.saturating_add(1);
        }
        match &mut self.head {
            Some(h) => {
                *h += 1;
                if *h > self.head_limit {
                    Verdict::SlowHead
                } else {
                    Verdict::Keep
                }
            }
            None if self.quiet >= self.idle_limit && now.busy == 0 => Verdict::Idle,
            None => Verdict::Keep,
        }
    }
}

/// A stream that counts the reads that brought data, for the head clock.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.reads.fetch_add(1, Relaxed);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks(read_header_ms: u64, idle_ms: u64) -> (Clocks, Duration) {
        let opts = ConnOptions::new(&ServerOptions {
            read_header_timeout_ms: read_header_ms,
            idle_timeout_ms: idle_ms,
            ..ServerOptions::default()
        });
        let every = opts.tick();
        (Clocks::new(&opts, every, false), every)
    }

    fn seen(busy: usize, started: u64, reads: u64) -> Seen {
        Seen {
            busy,
            started,
            reads,
            h2: false,
        }
    }

    #[test]
    fn the_tick_is_a_quarter_of_the_shorter_clock() {
        assert_eq!(clocks(1_000, 60_000).1, Duration::from_millis(250));
        assert_eq!(clocks(10_000, 2_000).1, Duration::from_millis(500));
        assert_eq!(clocks(1, 1).1, Duration::from_millis(1));
    }

    #[test]
    fn a_quiet_connection_is_idle_after_idle() {
        let (mut c, _) = clocks(10_000, 1_000); // tick 250 ms: idle after 4 quiet ticks
        let verdicts: Vec<Verdict> = (0..4).map(|_| c.tick(seen(0, 0, 0))).collect();
        assert_eq!(
            verdicts,
            [Verdict::Keep, Verdict::Keep, Verdict::Keep, Verdict::Idle]
        );
    }

    #[test]
    fn a_request_in_flight_is_never_idle_and_activity_restarts_the_clock() {
        let (mut c, _) = clocks(10_000, 1_000);
        for _ in 0..20 {
            assert_eq!(c.tick(seen(1, 1, 1)), Verdict::Keep);
        }
        // Finished: idle counts from here.
        for _ in 0..3 {
            assert_eq!(c.tick(seen(0, 1, 1)), Verdict::Keep);
        }
        assert_eq!(c.tick(seen(0, 2, 2)), Verdict::Keep); // a quick request between ticks
        for _ in 0..3 {
            assert_eq!(c.tick(seen(0, 2, 2)), Verdict::Keep);
        }
        assert_eq!(c.tick(seen(0, 2, 2)), Verdict::Idle);
    }

    #[test]
    fn bytes_without_a_request_are_a_slow_head_after_read_header() {
        let (mut c, _) = clocks(1_000, 60_000); // tick 250 ms: 4 ticks of read_header
                                                // Bytes keep trickling in (or stop): either way, no request starts.
        let verdicts: Vec<Verdict> = (1..=5).map(|r| c.tick(seen(0, 0, r.min(3)))).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Keep,
                Verdict::Keep,
                Verdict::Keep,
                Verdict::Keep,
                Verdict::SlowHead
            ]
        );
    }

    #[test]
    fn a_head_that_becomes_a_request_stops_the_head_clock() {
        let (mut c, _) = clocks(1_000, 60_000);
        assert_eq!(c.tick(seen(0, 0, 1)), Verdict::Keep);
        assert_eq!(c.tick(seen(0, 0, 2)), Verdict::Keep);
        assert_eq!(c.tick(seen(1, 1, 3)), Verdict::Keep);
        for _ in 0..10 {
            assert_eq!(c.tick(seen(0, 1, 3)), Verdict::Keep);
        }
    }

    #[test]
    fn a_fresh_connection_must_send_its_first_head_within_read_header() {
        let opts = ConnOptions::new(&ServerOptions {
            read_header_timeout_ms: 1_000,
            ..ServerOptions::default()
        });
        let mut silent = Clocks::new(&opts, opts.tick(), true);
        let verdicts: Vec<Verdict> = (0..5).map(|_| silent.tick(seen(0, 0, 0))).collect();
        assert_eq!(verdicts.last(), Some(&Verdict::SlowHead), "{verdicts:?}");
        let mut prompt = Clocks::new(&opts, opts.tick(), true);
        assert_eq!(prompt.tick(seen(1, 1, 1)), Verdict::Keep);
        for _ in 0..10 {
            assert_eq!(prompt.tick(seen(0, 1, 1)), Verdict::Keep);
        }
    }

    #[test]
    fn http2_frames_do_not_start_the_head_clock() {
        let (mut c, _) = clocks(1_000, 60_000);
        for r in 1..20 {
            let mut s = seen(0, 0, r);
            s.h2 = true;
            assert_eq!(c.tick(s), Verdict::Keep);
        }
    }
}
