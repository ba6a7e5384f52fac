//! Listeners and the accept loop.

use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Time a client has to send its request headers (slowloris guard).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Maximum number of request headers.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Read buffer cap, which bounds the size of the request head.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 64 << 10;

/// A bound socket for one configured port.
pub struct BoundListener {
    /// The port as configured (`0` for "any free port").
    pub configured_port: u16,
    /// The address actually bound.
    pub local_addr: SocketAddr,
    listener: TcpListener,
}

/// Binds one socket per configured port, on all interfaces (IPv6 dual-stack when
/// available, else IPv4), as Caddy does. Call after [`App::load`] succeeded.
pub async fn bind(app: &App) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for &port in app.ports.keys() {
        let listener = match TcpListener::bind(("::", port)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot bind port {port}: {e}"))
            })?,
        };
        out.push(BoundListener {
            configured_port: port,
            local_addr: listener.local_addr()?,
            listener,
        });
    }
    Ok(out)
}

/// Serves `listeners` until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listeners: Vec<BoundListener>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for bound in listeners {
        let app = app.clone();
        tasks.spawn(accept_loop(app, bound));
    }
    tokio::select! {
        _ = shutdown => {}
        _ = async { while tasks.join_next().await.is_some() {} } => {}
    }
}

async fn accept_loop(app: Arc<App>, bound: BoundListener) {
    let port = bound.configured_port;
    tracing::info!(addr = %bound.local_addr, port = bound.local_addr.port(), "listening");
    loop {
        let (stream, _peer) = match bound.listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small JSON responses: send them without waiting for Nagle.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        crate::handler::dispatch(&app, port, req).await,
                    )
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(DEFAULT_HEADER_READ_TIMEOUT)
                .max_headers(DEFAULT_MAX_HEADERS)
                .max_buf_size(DEFAULT_MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
