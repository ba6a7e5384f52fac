//! TLS, HTTP/2 and connection limits against the real binary: certificates from
//! a throwaway CA made with rcgen, a hyper client over rustls that trusts only
//! that CA, raw sockets for the hostile clients.

use crate::harness::{guest, scratch, Server};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A throwaway certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes `STEM.pem` and `STEM.key` for `names` into `dir`.
    pub(crate) fn leaf(&self, dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &*self.issuer).expect("sign leaf");
        let (cert_path, key_path) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

/// A client config trusting only `ca_pem`, offering `alpn`.
pub(crate) fn client(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("add root");
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// What a request got back.
#[derive(Debug)]
pub(crate) struct HttpsAnswer {
    pub(crate) version: http::Version,
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The server's end-entity certificate (DER); empty over cleartext (h2c).
    pub(crate) leaf_der: Vec<u8>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `GET path` over TLS to `127.0.0.1:port`, sending `name` as SNI and `Host`;
/// HTTP/2 when the server picks `h2` by ALPN. Every failure is an `Err`.
pub(crate) fn fetch_tls(
    port: u16,
    name: &str,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<HttpsAnswer, String> {
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let session = tls.get_ref().1;
        let h2 = session.alpn_protocol() == Some(b"h2");
        let leaf_der = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.to_vec())
            .unwrap_or_default();
        let mut answer = within(send(TokioIo::new(tls), h2, "https", name, port, path)).await?;
        answer.leaf_der = leaf_der;
        Ok(answer)
    })
}

/// `GET path` over cleartext HTTP/2 with prior knowledge (h2c).
fn fetch_h2c(port: u16, path: &str) -> Result<HttpsAnswer, String> {
    runtime().block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        within(send(
            TokioIo::new(tcp),
            true,
            "http",
            "localhost",
            port,
            path,
        ))
        .await
    })
}

/// Bounds a client exchange, so a server that never answers fails the test.
async fn within(
    f: impl std::future::Future<Output = Result<HttpsAnswer, String>>,
) -> Result<HttpsAnswer, String> {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| Err("no answer within 30 s".to_owned()))
}

async fn send<I>(
    io: I,
    h2: bool,
    scheme: &str,
    name: &str,
    port: u16,
    path: &str,
) -> Result<HttpsAnswer, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        let req = http::Request::get(format!("{scheme}://{name}:{port}{path}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("h2 request: {e}"))?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("h1 handshake: {e}"))?;
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header(http::header::HOST, format!("{name}:{port}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender
            .send_request(req)
            .await
            .map_err(|e| format!("h1 request: {e}"))?
    };
    let (version, status) = (resp.version(), resp.status().as_u16());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(HttpsAnswer {
        version,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        leaf_der: Vec::new(),
    })
}

/// Starts gojinn on `caddyfile` (written into `dir`).
fn start(dir: &Path, caddyfile: &str) -> Server {
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("write Caddyfile");
    Server::start(&path, &[])
}

/// Serves `body` in a `tls` site on `:0` (after the global options `globals`,
/// one per line, indented), with a `localhost` certificate from a fresh CA.
/// Returns the scratch folder, the CA (for clients) and the server.
fn serve_tls(name: &str, globals: &str, body: &str) -> (PathBuf, Ca, Server) {
    let dir = scratch(name);
    let ca = Ca::new("gojinn test CA");
    let (cert, key) = ca.leaf(&dir, "localhost", &["localhost"]);
    let s = start(
        &dir,
        &format!(
            "{{\n    admin off\n{globals}}}\n\n:0 {{\n    tls {} {}\n{body}\n}}\n",
            cert.display(),
            key.display()
        ),
    );
    (dir, ca, s)
}

/// The test guest in `echo` mode, as a site body.
fn echo_function() -> String {
    format!(
        "    gojinn {} {{\n        args echo\n    }}",
        guest().display()
    )
}

/// True once the peer closes `stream` (EOF or reset) within `within`; data it
/// sends first is read and ignored.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() >= deadline {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}

/// Reads one `Content-Length`-framed HTTP/1.1 response from a kept-alive stream.
fn read_response(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("read response");
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            if body.len() >= len {
                return text;
            }
        }
    }
}

