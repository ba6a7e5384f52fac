//! Automatic HTTPS against a real ACME CA (Pebble, see `pebble.rs`): a site
//! address that is a domain name gets its certificate by HTTP-01 or
//! TLS-ALPN-01, serves HTTPS with HTTP/2 and redirects HTTP; a restart serves
//! from storage without the CA; short-lived certificates are renewed under
//! load; a CA that refuses leaves the other sites serving; two nodes sharing
//! Redis order once; `tls internal` serves `localhost` from a local root.

use crate::harness::{free_port, guest, raw_to, scratch, Server};
use crate::pebble::{https_get, leaf_not_after, Pebble, PebbleOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The test domain; challtestsrv resolves every name to 127.0.0.1.
const DOMAIN: &str = "gojinn.test";
/// How long a test waits for a certificate to be obtained or renewed.
const ISSUE_TIMEOUT: Duration = Duration::from_secs(60);

/// The ports a node serves: gojinn's `http_port` and `https_port`.
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    https: u16,
}

impl Ports {
    fn free() -> Ports {
        Ports {
            http: free_port(),
            https: free_port(),
        }
    }
}

/// Pebble validating on `ports`, or `None` (SKIPPED) without pebble.
fn pebble(
    dir: &Path,
    ports: Ports,
    validity_secs: Option<u64>,
    require_eab: bool,
) -> Option<Pebble> {
    Pebble::start(
        &dir.join("pebble"),
        PebbleOptions {
            http_port: ports.http,
            tls_port: ports.https,
            validity_secs,
            require_eab,
        },
    )
}

/// The global options pointing gojinn at `ca` with `storage`.
fn globals(ca: &Pebble, storage: &str, ports: Ports) -> String {
    format!(
        "    admin off\n    storage {storage}\n    email ops@gojinn.test\n    acme_ca {}\n    acme_ca_root {}\n    http_port {}\n    https_port {}\n",
        ca.directory_url(),
        ca.ca_root_path().display(),
        ports.http,
        ports.https
    )
}

/// A site for `DOMAIN` running the test guest's echo.
fn domain_site(extra: &str) -> String {
    format!(
        "{DOMAIN} {{\n{extra}    gojinn {} {{\n        args echo\n    }}\n}}\n",
        guest().display()
    )
}

/// Writes `globals` and `sites` as the Caddyfile in `dir` and starts gojinn.
fn start(dir: &Path, globals: &str, sites: &str) -> Server {
    let path = dir.join("Caddyfile");
    std::fs::write(&path, format!("{{\n{globals}}}\n\n{sites}")).expect("write Caddyfile");
    Server::start(&path, &[])
}

/// Waits for a log line containing every one of `parts`.
fn wait_log(server: &Server, parts: &[&str]) -> String {
    server
        .wait_for_log(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| {
            panic!(
                "no log line with {parts:?}; log:\n{}",
                server.logs().join("\n")
            )
        })
}

/// `GET /` over HTTPS for `DOMAIN`, verified against `roots`.
fn get(port: u16, roots: &str, h2: bool) -> crate::tls::HttpsAnswer {
    https_get(port, DOMAIN, roots, "/hello?x=1", h2)
        .unwrap_or_else(|e| panic!("HTTPS GET on {port} failed: {e}"))
}

fn scratch_dir(name: &str) -> PathBuf {
    scratch(&format!("acme-{name}"))
}

