//! Listeners, the accept loop, zero-downtime reload and graceful shutdown.
//!
//! A [`Server`] serves whatever [`App`] is current. The app sits behind an
//! [`ArcSwap`]: every request takes the app that is current when it starts and
//! keeps it (an `Arc`) until it ends, so a reload swaps the pointer and
//! in-flight requests finish on the old functions while new requests see the
//! new ones. Listeners are keyed by configured port: a reload keeps the socket
//! of every port that is still configured (no refused connection), binds the
//! new ones before anything switches, and closes the removed ones after.
//! Each accepted connection is handed to `conn` with the protocols, limits and
//! TLS config of the app current at that moment (a reload may change a kept
//! port's certificate, or switch it between TLS and cleartext).
//!
//! Shutdown: stop accepting, ask every connection to finish its current request
//! and close, wait up to the grace period, then interrupt the sandboxes still
//! running (their requests get a 503) and give those answers a moment to leave.

use crate::app::{App, Services};
use crate::error::{failure_response, Failure};
use crate::handler::Body;
use arc_swap::ArcSwap;
use gojinn_config::ServerOptions;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// After the grace period, how long the 503 answers of interrupted requests
/// get to be written before the server stops waiting for their connections.
pub const HARD_STOP_FLUSH: Duration = Duration::from_secs(2);

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
    bind_ports(app.ports.keys().copied()).await
}