#[test]
fn http2_by_alpn_and_http11_over_tls_reach_the_function() {
    let (_dir, ca, s) = serve_tls("tls-alpn", "", &echo_function());

    let h2 = fetch_tls(
        s.port,
        "localhost",
        client(&ca.pem(), &[b"h2", b"http/1.1"]),
        "/hello?x=1",
    )
    .expect("HTTP/2 over TLS");
    assert_eq!(
        (h2.version, h2.status),
        (http::Version::HTTP_2, 200),
        "{h2:?}"
    );
    let echoed: serde_json::Value = serde_json::from_str(&h2.body).expect("echo json");
    assert_eq!(echoed["method"], "GET", "{echoed}");
    // The same origin-form `uri` a function gets over HTTP/1.1.
    assert_eq!(echoed["uri"], "/hello?x=1", "{echoed}");

    let h1 = fetch_tls(
        s.port,
        "localhost",
        client(&ca.pem(), &[b"http/1.1"]),
        "/one",
    )
    .expect("HTTP/1.1 over TLS");
    assert_eq!(
        (h1.version, h1.status),
        (http::Version::HTTP_11, 200),
        "{h1:?}"
    );
    // A client that offers no ALPN at all gets HTTP/1.1 too.
    let plain = fetch_tls(s.port, "localhost", client(&ca.pem(), &[]), "/none").expect("no ALPN");
    assert_eq!((plain.version, plain.status), (http::Version::HTTP_11, 200));

    // A client that does not trust the CA is refused by its own verifier.
    let other = Ca::new("another CA");
    let refused = fetch_tls(s.port, "localhost", client(&other.pem(), &[b"h2"]), "/");
    assert!(refused.is_err_and(|e| e.starts_with("handshake")));
}

#[test]
fn without_h2_in_protocols_tls_offers_only_http11() {
    let (_dir, ca, s) = serve_tls(
        "tls-no-h2",
        "    servers {\n        protocols h1\n    }\n",
        "    respond \"ok\"",
    );
    let r = fetch_tls(
        s.port,
        "localhost",
        client(&ca.pem(), &[b"h2", b"http/1.1"]),
        "/",
    )
    .expect("HTTP/1.1 over TLS");
    assert_eq!(
        (r.version, r.status, r.body.as_str()),
        (http::Version::HTTP_11, 200, "ok")
    );
}

#[test]
fn the_certificate_is_chosen_by_sni_with_the_first_site_as_fallback() {
    let dir = scratch("tls-sni");
    let ca = Ca::new("gojinn test CA");
    let (a_cert, a_key) = ca.leaf(&dir, "a", &["a.test", "localhost"]);
    let (b_cert, b_key) = ca.leaf(&dir, "b", &["b.test"]);
    let s = start(
        &dir,
        &format!(
            "{{\n    admin off\n}}\n\na.test:0 {{\n    tls {} {}\n    respond \"site a\"\n}}\n\nb.test:0 {{\n    tls {} {}\n    respond \"site b\"\n}}\n",
            a_cert.display(),
            a_key.display(),
            b_cert.display(),
            b_key.display()
        ),
    );
    let config = client(&ca.pem(), &[b"h2"]);
    // The client checks the name against the certificate it gets, so each
    // success proves which certificate was served.
    let a = fetch_tls(s.port, "a.test", config.clone(), "/").expect("a.test");
    assert_eq!((a.status, a.body.as_str()), (200, "site a"));
    let b = fetch_tls(s.port, "b.test", config.clone(), "/").expect("b.test");
    assert_eq!((b.status, b.body.as_str()), (200, "site b"));
    // An unknown name gets the first site's certificate (which names localhost);
    // no site answers for that host.
    let other = fetch_tls(s.port, "localhost", config, "/").expect("fallback certificate");
    assert_eq!(other.status, 404);
}

#[test]
fn a_cleartext_request_to_a_tls_port_gets_no_http_answer_and_tls_keeps_working() {
    let (_dir, ca, s) = serve_tls("tls-cleartext", "", "    respond \"ok\"");
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    raw.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    let r = fetch_tls(s.port, "localhost", client(&ca.pem(), &[b"h2"]), "/").expect("tls");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
}

