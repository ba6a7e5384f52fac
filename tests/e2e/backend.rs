//! Upstream servers for the `reverse_proxy` tests, run inside the test process:
//! a small hyper server that says who it is and echoes what it was sent, can be
//! told to fail its health check, and can be stopped and started again on the
//! same port; and raw TCP upstreams that misbehave (hang, reset, answer
//! garbage, close mid-body).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// The runtime the backends run on, shared by every test.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("backend runtime")
    })
}

/// Bytes of one frame of a generated download.
const CHUNK: usize = 64 << 10;

/// What a backend's handlers share.
struct State {
    name: String,
    healthy: AtomicBool,
    /// Requests served other than health checks.
    hits: AtomicUsize,
    /// Health checks answered.
    checks: AtomicUsize,
    /// Bytes of request bodies received by `/sink`.
    received: AtomicU64,
}

/// A hyper upstream on `127.0.0.1`. Routes:
/// - `/health`: 200, or 503 once told to be unhealthy;
/// - `/sink`: reads the request body and answers its length;
/// - `/blob?N`: a body of `N` bytes, generated in frames, no content type;
/// - `/text?N`: `N` bytes of `text/plain`;
/// - `/pre-encoded`: a body that says it is gzip already;
/// - anything else: `name`, the request line, `version: HTTP/…`, then the
///   headers, one per line.
pub(crate) struct Backend {
    pub(crate) port: u16,
    state: Arc<State>,
    /// Serves TLS (HTTP/2 or HTTP/1.1 by ALPN) when set.
    tls: Option<Arc<rustls::ServerConfig>>,
    tasks: Mutex<Option<JoinSet<()>>>,
}

impl Backend {
    pub(crate) fn start(name: &str) -> Backend {
        Backend::start_with(name, None)
    }

    /// A backend serving TLS with the PEM certificate chain and key given.
    pub(crate) fn start_tls(name: &str, cert: &std::path::Path, key: &std::path::Path) -> Backend {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("cert file")
            .collect::<Result<Vec<_>, _>>()
            .expect("cert pem");
        let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Backend::start_with(name, Some(Arc::new(config)))
    }

    fn start_with(name: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Backend {
        let mut b = Backend {
            port: 0,
            state: Arc::new(State {
                name: name.to_owned(),
                healthy: AtomicBool::new(true),
                hits: AtomicUsize::new(0),
                checks: AtomicUsize::new(0),
                received: AtomicU64::new(0),
            }),
            tasks: Mutex::new(None),
            tls,
        };
        b.port = b.listen(0);
        b
    }

    /// Binds `port` (0: any) and serves; returns the bound port.
    fn listen(&self, port: u16) -> u16 {
        let listener = runtime()
            .block_on(TcpListener::bind(("127.0.0.1", port)))
            .expect("bind backend");
        let port = listener.local_addr().expect("addr").port();
        let state = self.state.clone();
        let mut tasks = JoinSet::new();
        let _guard = runtime().enter();
        tasks.spawn(accept(listener, state, self.tls.clone()));
        *self.tasks.lock().expect("tasks") = Some(tasks);
        port
    }

    /// Stops listening and drops every connection, as a killed process would.
    pub(crate) fn stop(&self) {
        if let Some(mut tasks) = self.tasks.lock().expect("tasks").take() {
            tasks.abort_all();
            runtime().block_on(async { while tasks.join_next().await.is_some() {} });
        }
    }

    /// Serves again on the same port.
    pub(crate) fn restart(&self) {
        self.listen(self.port);
    }

    pub(crate) fn set_healthy(&self, up: bool) {
        self.state.healthy.store(up, Ordering::SeqCst);
    }

    pub(crate) fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn checks(&self) -> usize {
        self.state.checks.load(Ordering::SeqCst)
    }

    pub(crate) fn received(&self) -> u64 {
        self.state.received.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>, tls: Option<Arc<rustls::ServerConfig>>) {
    // Connections live in this task's set: aborting the task drops them all.
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = match tls {
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
                Some(config) => {
                    let Ok(stream) = tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                    else {
                        return;
                    };
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
            };
        });
        while conns.try_join_next().is_some() {}
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/health" {
        state.checks.fetch_add(1, Ordering::SeqCst);
        let status = if state.healthy.load(Ordering::SeqCst) {
            200
        } else {
            503
        };
        let mut resp = Response::new(full("health\n"));
        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
        return Ok(resp);
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    if path == "/sink" {
        let mut body = req.into_body();
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => n += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => break,
            }
        }
        state.received.fetch_add(n, Ordering::SeqCst);
        return Ok(Response::new(full(n.to_string())));
    }
    if path == "/blob" {
        let total: usize = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
        let body = Generated {
            left: total,
            chunk: Bytes::from(vec![b'x'; CHUNK]),
        };
        return Ok(Response::new(body.boxed()));
    }
    if path == "/text" {
        let n: usize = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(0);
        return Ok(with_headers(
            full(text_of(n)),
            &[("content-type", "text/plain; charset=utf-8")],
        ));
    }
    if path == "/pre-encoded" {
        return Ok(with_headers(
            full(vec![b'e'; 4096]),
            &[("content-type", "text/plain"), ("content-encoding", "gzip")],
        ));
    }
    if path == "/ws" {
        return Ok(websocket(req, state.name.clone()));
    }
    let mut text = format!(
        "{}\n{} {}\n",
        state.name,
        req.method(),
        req.uri().path_and_query().map_or("/", |pq| pq.as_str())
    );
    text.push_str(&format!("version: {:?}\n", req.version()));
    for (k, v) in req.headers() {
        text.push_str(&format!(
            "{}: {}\n",
            k,
            String::from_utf8_lossy(v.as_bytes())
        ));
    }
    let mut resp = with_headers(full(text), &[("server", "test-backend")]);
    if let Ok(name) = hyper::header::HeaderValue::from_str(&state.name) {
        resp.headers_mut().insert("x-backend", name);
    }
    Ok(resp)
}

