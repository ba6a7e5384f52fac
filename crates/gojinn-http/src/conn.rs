//! One accepted connection: the TLS handshake (bounded by `read_header`), the
//! protocol (HTTP/1.1; HTTP/2 by ALPN over TLS; HTTP/2 with prior knowledge on
//! cleartext when `h2c` is enabled), request-head limits, and the two clocks that
//! hostile clients meet:
//!
//! - **read_header** (slowloris): once bytes of a request head arrived, the whole
//!   head must arrive within this time, else the connection is dropped.
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

/// Serves one accepted connection on `port` until it closes.
pub(crate) async fn serve(
    guard: ConnectionGuard,
    port: u16,
    stream: TcpStream,
    opts: ConnOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let shared = guard.0.clone();
    match tls {
        None => {
            let proto = if opts.h2c { Proto::Either } else { Proto::H1 };
            run(shared, port, stream, opts, proto).await;
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
            let proto = if stream.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
                Proto::H2
            } else {
                Proto::H1
            };
            run(shared, port, stream, opts, proto).await;
        }
    }
    drop(guard);
}

async fn run<S>(shared: Arc<Shared>, port: u16, stream: S, opts: ConnOptions, proto: Proto)
where
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
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let a = a.clone();
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .header_read_timeout(None)
        .max_headers(opts.max_headers)
        .max_buf_size(opts.max_header_size);
    builder
        .http2()
        .max_header_list_size(u32::try_from(opts.max_header_size).unwrap_or(u32::MAX));
    let builder = match proto {
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_only(),
        Proto::Either => builder,
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::pin!(drain);

    let every = opts.tick();
    let ticks = |d: Duration| {
        u32::try_from(d.as_millis().div_ceil(every.as_millis().max(1))).unwrap_or(u32::MAX)
    };
    let (idle_limit, head_limit) = (ticks(opts.idle), ticks(opts.read_header));
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut last_started, mut last_reads) = (0, 0);
    let mut quiet: u32 = 0;
    let mut head: Option<u32> = None;
    let mut closing = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            () = &mut drain, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick() => {
                let started = activity.started.load(Relaxed);
                let reads = activity.reads.load(Relaxed);
                let busy = activity.busy.load(Relaxed);
                if busy > 0 || started != last_started {
                    quiet = 0;
                    head = None;
                } else if reads != last_reads {
                    quiet = 0;
                    if !activity.h2.load(Relaxed) {
                        head.get_or_insert(0);
                    }
                } else {
                    quiet = quiet.saturating_add(1);
                }
                (last_started, last_reads) = (started, reads);
                if let Some(h) = &mut head {
                    *h += 1;
                    if *h > head_limit {
                        tracing::debug!("request head not received in time; connection dropped");
                        return;
                    }
                } else if quiet >= idle_limit && busy == 0 && !closing {
                    tracing::debug!("connection idle; closing it");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
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