#[test]
fn h2c_prior_knowledge_is_served_only_when_listed_in_protocols() {
    let with = Server::with_globals(
        "tls-h2c-on",
        "    admin off\n    servers {\n        protocols h1 h2c\n    }",
        &echo_function(),
        &[],
    );
    let r = fetch_h2c(with.port, "/x").expect("h2c with prior knowledge");
    assert_eq!((r.version, r.status), (http::Version::HTTP_2, 200), "{r:?}");
    // HTTP/1.1 still works on the same port.
    assert_eq!(with.get("/x").status, 200);

    let without = Server::with_routes("tls-h2c-off", "    respond \"ok\"");
    let refused = fetch_h2c(without.port, "/x");
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(without.get("/").status, 200);
}

#[test]
fn a_half_sent_head_is_dropped_after_read_header_while_others_are_served() {
    let s = Server::with_globals(
        "tls-slowloris",
        "    admin off\n    servers {\n        timeouts {\n            read_header 1s\n            idle 10m\n        }\n    }",
        "    respond \"ok\"",
        &[],
    );
    // One connection sends nothing at all, one stalls mid-head.
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("partial head");
    // Another connection is served meanwhile.
    assert_eq!(s.get("/").status, 200);
    assert!(
        closed_within(&mut slow, Duration::from_secs(20)),
        "a connection stalled mid-head must be closed after read_header"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(20)),
        "a new connection must send its first head within read_header"
    );
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn a_stalled_tls_handshake_is_dropped_after_read_header() {
    let (_dir, ca, s) = serve_tls(
        "tls-handshake-stall",
        "    servers {\n        timeouts {\n            read_header 1s\n            idle 10m\n        }\n    }\n",
        "    respond \"ok\"",
    );
    let mut stalled = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    // The first bytes of a TLS record header, then nothing.
    stalled
        .write_all(&[0x16, 0x03, 0x01])
        .expect("partial hello");
    let r = fetch_tls(s.port, "localhost", client(&ca.pem(), &[b"h2"]), "/").expect("tls");
    assert_eq!(r.status, 200);
    assert!(closed_within(&mut stalled, Duration::from_secs(20)));
}