/// A 200 with `body` and the `headers` given.
fn with_headers(body: Body, headers: &[(&'static str, &'static str)]) -> Response<Body> {
    let mut resp = Response::new(body);
    for (name, value) in headers {
        resp.headers_mut()
            .insert(*name, hyper::header::HeaderValue::from_static(value));
    }
    resp
}

/// `n` bytes of compressible text (a numbered line over and over).
pub(crate) fn text_of(n: usize) -> String {
    let mut s = String::with_capacity(n + 32);
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!("line {i} of the text\n"));
        i += 1;
    }
    s.truncate(n);
    s
}

/// `total` bytes in frames of [`CHUNK`], made as they are polled: the
/// backend never holds the whole body either.
struct Generated {
    left: usize,
    chunk: Bytes,
}

impl hyper::body::Body for Generated {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len());
        self.left -= n;
        let data = self.chunk.slice(..n);
        std::task::Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left as u64)
    }
}

/// The WebSocket handshake's answer; once upgraded, every message comes back
/// prefixed with the backend's name (`a: hello`).
fn websocket(mut req: Request<Incoming>, name: String) -> Response<Body> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role, Message};
    let Some(key) = req.headers().get("sec-websocket-key") else {
        let mut resp = Response::new(full("not a websocket request"));
        *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
        return resp;
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            let reply = match msg {
                Message::Text(t) => Message::text(format!("{name}: {}", t.as_str())),
                Message::Binary(b) => Message::binary(b),
                Message::Close(_) => break,
                _ => continue,
            };
            if ws.send(reply).await.is_err() {
                break;
            }
        }
    });
    let mut resp = with_headers(
        full(""),
        &[("connection", "upgrade"), ("upgrade", "websocket")],
    );
    *resp.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    if let Ok(v) = hyper::header::HeaderValue::from_str(&accept) {
        resp.headers_mut().insert("sec-websocket-accept", v);
    }
    resp
}

/// A raw TCP upstream that accepts connections and does `behaviour` on each.
pub(crate) struct RawUpstream {
    pub(crate) port: u16,
    task: tokio::task::JoinHandle<()>,
}

/// How a [`RawUpstream`] misbehaves.
#[derive(Clone, Copy)]
pub(crate) enum Misbehave {
    /// Reads the request, never answers.
    Hang,
    /// Closes the connection as soon as the request arrives.
    Reset,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Promises 1000 bytes, sends 10, closes.
    CloseMidBody,
}

impl RawUpstream {
    pub(crate) fn start(behaviour: Misbehave) -> RawUpstream {
        let listener = runtime()
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .expect("bind raw upstream");
        let port = listener.local_addr().expect("addr").port();
        let task = runtime().spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match behaviour {
                        Misbehave::Hang => {
                            // Held open until the proxy gives up and closes it.
                            let _ = s.read(&mut buf).await;
                        }
                        Misbehave::Reset => {
                            // A zero linger makes the close a reset (RST) and
                            // does not block, unlike the deprecation's concern.
                            #[allow(deprecated)]
                            let _ = s.set_linger(Some(std::time::Duration::ZERO));
                            drop(s);
                        }
                        Misbehave::Garbage => {
                            let _ = s.write_all(b"this is not http\r\n\r\n").await;
                        }
                        Misbehave::CloseMidBody => {
                            let _ = s
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
                                )
                                .await;
                        }
                    }
                });
            }
        });
        RawUpstream { port, task }
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