#[test]
fn a_domain_site_gets_a_certificate_from_the_ca_serves_h2_and_redirects_http() {
    let dir = scratch_dir("obtain");
    let ports = Ports::free();
    let Some(ca) = pebble(&dir, ports, None, false) else {
        return;
    };
    let storage = dir.join("storage");
    let config = globals(&ca, &storage.display().to_string(), ports)
        .replace("admin off", "admin 127.0.0.1:0");
    let server = start(&dir, &config, &domain_site(""));
    wait_log(&server, &["certificate obtained", DOMAIN]);
    wait_log(
        &server,
        &["answering the CA's challenge", "\"challenge\":\"http-01\""],
    );

    let roots = ca.issuing_roots_pem();
    let answer = get(ports.https, &roots, true);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.version, http::Version::HTTP_2);
    assert!(
        answer.body.contains("/hello"),
        "the function answered: {answer:?}"
    );
    let answer = get(ports.https, &roots, false);
    assert_eq!(
        (answer.status, answer.version),
        (200, http::Version::HTTP_11)
    );

    // HTTP redirects to HTTPS, keeping path and query, naming the HTTPS port.
    let resp = raw_to(
        ports.http,
        format!("GET /a/b?c=d HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(resp.status, 308, "{resp:?}");
    assert_eq!(
        resp.header("location"),
        Some(format!("https://{DOMAIN}:{}/a/b?c=d", ports.https).as_str())
    );

    // Stored as documented: chain, key (owner only), metadata.
    let issuer = format!("127.0.0.1-{}-dir", ca.acme_port());
    let cert_dir = storage.join("certificates").join(issuer).join(DOMAIN);
    let key = cert_dir.join(format!("{DOMAIN}.key"));
    assert!(
        cert_dir.join(format!("{DOMAIN}.crt")).is_file(),
        "{cert_dir:?}"
    );
    assert!(cert_dir.join(format!("{DOMAIN}.json")).is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{key:?}");

    // Metrics and /config tell the expiry of the served certificate.
    let admin = wait_log(&server, &["admin listening"]);
    let admin: serde_json::Value = serde_json::from_str(&admin).expect("json log line");
    let admin = admin["fields"]["port"].as_u64().expect("admin port") as u16;
    let leaf = get(ports.https, &roots, true).leaf_der;
    let expiry = leaf_not_after(&leaf)
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let metrics = crate::harness::try_get(admin, "/metrics")
        .expect("scrape")
        .text();
    let samples = crate::harness::samples(&metrics);
    assert_eq!(
        samples.get(&format!(
            "gojinn_tls_certificate_expiry_seconds{{domain=\"{DOMAIN}\"}}"
        )),
        Some(&(expiry as f64)),
        "{metrics}"
    );
    assert_eq!(
        samples.get(&format!(
            "gojinn_tls_certificates_obtained_total{{domain=\"{DOMAIN}\"}}"
        )),
        Some(&1.0),
        "{metrics}"
    );
    let shown = crate::harness::try_get(admin, "/config")
        .expect("/config")
        .json();
    assert_eq!(shown["managed_certificates"][0]["name"], DOMAIN, "{shown}");
    assert_eq!(
        shown["managed_certificates"][0]["not_after"], expiry,
        "{shown}"
    );

    // A reload keeps the certificate and orders nothing.
    let other = free_port();
    std::fs::write(
        dir.join("Caddyfile"),
        format!(
            "{{\n{config}}}\n\n{}\nhttp://:{other} {{\n    respond \"added\"\n}}\n",
            domain_site("")
        ),
    )
    .expect("write Caddyfile");
    server.signal("HUP");
    wait_log(&server, &["config reloaded"]);
    assert_eq!(
        crate::harness::try_get(other, "/")
            .expect("added site")
            .status,
        200
    );
    assert_eq!(get(ports.https, &roots, true).leaf_der, leaf);
    let orders = server
        .logs()
        .iter()
        .filter(|l| l.contains("certificate obtained") || l.contains("answering the CA"))
        .count();
    assert_eq!(
        orders,
        2,
        "one order, one challenge: {}",
        server.logs().join("\n")
    );
}

#[test]
fn tls_alpn_01_obtains_a_certificate_when_the_http_challenge_is_disabled() {
    let dir = scratch_dir("alpn");
    let ports = Ports::free();
    let Some(ca) = pebble(&dir, ports, None, false) else {
        return;
    };
    let server = start(
        &dir,
        &globals(&ca, &dir.join("storage").display().to_string(), ports),
        &domain_site("    tls {\n        issuer acme {\n            disable_http_challenge\n        }\n    }\n"),
    );
    wait_log(&server, &["certificate obtained", DOMAIN]);
    assert_eq!(get(ports.https, &ca.issuing_roots_pem(), true).status, 200);
    let logs = server.logs();
    let answered: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("answering the CA's challenge"))
        .collect();
    assert!(
        !answered.is_empty()
            && answered
                .iter()
                .all(|l| l.contains("\"challenge\":\"tls-alpn-01\"")),
        "validated by TLS-ALPN-01 only: {answered:?}"
    );
}

#[test]
fn a_restart_serves_the_stored_certificate_with_the_ca_stopped() {
    let dir = scratch_dir("restart");
    let ports = Ports::free();
    let Some(mut ca) = pebble(&dir, ports, None, false) else {
        return;
    };
    let storage = dir.join("storage").display().to_string();
    let config = globals(&ca, &storage, ports);
    let roots = ca.issuing_roots_pem();
    let first = start(&dir, &config, &domain_site(""));
    wait_log(&first, &["certificate obtained", DOMAIN]);
    let served = get(ports.https, &roots, true).leaf_der;
    drop(first);

    ca.stop();
    let second = start(&dir, &config, &domain_site(""));
    // Loaded before the ports opened: the first request is served.
    let answer = get(ports.https, &roots, true);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.leaf_der, served, "the stored certificate is served");
    assert!(
        second
            .logs()
            .iter()
            .any(|l| l.contains("certificate loaded from storage")),
        "{}",
        second.logs().join("\n")
    );
    assert!(
        !second.logs().iter().any(|l| l.contains("could not obtain")),
        "nothing was ordered: {}",
        second.logs().join("\n")
    );
}