/// A server with `timeouts { read_header; idle }` and a keep-alive connection to
/// it that has had one request answered.
fn after_one_request(name: &str, read_header: &str, idle: &str) -> (Server, TcpStream) {
    let s = Server::with_globals(
        name,
        &format!(
            "    admin off\n    servers {{\n        timeouts {{\n            read_header {read_header}\n            idle {idle}\n        }}\n    }}"
        ),
        "    respond \"ok\"",
        &[],
    );
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    assert!(read_response(&mut conn).starts_with("HTTP/1.1 200"));
    (s, conn)
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_idle_not_after_read_header() {
    // idle shorter than read_header: the idle clock closes the connection.
    let (_s, mut conn) = after_one_request("tls-idle", "1m", "1s");
    assert!(
        closed_within(&mut conn, Duration::from_secs(20)),
        "an idle keep-alive connection must be closed after `idle`"
    );

    // read_header shorter than idle: waiting for the next request is idleness,
    // not a slow head, so the connection stays open past read_header.
    let (_s, mut conn) = after_one_request("tls-idle-long", "1s", "10m");
    assert!(
        !closed_within(&mut conn, Duration::from_secs(3)),
        "a keep-alive connection waiting for its next request is not a slow head"
    );
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("second request");
    assert!(read_response(&mut conn).starts_with("HTTP/1.1 200"));
}

#[test]
fn heads_over_max_header_size_or_max_headers_answer_431() {
    let s = Server::with_globals(
        "tls-header-limits",
        "    admin off\n    servers {\n        max_header_size 16KiB\n        max_headers 20\n    }",
        "    respond \"ok\"",
        &[],
    );
    let big = "x".repeat(20 << 10);
    assert_eq!(s.request("GET", "/", &[("X-Big", &big)], b"").status, 431);
    let many: Vec<(String, String)> = (0..30)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(s.request("GET", "/", &many, b"").status, 431);
    // Within both limits (the harness adds Host and Connection).
    let fine = "x".repeat(8 << 10);
    let some: Vec<(&str, &str)> = many.iter().take(10).copied().collect();
    assert_eq!(s.request("GET", "/", &some, b"").status, 200);
    assert_eq!(s.request("GET", "/", &[("X-Big", &fine)], b"").status, 200);
}

fn validate(dir: &Path, caddyfile: &str) -> (bool, String) {
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("write Caddyfile");
    let out = Command::new(env!("CARGO_BIN_EXE_gojinn"))
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("run gojinn validate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tls_site(cert: &Path, key: &Path) -> String {
    format!(
        ":8443 {{\n    tls {} {}\n    respond \"ok\"\n}}\n",
        cert.display(),
        key.display()
    )
}

#[test]
fn validate_names_a_missing_unparsable_or_mismatched_certificate_file() {
    let dir = scratch("tls-validate");
    let ca = Ca::new("gojinn test CA");
    let (cert, key) = ca.leaf(&dir, "good", &["localhost"]);
    let (ok, err) = validate(&dir, &tls_site(&cert, &key));
    assert!(ok, "{err}");

    let missing = dir.join("missing.pem");
    let (ok, err) = validate(&dir, &tls_site(&missing, &key));
    assert!(!ok);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("Caddyfile:2:5"),
        "{err}"
    );

    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let (ok, err) = validate(&dir, &tls_site(&garbage, &key));
    assert!(!ok);
    assert!(
        err.contains(&garbage.display().to_string()) && err.contains("CERTIFICATE"),
        "{err}"
    );

    let (_, other_key) = ca.leaf(&dir, "other", &["localhost"]);
    let (ok, err) = validate(&dir, &tls_site(&cert, &other_key));
    assert!(!ok);
    assert!(
        err.contains(&other_key.display().to_string()) && err.contains("does not match"),
        "{err}"
    );

    // A managed certificate needs a name to be issued for.
    let (ok, err) = validate(&dir, ":8443 {\n    tls internal\n}\n");
    assert!(!ok);
    assert!(
        err.contains("Caddyfile:1:1") && err.contains("names no host"),
        "{err}"
    );
}

#[test]
fn a_reload_serves_the_renewed_certificate_and_refuses_a_broken_one() {
    let dir = scratch("tls-reload");
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let (cert, key) = old_ca.leaf(&dir, "site", &["localhost"]);
    let config = format!(
        "{{\n    admin off\n}}\n\n:0 {{\n    tls {} {}\n    respond \"ok\"\n}}\n",
        cert.display(),
        key.display()
    );
    let s = start(&dir, &config);
    let (trusts_old, trusts_new) = (
        client(&old_ca.pem(), &[b"h2"]),
        client(&new_ca.pem(), &[b"h2"]),
    );
    assert_eq!(
        fetch_tls(s.port, "localhost", trusts_old.clone(), "/")
            .expect("old")
            .status,
        200
    );
    assert!(fetch_tls(s.port, "localhost", trusts_new.clone(), "/").is_err());

    // Renewal: new files at the same paths, then SIGHUP.
    new_ca.leaf(&dir, "site", &["localhost"]);
    s.signal("HUP");
    assert!(
        s.wait_for_log(|l| l.contains("\"message\":\"config reloaded\""))
            .is_some(),
        "{}",
        s.logs().join("\n")
    );
    let r = fetch_tls(s.port, "localhost", trusts_new.clone(), "/").expect("renewed certificate");
    assert_eq!((r.version, r.status), (http::Version::HTTP_2, 200));
    assert!(fetch_tls(s.port, "localhost", trusts_old, "/").is_err());

    // A key that does not match: the reload is refused and the port keeps
    // serving the certificate it had.
    let (_, stray_key) = old_ca.leaf(&dir, "stray", &["localhost"]);
    std::fs::copy(&stray_key, &key).expect("replace key");
    s.signal("HUP");
    let refused = s
        .wait_for_log(|l| l.contains("reload refused"))
        .expect("bad reload refused");
    assert!(refused.contains("does not match"), "{refused}");
    assert_eq!(
        fetch_tls(s.port, "localhost", trusts_new, "/")
            .expect("still served")
            .status,
        200
    );
}

#[test]
fn curl_speaks_http2_to_a_tls_site_when_curl_is_installed() {
    let Ok(version) = Command::new("curl").arg("--version").output() else {
        eprintln!("SKIPPED: curl is not installed");
        return;
    };
    if !String::from_utf8_lossy(&version.stdout).contains("HTTP2") {
        eprintln!("SKIPPED: this curl has no HTTP/2 support");
        return;
    }
    let (dir, ca, s) = serve_tls("tls-curl", "", "    respond \"ok\"");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca");
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--http2", "--max-time", "30"])
        .arg("--cacert")
        .arg(&ca_path)
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", s.port))
        .args(["--write-out", " %{http_version} %{http_code}"])
        .arg(format!("https://localhost:{}/", s.port))
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "ok 2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_drains_an_http2_connection_with_goaway_after_its_stream_finishes() {
    let dir = scratch("tls-h2-drain");
    let ca = Ca::new("gojinn test CA");
    let (cert, key) = ca.leaf(&dir, "localhost", &["localhost"]);
    let path = dir.join("Caddyfile");
    // A grace period far longer than the test waits: the server must exit
    // because the HTTP/2 connection closed, not because the grace ran out.
    std::fs::write(
        &path,
        format!(
            "{{\n    admin off\n    grace_period 60s\n}}\n\n:0 {{\n    tls {} {}\n    gojinn {} {{\n        args nap\n    }}\n}}\n",
            cert.display(),
            key.display(),
            guest().display()
        ),
    )
    .expect("write Caddyfile");
    let mut s = Server::start(&path, &[("GOJINN_LOG", "info,gojinn::call=debug")]);
    let (port, config) = (s.port, client(&ca.pem(), &[b"h2"]));
    let h2 = std::thread::spawn(move || {
        runtime().block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let name = ServerName::try_from("localhost").expect("name");
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .expect("handshake");
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .expect("h2 handshake");
            let conn = tokio::spawn(conn);
            let req = http::Request::get(format!("https://localhost:{port}/nap"))
                .body(Empty::<Bytes>::new())
                .expect("request");
            let resp = sender.send_request(req).await.expect("h2 response");
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            // `sender` stays alive: only the server can end this connection.
            let closed = tokio::time::timeout(Duration::from_secs(40), conn)
                .await
                .is_ok();
            drop(sender);
            (status, String::from_utf8_lossy(&body).into_owned(), closed)
        })
    });
    assert!(
        s.wait_for_log(|l| l.contains("\"message\":\"call started\""))
            .is_some(),
        "{}",
        s.logs().join("\n")
    );
    s.signal("TERM");
    let (status, body, closed) = h2.join().expect("h2 client thread");
    assert_eq!((status, body.as_str()), (200, "rested"));
    assert!(
        closed,
        "the server should close the idle HTTP/2 connection (GOAWAY) when draining"
    );
    let exit = s
        .wait_exit(Duration::from_secs(30))
        .expect("server exits before its grace period ends");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_reload_can_switch_a_kept_port_between_cleartext_and_tls() {
    let dir = scratch("tls-switch");
    let ca = Ca::new("gojinn test CA");
    let (cert, key) = ca.leaf(&dir, "localhost", &["localhost"]);
    let clear = "{\n    admin off\n}\n\n:0 {\n    respond \"clear\"\n}\n";
    let tls = format!(
        "{{\n    admin off\n}}\n\n:0 {{\n    tls {} {}\n    respond \"tls\"\n}}\n",
        cert.display(),
        key.display()
    );
    let s = start(&dir, clear);
    assert_eq!(s.get("/").text(), "clear");
    let config = client(&ca.pem(), &[b"h2"]);

    std::fs::write(dir.join("Caddyfile"), &tls).expect("write Caddyfile");
    s.signal("HUP");
    assert!(s.wait_for_logs(1, |l| l.contains("\"message\":\"config reloaded\"")));
    let r = fetch_tls(s.port, "localhost", config.clone(), "/").expect("TLS after reload");
    assert_eq!((r.version, r.body.as_str()), (http::Version::HTTP_2, "tls"));

    std::fs::write(dir.join("Caddyfile"), clear).expect("write Caddyfile");
    s.signal("HUP");
    assert!(s.wait_for_logs(2, |l| l.contains("\"message\":\"config reloaded\"")));
    assert_eq!(s.get("/").text(), "clear");
    assert!(fetch_tls(s.port, "localhost", config, "/").is_err());
}
