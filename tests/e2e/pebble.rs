//! A throwaway ACME server for the automatic-HTTPS tests (issue 18): Debian's
//! `pebble` with `pebble-challtestsrv` as its DNS, every listener on a free
//! loopback port, plus the HTTPS client helpers those tests check gojinn with.
//!
//! Pebble's validator resolves every name through challtestsrv, which answers
//! each `A` query with 127.0.0.1 and no `AAAA` query at all, so an HTTP-01 or
//! TLS-ALPN-01 check of any test name lands on the gojinn server listening on
//! [`PebbleOptions::http_port`] / [`PebbleOptions::tls_port`].
//!
//! When `pebble` is missing, [`Pebble::start`] prints a `SKIPPED` line and the
//! test passes without running (install Debian's `pebble`; `scripts/test.sh` does).

use crate::harness::free_port;
use crate::tls::{client, fetch_tls, Ca, HttpsAnswer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long Pebble and challtestsrv get to start answering.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How many lines of each log a panic message quotes.
const LOG_TAIL_LINES: usize = 40;

/// The one external-account key Pebble knows (RFC 8555 §7.3.4). The MAC key is
/// 48 bytes drawn at random once, in unpadded base64url as Pebble's config
/// takes it (Pebble refuses to start on a key it cannot decode).
const EAB_KEY_ID: &str = "gojinn-test-kid";
const EAB_MAC_KEY: &str = "Hw-0IiIXTy1L0uCVZf_3t8wNDfmmqasnKlRS4sHPpd-64a32iy3hVWE3QltagZ6u";

/// How Pebble is configured.
#[derive(Clone, Debug)]
pub(crate) struct PebbleOptions {
    /// The port Pebble's validator connects to for HTTP-01 (`httpPort`).
    pub(crate) http_port: u16,
    /// The port Pebble's validator connects to for TLS-ALPN-01 (`tlsPort`).
    pub(crate) tls_port: u16,
    /// The lifetime of issued certificates (`certificateValidityPeriod`);
    /// Pebble's own default (157766400 s, five years) when `None`.
    pub(crate) validity_secs: Option<u64>,
    /// Refuse accounts without an external account binding
    /// (`externalAccountBindingRequired`). The key in [`Pebble::eab_key_id`] is
    /// configured either way, so a binding is also accepted when not required.
    pub(crate) require_eab: bool,
}

impl Default for PebbleOptions {
    /// Challenge ports nothing listens on yet, default validity, no EAB.
    fn default() -> PebbleOptions {
        PebbleOptions {
            http_port: free_port(),
            tls_port: free_port(),
            validity_secs: None,
            require_eab: false,
        }
    }
}

/// A running `pebble` and the `pebble-challtestsrv` it resolves names with;
/// both killed on drop.
pub(crate) struct Pebble {
    dir: PathBuf,
    config: PathBuf,
    opts: PebbleOptions,
    /// `None` between [`Pebble::stop`] and [`Pebble::restart`].
    pebble: Option<Child>,
    challtestsrv: Child,
    dns_port: u16,
    acme_port: u16,
    management_port: u16,
    ca_root: PathBuf,
    ca_root_pem: String,
}

impl Pebble {
    /// Writes Pebble's listener certificate and config into `dir`, starts
    /// challtestsrv and Pebble, and waits until both answer. `None` (with a
    /// `SKIPPED` line) when either binary cannot be started; panics, quoting
    /// the logs, when one starts but never answers.
    pub(crate) fn start(dir: &Path, opts: PebbleOptions) -> Option<Pebble> {
        std::fs::create_dir_all(dir).expect("create pebble dir");
        let dns_port = free_port();
        let challtestsrv = spawn_logged(
            Command::new("pebble-challtestsrv")
                .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                .args(["-management", &format!("127.0.0.1:{}", free_port())])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]),
            &dir.join("challtestsrv.log"),
        );
        let mut challtestsrv = match challtestsrv {
            Ok(child) => child,
            Err(e) => {
                eprintln!(
                    "SKIPPED: cannot start pebble-challtestsrv ({e}); install Debian's `pebble`"
                );
                return None;
            }
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        // challtestsrv serves DNS over TCP as well as UDP on the same port.
        while TcpStream::connect(("127.0.0.1", dns_port)).is_err() {
            let exited = challtestsrv.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let _ = challtestsrv.kill();
                let _ = challtestsrv.wait();
                panic!(
                    "pebble-challtestsrv did not listen on DNS port {dns_port} ({exited:?})\n{}",
                    tail(&dir.join("challtestsrv.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        // Pebble speaks ACME over HTTPS only, with this certificate. The names
        // cover both `directory_url` and a client that prefers `localhost`.
        let ca = Ca::new("gojinn test CA for the pebble listener");
        let (certificate, private_key) =
            ca.leaf(dir, "pebble-listener", &["localhost", "127.0.0.1"]);
        let ca_root = dir.join("pebble-listener-ca.pem");
        std::fs::write(&ca_root, ca.pem()).expect("write pebble listener CA");

        let (acme_port, management_port) = (free_port(), free_port());
        let mut pebble = serde_json::json!({
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": certificate,
            "privateKey": private_key,
            "httpPort": opts.http_port,
            "tlsPort": opts.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.require_eab,
            "externalAccountMACKeys": { EAB_KEY_ID: EAB_MAC_KEY },
        });
        if let Some(secs) = opts.validity_secs {
            pebble["certificateValidityPeriod"] = secs.into();
        }
        let config = dir.join("pebble-config.json");
        std::fs::write(&config, serde_json::json!({ "pebble": pebble }).to_string())
            .expect("write pebble config");

        let mut this = Pebble {
            dir: dir.to_owned(),
            config,
            opts,
            pebble: None,
            challtestsrv,
            dns_port,
            acme_port,
            management_port,
            ca_root,
            ca_root_pem: ca.pem(),
        };
        match this.spawn_pebble() {
            Ok(()) => Some(this),
            Err(e) => {
                eprintln!("SKIPPED: cannot start pebble ({e}); install Debian's `pebble`");
                None
            }
        }
    }

    /// The ACME directory, e.g. `https://127.0.0.1:PORT/dir`. An IP rather
    /// than `localhost` so a client cannot try `::1`, where Pebble does not
    /// listen; Pebble builds the URLs in its directory from the request's
    /// `Host`, so the client stays on 127.0.0.1 throughout.
    pub(crate) fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The PEM file of the CA that signed Pebble's own listener certificate:
    /// what an ACME client must trust to talk to Pebble (`acme_ca_root`).
    pub(crate) fn ca_root_path(&self) -> &Path {
        &self.ca_root
    }

    /// The PEM text of [`Pebble::ca_root_path`].
    pub(crate) fn ca_root_pem(&self) -> &str {
        &self.ca_root_pem
    }

    /// The ACME listener's port, for [`https_get`] against Pebble itself.
    pub(crate) fn acme_port(&self) -> u16 {
        self.acme_port
    }

    /// The key id of the external account binding Pebble accepts.
    pub(crate) fn eab_key_id(&self) -> &'static str {
        EAB_KEY_ID
    }

    /// The MAC key (unpadded base64url, as ACME clients take it) for
    /// [`Pebble::eab_key_id`].
    pub(crate) fn eab_mac_key(&self) -> &'static str {
        EAB_MAC_KEY
    }

    /// The root that signs the certificates Pebble issues (PEM), from the
    /// management interface. Pebble makes a new one at every launch, so ask
    /// again after [`Pebble::restart`].
    pub(crate) fn issuing_roots_pem(&self) -> String {
        let answer = https_get(
            self.management_port,
            "127.0.0.1",
            &self.ca_root_pem,
            "/roots/0",
            false,
        );
        match answer {
            Ok(a) if a.status == 200 => a.body,
            other => panic!("GET /roots/0 from pebble: {other:?}\n{}", self.logs()),
        }
    }

    /// Kills Pebble and waits for it; challtestsrv keeps running, so
    /// [`Pebble::restart`] can bring the CA back on the same ports.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.pebble.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops Pebble if it runs and starts it again with the same ports and
    /// config. Its issuing root changes; its accounts and orders are gone.
    pub(crate) fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_pebble() {
            panic!("cannot restart pebble: {e}\n{}", self.logs());
        }
    }

    /// The last lines of both processes' output, for failure messages.
    pub(crate) fn logs(&self) -> String {
        format!(
            "--- pebble.log ---\n{}\n--- challtestsrv.log ---\n{}",
            tail(&self.dir.join("pebble.log")),
            tail(&self.dir.join("challtestsrv.log"))
        )
    }

    /// Starts Pebble on the written config and waits until its directory
    /// answers over HTTPS. `Err` only when the binary cannot be started; a
    /// Pebble that exits or never answers panics with the logs.
    fn spawn_pebble(&mut self) -> std::io::Result<()> {
        let log = self.dir.join("pebble.log");
        let child = spawn_logged(
            Command::new("pebble")
                .arg("-config")
                .arg(&self.config)
                .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns_port)])
                // Validate at once, never reject a good nonce, and make a new
                // authorization for every order, so each test sees a full
                // issuance and no retry a client might not need elsewhere.
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .env("PEBBLE_AUTHZREUSE", "0"),
            &log,
        )?;
        let child = self.pebble.insert(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answer = https_get(
                self.acme_port,
                "127.0.0.1",
                &self.ca_root_pem,
                "/dir",
                false,
            );
            if matches!(&answer, Ok(a) if a.status == 200) {
                break;
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "pebble did not serve its directory ({exited:?}; last answer {answer:?})\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Pebble reads its config with Go's lenient JSON decoder, which skips
        // unknown fields; its log line is the proof the validity was taken.
        if let Some(secs) = self.opts.validity_secs {
            let said = format!("Using certificate validity period of {secs} seconds");
            assert!(
                std::fs::read_to_string(&log).is_ok_and(|l| l.contains(&said)),
                "pebble did not take certificateValidityPeriod {secs}\n{}",
                self.logs()
            );
        }
        Ok(())
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
        let _ = self.challtestsrv.kill();
        let _ = self.challtestsrv.wait();
    }
}