#[test]
fn short_lived_certificates_are_renewed_without_a_failed_request_under_load() {
    let dir = scratch_dir("renew");
    let ports = Ports::free();
    // Renewal is due two-thirds in: after 20 s.
    let Some(ca) = pebble(&dir, ports, Some(30), false) else {
        return;
    };
    let server = start(
        &dir,
        &globals(&ca, &dir.join("storage").display().to_string(), ports),
        &domain_site(""),
    );
    wait_log(&server, &["certificate obtained", DOMAIN]);
    let roots = Arc::new(ca.issuing_roots_pem());
    let first = get(ports.https, &roots, true).leaf_der;

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..2)
        .map(|i| {
            let (stop, served, failed, roots) =
                (stop.clone(), served.clone(), failed.clone(), roots.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match https_get(ports.https, DOMAIN, &roots, "/", i == 0) {
                        Ok(a) if a.status == 200 => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.push(format!("{other:?}"));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let renewed = wait_log(&server, &["certificate renewed", DOMAIN]);
    // Requests made after the renewal see the new certificate.
    let deadline = Instant::now() + ISSUE_TIMEOUT;
    let now_served = loop {
        let leaf = get(ports.https, &roots, true).leaf_der;
        if leaf != first || Instant::now() > deadline {
            break leaf;
        }
        std::thread::yield_now();
    };
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect();
    assert_ne!(
        now_served, first,
        "a new certificate is served after: {renewed}"
    );
    assert!(leaf_not_after(&now_served) > leaf_not_after(&first));
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests: {failures:?}"
    );
}

#[test]
fn a_ca_that_refuses_is_logged_while_the_other_sites_keep_serving() {
    let dir = scratch_dir("refused");
    let ports = Ports::free();
    // Pebble demands an external account binding this config does not give.
    let Some(ca) = pebble(&dir, ports, None, true) else {
        return;
    };
    let line = others_serve_while_failing(&dir, ports, &ca);
    assert!(
        line.contains("externalAccountRequired"),
        "the CA's reason is in the log: {line}"
    );
}

#[test]
fn a_stopped_ca_is_logged_while_the_other_sites_keep_serving() {
    let dir = scratch_dir("stopped");
    let ports = Ports::free();
    let Some(mut ca) = pebble(&dir, ports, None, false) else {
        return;
    };
    ca.stop();
    let line = others_serve_while_failing(&dir, ports, &ca);
    assert!(line.contains(&ca.directory_url()), "names the CA: {line}");
}

/// Serves `DOMAIN`, which `ca` will not certify, beside a cleartext site:
/// the failure is logged (its line returned), the other site answers, and
/// `DOMAIN`'s handshake fails without hanging.
fn others_serve_while_failing(dir: &Path, ports: Ports, ca: &Pebble) -> String {
    let other = free_port();
    let server = start(
        dir,
        &globals(ca, &dir.join("storage").display().to_string(), ports),
        &format!(
            "{}\nhttp://:{other} {{\n    respond \"still here\"\n}}\n",
            domain_site("")
        ),
    );
    let line = wait_log(&server, &["could not obtain a certificate", DOMAIN]);
    let resp = crate::harness::try_get(other, "/").expect("the other site answers");
    assert_eq!((resp.status, resp.text()), (200, "still here".to_owned()));
    assert!(https_get(ports.https, DOMAIN, ca.ca_root_pem(), "/", true).is_err());
    line
}

#[test]
fn two_nodes_sharing_redis_storage_order_one_certificate() {
    let dir = scratch_dir("shared-redis");
    let Some(redis) = crate::shared::Redis::start(&dir, 0) else {
        return;
    };
    two_nodes_order_once(&dir, &redis.url());
}

#[test]
fn two_nodes_sharing_postgres_storage_order_one_certificate() {
    let Some(pg) = crate::postgres::Postgres::start() else {
        return;
    };
    two_nodes_order_once(&scratch_dir("shared-pg"), &pg.url());
}

/// Two nodes with `storage` at `url` serve one certificate, ordered once.
fn two_nodes_order_once(dir: &Path, url: &str) {
    // Pebble validates on node A's ports; node B answers through the shared
    // store when it is the one ordering.
    let (a_ports, b_ports) = (Ports::free(), Ports::free());
    let Some(ca) = pebble(dir, a_ports, None, false) else {
        return;
    };
    let (a_dir, b_dir) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a_dir).expect("a dir");
    std::fs::create_dir_all(&b_dir).expect("b dir");
    let a = start(&a_dir, &globals(&ca, url, a_ports), &domain_site(""));
    let b = start(&b_dir, &globals(&ca, url, b_ports), &domain_site(""));
    let roots = ca.issuing_roots_pem();
    let deadline = Instant::now() + ISSUE_TIMEOUT;
    let (leaf_a, leaf_b) = loop {
        let fetched = (
            https_get(a_ports.https, DOMAIN, &roots, "/", true),
            https_get(b_ports.https, DOMAIN, &roots, "/", true),
        );
        if let (Ok(x), Ok(y)) = &fetched {
            break (x.leaf_der.clone(), y.leaf_der.clone());
        }
        assert!(
            Instant::now() < deadline,
            "both nodes did not serve: {fetched:?}\nA:\n{}\nB:\n{}",
            a.logs().join("\n"),
            b.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        leaf_a, leaf_b,
        "both nodes serve the one certificate ordered"
    );
    let obtained = |s: &Server| {
        s.logs()
            .iter()
            .filter(|l| l.contains("certificate obtained"))
            .count()
    };
    assert_eq!(
        obtained(&a) + obtained(&b),
        1,
        "one order in all:\nA:\n{}\nB:\n{}",
        a.logs().join("\n"),
        b.logs().join("\n")
    );
}

#[test]
fn tls_internal_serves_localhost_with_a_certificate_from_the_printed_root() {
    let dir = scratch_dir("internal");
    let ports = Ports::free();
    let server = start(
        &dir,
        &format!(
            "    admin off\n    storage {}\n    https_port {}\n    http_port {}\n",
            dir.join("storage").display(),
            ports.https,
            ports.http
        ),
        "localhost {\n    respond \"local\"\n}\n",
    );
    let line = wait_log(&server, &["trust this root"]);
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let root_path = v["fields"]["root"].as_str().expect("root field");
    let root = std::fs::read_to_string(root_path).expect("the printed root file");
    let answer =
        https_get(ports.https, "localhost", &root, "/", true).expect("verified by the root");
    assert_eq!((answer.status, answer.body.as_str()), (200, "local"));
    let not_after = leaf_not_after(&answer.leaf_der);
    assert!(
        not_after > SystemTime::now()
            && not_after < SystemTime::now() + Duration::from_secs(13 * 3600)
    );
}