async fn bind_ports(ports: impl IntoIterator<Item = u16>) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for port in ports {
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

/// Serves `listeners` until `shutdown` resolves, then shuts down gracefully with
/// the default grace period.
pub async fn serve(
    app: Arc<App>,
    services: Services,
    listeners: Vec<BoundListener>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let server = Server::new(app, services, listeners, &ServerOptions::default());
    shutdown.await;
    server.shutdown().await;
}

/// A running server: the current app, its listeners and its connections.
pub struct Server {
    shared: Arc<Shared>,
    /// What every config this server loads shares.
    services: Services,
    /// Configured port → its accept loop. Locked only by reload and shutdown,
    /// which it also serialises.
    listeners: tokio::sync::Mutex<BTreeMap<u16, Listening>>,
}

struct Listening {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub(crate) app: ArcSwap<App>,
    grace_ms: AtomicU64,
    /// Flipped to `true` once: connections finish their request and close.
    pub(crate) drain: watch::Sender<bool>,
    /// Set when the grace period is over; with `interrupt`, ends running requests.
    stopped: AtomicBool,
    interrupt: Notify,
    connections: AtomicUsize,
    /// Signalled when `connections` drops to zero.
    idle: Notify,
}

/// Counts a connection while it lives.
pub(crate) struct ConnectionGuard(pub(crate) Arc<Shared>);

impl ConnectionGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard(shared)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Server {
    /// Starts accept loops on `listeners` (bound by [`bind`] for `app`, loaded
    /// with `services`, which every reload will load with too). Must be called
    /// inside a tokio runtime.
    pub fn new(
        app: Arc<App>,
        services: Services,
        listeners: Vec<BoundListener>,
        options: &ServerOptions,
    ) -> Server {
        let shared = Arc::new(Shared {
            app: ArcSwap::new(app),
            grace_ms: AtomicU64::new(options.grace_period_ms),
            drain: watch::Sender::new(false),
            stopped: AtomicBool::new(false),
            interrupt: Notify::new(),
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let mut map = BTreeMap::new();
        for bound in listeners {
            map.insert(bound.configured_port, start_listening(&shared, bound));
        }
        if let Some(queues) = &services.jobs {
            queues.run(Arc::new(crate::jobs::AppExecutor::new(&shared)));
            shared.app.load().start_crons(Some(queues));
        }
        Server {
            shared,
            services,
            listeners: tokio::sync::Mutex::new(map),
        }
    }

    /// The job queues, when the server runs jobs.
    pub fn jobs(&self) -> Option<&Arc<crate::jobs::JobQueues>> {
        self.services.jobs.as_ref()
    }

    /// The state of every managed certificate (admin `/config`).
    pub fn certificates(&self) -> Vec<gojinn_certs::CertStatus> {
        self.services
            .certs
            .as_ref()
            .map(gojinn_certs::Manager::status)
            .unwrap_or_default()
    }

    /// The bound address of each configured port.
    pub async fn local_addrs(&self) -> Vec<(u16, SocketAddr)> {
        let listeners = self.listeners.lock().await;
        listeners.iter().map(|(p, l)| (*p, l.local_addr)).collect()
    }

    /// Loads `config` (every module compiled, on a blocking thread) with the
    /// server's services and switches to it with [`reload`](Self::reload); then
    /// closes the stores no config holds any more. On any error nothing changes
    /// and the errors are returned, one message each.
    pub async fn reload_config(&self, config: gojinn_config::Config) -> Result<(), Vec<String>> {
        let options = config.server.clone();
        let services = self.services.clone();
        let app = tokio::task::spawn_blocking(move || App::load(&config, &services))
            .await
            .map_err(|e| vec![format!("loading the config failed: {e}")])??;
        // Certificates kept by the new config stay; new names load from storage.
        app.start_certificates().await;
        self.reload(app, &options).await?;
        let app = self.shared.app.load();
        app.retain_certificates(self.services.certs.as_ref());
        app.start_crons(self.services.jobs.as_deref());
        let open = self.services.stores.prune();
        tracing::debug!(target: "gojinn::reload", ?open, "stores kept after the switch");
        Ok(())
    }

    /// Switches to `app` with `options`. New ports are bound first: if one
    /// cannot be bound, nothing changes and the error is returned. Ports still
    /// configured keep their socket; removed ones stop accepting.
    pub async fn reload(&self, app: App, options: &ServerOptions) -> Result<(), Vec<String>> {
        let mut listeners = self.listeners.lock().await;
        if *self.shared.drain.borrow() {
            return Err(vec!["the server is shutting down".to_owned()]);
        }
        let added: Vec<u16> = app
            .ports
            .keys()
            .copied()
            .filter(|p| !listeners.contains_key(p))
            .collect();
        let bound = bind_ports(added).await.map_err(|e| vec![e.to_string()])?;
        let app = Arc::new(app);
        let old = self.shared.app.swap(app.clone());
        self.shared
            .grace_ms
            .store(options.grace_period_ms, Ordering::Relaxed);
        for b in bound {
            listeners.insert(b.configured_port, start_listening(&self.shared, b));
        }
        listeners.retain(|port, l| {
            let keep = app.ports.contains_key(port);
            if !keep {
                tracing::info!(addr = %l.local_addr, "listener closed");
                l.task.abort();
            }
            keep
        });
        // In-flight requests hold their own `Arc`; the old functions go when
        // the last of them ends.
        drop(old);
        Ok(())
    }

    /// Stops accepting, lets in-flight requests finish within the grace period,
    /// then interrupts the rest (503) and returns once their connections closed
    /// (or [`HARD_STOP_FLUSH`] passed).
    pub async fn shutdown(&self) {
        let mut listeners = self.listeners.lock().await;
        for (_, l) in std::mem::take(&mut *listeners) {
            l.task.abort();
        }
        let shared = &self.shared;
        shared.drain.send_replace(true);
        let grace = Duration::from_millis(shared.grace_ms.load(Ordering::Relaxed));
        let open = shared.connections.load(Ordering::Acquire);
        tracing::info!(
            connections = open,
            grace_ms = grace.as_millis() as u64,
            "draining"
        );
        // Jobs stop being claimed; running ones get the same grace period as
        // requests, beside them.
        let jobs = async {
            if let Some(queues) = &self.services.jobs {
                queues.shutdown(grace).await;
            }
        };
        let (closed, ()) = tokio::join!(tokio::time::timeout(grace, all_closed(shared)), jobs);
        if closed.is_err() {
            tracing::warn!(
                connections = shared.connections.load(Ordering::Acquire),
                "grace period over; interrupting the requests still running"
            );
            shared.stopped.store(true, Ordering::Release);
            shared.interrupt.notify_waiters();
            let _ = tokio::time::timeout(HARD_STOP_FLUSH, all_closed(shared)).await;
        }
    }
}

/// Resolves when no connection is open.
async fn all_closed(shared: &Shared) {
    loop {
        // Created before the check, so a close in between still wakes it.
        let idle = shared.idle.notified();
        if shared.connections.load(Ordering::Acquire) == 0 {
            return;
        }
        idle.await;
    }
}

fn start_listening(shared: &Arc<Shared>, bound: BoundListener) -> Listening {
    let local_addr = bound.local_addr;
    tracing::info!(addr = %local_addr, port = local_addr.port(), "listening");
    Listening {
        local_addr,
        task: tokio::spawn(accept_loop(shared.clone(), bound)),
    }
}

async fn accept_loop(shared: Arc<Shared>, bound: BoundListener) {
    let port = bound.configured_port;
    loop {
        let (stream, peer) = match bound.listener.accept().await {
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
        let guard = ConnectionGuard::new(shared.clone());
        // The app current now decides this connection's protocols, limits and
        // certificate (a reload may have switched the port to or from TLS).
        let (opts, tls) = {
            let app = shared.app.load();
            (app.conn, app.tls.get(&port).cloned())
        };
        tokio::spawn(crate::conn::serve(guard, port, stream, peer, opts, tls));
    }
}

/// Resolves once the server drains (at once if it already does).
pub(crate) async fn drained(mut drain: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means "stop".
    let _ = drain.wait_for(|d| *d).await.is_ok();
}

/// One request on the app current when it starts; interrupted (503) when the
/// grace period of a shutdown runs out first.
pub(crate) async fn respond(
    shared: &Shared,
    port: u16,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    // Created before the flag is read, so an interrupt between the two is not
    // missed. Polled only if the request does not finish on its first poll, so a
    // fast request never registers with the `Notify`.
    let interrupted = shared.interrupt.notified();
    if shared.stopped.load(Ordering::Acquire) {
        return failure_response(&Failure::ShuttingDown);
    }
    let app = shared.app.load_full();
    tokio::select! {
        biased;
        resp = crate::handler::dispatch(&app, port, req, &shared.stopped) => resp,
        () = interrupted => {
            tracing::warn!(target: "gojinn::fault", fault = "shutdown", "request interrupted: grace period over");
            failure_response(&Failure::ShuttingDown)
        }
    }
}