/// Spawns `command` with stdout and stderr appended to `log`.
fn spawn_logged(command: &mut Command, log: &Path) -> std::io::Result<Child> {
    let out = File::options().create(true).append(true).open(log)?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
}

/// The last [`LOG_TAIL_LINES`] lines of `log`.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("({e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// `GET path` over TLS to `127.0.0.1:port` with `sni` as SNI and `Host`,
/// trusting only the certificates in `roots_pem`. Offers ALPN `h2` and
/// `http/1.1` when `h2`, else only `http/1.1`. Every failure is an `Err`.
pub(crate) fn https_get(
    port: u16,
    sni: &str,
    roots_pem: &str,
    path: &str,
    h2: bool,
) -> Result<HttpsAnswer, String> {
    let alpn: &[&[u8]] = if h2 {
        &[b"h2", b"http/1.1"]
    } else {
        &[b"http/1.1"]
    };
    fetch_tls(port, sni, client(roots_pem, alpn), path)
}

/// The `notAfter` of a DER certificate; panics when it is not one.
pub(crate) fn leaf_not_after(der: &[u8]) -> SystemTime {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .unwrap_or_else(|e| panic!("not a certificate ({e}): {der:02x?}"));
    let secs = cert.validity().not_after.timestamp();
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

#[test]
fn pebble_harness_starts_pebble_and_serves_its_directory() {
    let dir = crate::harness::scratch("pebble-harness");
    let Some(pebble) = Pebble::start(&dir.join("plain"), PebbleOptions::default()) else {
        return;
    };
    assert!(
        pebble
            .directory_url()
            .ends_with(&format!(":{}/dir", pebble.acme_port())),
        "{}",
        pebble.directory_url()
    );
    // Asked as `localhost`, Pebble names its endpoints after that Host.
    let directory = fetch_directory(&pebble);
    let origin = format!("https://localhost:{}/", pebble.acme_port());
    for url in ["newAccount", "newOrder", "newNonce"] {
        assert!(
            directory[url]
                .as_str()
                .is_some_and(|u| u.starts_with(&origin)),
            "no {url} URL in {directory}"
        );
    }
    assert_eq!(
        directory["meta"]["externalAccountRequired"], false,
        "{directory}"
    );
    assert_eq!(
        std::fs::read_to_string(pebble.ca_root_path()).expect("read CA root"),
        pebble.ca_root_pem()
    );

    // The issuing root is a CA certificate, and a new one after a restart.
    let root = pebble.issuing_roots_pem();
    let ders: Vec<_> = CertificateDer::pem_slice_iter(root.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("issuing root is not PEM ({e:?}): {root}"));
    assert_eq!(ders.len(), 1, "{root}");
    assert!(leaf_not_after(&ders[0]) > SystemTime::now());
    let mut pebble = pebble;
    pebble.stop();
    assert!(https_get(
        pebble.acme_port(),
        "127.0.0.1",
        pebble.ca_root_pem(),
        "/dir",
        false
    )
    .is_err());
    pebble.restart();
    assert_ne!(pebble.issuing_roots_pem(), root);

    let eab = PebbleOptions {
        require_eab: true,
        validity_secs: Some(90),
        ..PebbleOptions::default()
    };
    let Some(pebble) = Pebble::start(&dir.join("eab"), eab) else {
        return;
    };
    let directory = fetch_directory(&pebble);
    assert_eq!(
        directory["meta"]["externalAccountRequired"], true,
        "{directory}"
    );
    let config = std::fs::read_to_string(dir.join("eab/pebble-config.json")).expect("config");
    assert!(
        config.contains(&format!(
            "\"{}\":\"{}\"",
            pebble.eab_key_id(),
            pebble.eab_mac_key()
        )),
        "{config}"
    );
}

/// Pebble's directory, fetched over HTTP/2 when Pebble offers it.
fn fetch_directory(pebble: &Pebble) -> serde_json::Value {
    let answer = https_get(
        pebble.acme_port(),
        "localhost",
        pebble.ca_root_pem(),
        "/dir",
        true,
    )
    .unwrap_or_else(|e| panic!("GET /dir: {e}\n{}", pebble.logs()));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.version, http::Version::HTTP_2, "{answer:?}");
    assert!(!answer.leaf_der.is_empty());
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}
