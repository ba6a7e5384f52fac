//! Automatic HTTPS, config side: after every site block is read, decides which
//! sites are HTTPS (Caddy's address rules), gives those without `tls` their
//! managed issuer, fills an explicit issuer's unset fields from the global
//! options, and appends the HTTP->HTTPS redirect site. The result is resolved:
//! the server reads only [`Site::tls`], and the JSON form (which is resolved
//! already) never goes through here.

use std::net::Ipv4Addr;

use crate::error::{PResult, Pos, PosError};
use crate::handlers::Redirect;
use crate::model::{
    AcmeIssuer, Address, AutoHttps, AutoHttpsOptions, Config, Handler, Issuer, Route, Site, Tls,
};
use crate::validate;

/// Status of the HTTP->HTTPS redirects: permanent, and the method is kept (as Caddy).
const REDIRECT_STATUS: u16 = 308;

/// Host suffixes that cannot get a publicly trusted certificate, so an
/// implicit issuer for them is the internal CA (Caddy's list).
const LOCAL_SUFFIXES: &[&str] = &[".localhost", ".local", ".internal", ".home.arpa"];

/// The scheme an address was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// No scheme: decided by host, port and `tls`.
    Unstated,
    /// `http://`: cleartext.
    Http,
    /// `https://`: HTTPS.
    Https,
}

/// One address as written, parallel to [`Site::addresses`].
pub(crate) struct WrittenAddress {
    pub(crate) scheme: Scheme,
    pub(crate) pos: Pos,
    pub(crate) text: String,
}

/// What the adapter knows of a site beyond the model, parallel to
/// [`Config::sites`].
pub(crate) struct WrittenSite {
    pub(crate) addresses: Vec<WrittenAddress>,
    /// Where the site's `tls` directive is.
    pub(crate) tls: Option<Pos>,
}

/// Resolves every site's TLS and appends the redirect sites.
pub(crate) fn resolve(config: &mut Config, written: &[WrittenSite]) -> PResult<()> {
    let o = config.auto_https.clone();
    let mut modes: Vec<(u16, bool, Pos)> = Vec::new();
    // HTTPS addresses that are HTTPS only because of automatic HTTPS.
    let mut implicit_at: Vec<Pos> = Vec::new();
    for (site, w) in config.sites.iter_mut().zip(written) {
        let https = site_is_https(site, w, &o)?;
        if let Some(first) = https {
            site.tls = Some(match site.tls.take() {
                None => implicit(site, w, &o)?,
                Some(Tls::Files(f)) => Tls::Files(f),
                Some(Tls::Managed(issuer)) => {
                    explicit_managed(site, w, &o, first)?;
                    Tls::Managed(match issuer {
                        Issuer::Acme(acme) => Issuer::Acme(with_globals(acme, &o)),
                        Issuer::Internal => Issuer::Internal,
                    })
                }
            });
            if let Some(Tls::Managed(Issuer::Acme(_))) = &site.tls {
                no_wildcard(site, w)?;
            }
        }
        for (a, wa) in site.addresses.iter().zip(&w.addresses) {
            modes.push((a.port, https.is_some(), wa.pos));
            if https.is_some() && w.tls.is_none() && wa.scheme == Scheme::Unstated {
                implicit_at.push(wa.pos);
            }
        }
    }
    validate::one_mode_per_port(modes).map_err(|(port, tls, clear)| {
        let mut message = validate::mixed_port(port, tls, clear);
        if implicit_at.contains(&tls) {
            // The usual cause: a `host:port` that was cleartext before
            // automatic HTTPS.
            message.push_str(&format!(
                " (the address at line {}, column {} is HTTPS because it names a host on a port \
                 other than the `http_port`: write `http://` before it to keep it cleartext)",
                tls.line, tls.col
            ));
        }
        PosError::new(tls.max(clear), message)
    })?;
    if matches!(o.mode, AutoHttps::On | AutoHttps::DisableCerts) {
        config.sites.extend(redirects(&config.sites, &o));
    }
    Ok(())
}

/// Whether the site is HTTPS: `Some(index of its first HTTPS address)`, or
/// `None` for cleartext. A site is one or the other.
fn site_is_https(site: &Site, w: &WrittenSite, o: &AutoHttpsOptions) -> PResult<Option<usize>> {
    let mut https_at: Option<usize> = None;
    let mut clear_at: Option<usize> = None;
    for (i, (a, wa)) in site.addresses.iter().zip(&w.addresses).enumerate() {
        let https = match (wa.scheme, &a.host) {
            (Scheme::Https, _) => true,
            (Scheme::Http, _) => {
                if let Some(t) = w.tls {
                    return Err(PosError::new(
                        wa.pos,
                        format!(
                            "address `{}` is cleartext HTTP, but its site block has `tls` (line {}, column {}): \
                             drop the `http://` or move the address to a site without `tls`",
                            wa.text, t.line, t.col
                        ),
                    ));
                }
                false
            }
            (Scheme::Unstated, None) => w.tls.is_some(),
            // Port 0 (a free port, in tests) is never the HTTP port.
            (Scheme::Unstated, Some(_)) if a.port == o.http_port && a.port != 0 => {
                if let Some(t) = w.tls {
                    return Err(PosError::new(
                        wa.pos,
                        format!(
                            "address `{}` is cleartext HTTP (port {} is the `http_port`), but its site block \
                             has `tls` (line {}, column {}): use another port, or move the address to a site \
                             without `tls`",
                            wa.text, a.port, t.line, t.col
                        ),
                    ));
                }
                false
            }
            (Scheme::Unstated, Some(_)) => w.tls.is_some() || o.mode != AutoHttps::Off,
        };
        let slot = if https { &mut https_at } else { &mut clear_at };
        slot.get_or_insert(i);
    }
    match (https_at, clear_at) {
        (Some(h), Some(c)) => {
            let (h, c) = (&w.addresses[h], &w.addresses[c]);
            Err(PosError::new(
                h.pos.max(c.pos),
                format!(
                    "this site mixes the HTTPS address `{}` and the cleartext address `{}`: \
                     split it into two site blocks, one for each",
                    h.text, c.text
                ),
            ))
        }
        (https, _) => Ok(https),
    }
}

/// The issuer of an HTTPS site without `tls`.
fn implicit(site: &Site, w: &WrittenSite, o: &AutoHttpsOptions) -> PResult<Tls> {
    hosts_for_managed(site, w)?;
    // Without `tls`, only `https://` makes a site HTTPS under `auto_https off`.
    let first = w.addresses.first().map_or(Pos::START, |a| a.pos);
    let text = w.addresses.first().map_or("", |a| a.text.as_str());
    match o.mode {
        AutoHttps::Off => Err(PosError::new(
            first,
            format!(
                "address `{text}` uses HTTPS, but `auto_https off` turns off automatic certificates: \
                 give the site `tls cert.pem key.pem` (or `tls internal`), or write `http://`"
            ),
        )),
        AutoHttps::DisableCerts => Err(PosError::new(
            first,
            format!(
                "address `{text}` is HTTPS and needs `tls cert.pem key.pem` in its site block because \
                 `auto_https disable_certs` turns off automatic certificates"
            ),
        )),
        AutoHttps::On | AutoHttps::DisableRedirects => {
            let local = site
                .addresses
                .iter()
                .all(|a| a.host.as_deref().is_some_and(is_local));
            Ok(Tls::Managed(if o.local_certs || local {
                Issuer::Internal
            } else {
                Issuer::Acme(with_globals(AcmeIssuer::default(), o))
            }))
        }
    }
}

/// Checks an explicit `tls EMAIL` / `tls internal` / `tls { … }` site.
fn explicit_managed(
    site: &Site,
    w: &WrittenSite,
    o: &AutoHttpsOptions,
    first: usize,
) -> PResult<()> {
    hosts_for_managed(site, w)?;
    if o.mode == AutoHttps::DisableCerts {
        let text = w.addresses.get(first).map_or("", |a| a.text.as_str());
        return Err(PosError::new(
            w.tls.unwrap_or(Pos::START),
            format!(
                "address `{text}` needs `tls cert.pem key.pem` because `auto_https disable_certs` \
                 turns off managed certificates"
            ),
        ));
    }
    Ok(())
}

/// A managed certificate names the site's hosts: every address needs one.
fn hosts_for_managed(site: &Site, w: &WrittenSite) -> PResult<()> {
    match site
        .addresses
        .iter()
        .zip(&w.addresses)
        .find(|(a, _)| a.host.is_none())
    {
        Some((_, wa)) => Err(PosError::new(
            wa.pos,
            format!(
                "address `{}` is HTTPS but names no host, so there is no name to get a certificate \
                 for: give the site a host (e.g. `example.com`), or `tls cert.pem key.pem`",
                wa.text
            ),
        )),
        None => Ok(()),
    }
}

/// ACME gives wildcard certificates only through the DNS challenge.
fn no_wildcard(site: &Site, w: &WrittenSite) -> PResult<()> {
    let wild = site
        .addresses
        .iter()
        .zip(&w.addresses)
        .find(|(a, _)| a.host.as_deref().is_some_and(|h| h.starts_with("*.")));
    match wild {
        Some((_, wa)) => Err(PosError::new(
            wa.pos,
            format!(
                "address `{}` needs a wildcard certificate, which ACME issues only through the DNS \
                 challenge, and gojinn has no DNS provider: use `tls internal` or `tls cert.pem key.pem`",
                wa.text
            ),
        )),
        None => Ok(()),
    }
}

/// `acme` with the fields it leaves unset taken from the global options.
fn with_globals(mut acme: AcmeIssuer, o: &AutoHttpsOptions) -> AcmeIssuer {
    acme.email = acme.email.or_else(|| o.email.clone());
    acme.dir = acme.dir.or_else(|| o.acme_ca.clone());
    acme.ca_root = acme.ca_root.or_else(|| o.acme_ca_root.clone());
    acme.eab = acme.eab.or_else(|| o.acme_eab.clone());
    acme
}

/// A host no public CA certifies: `localhost`, IP literals and private suffixes.
fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('[')
        || host.parse::<Ipv4Addr>().is_ok()
        || LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s))
}

/// The cleartext sites that redirect the HTTPS sites' hosts, one per HTTPS
/// port. None when a user site already answers every host on the HTTP port
/// (its catch-all wins, as in Caddy) or serves TLS there.
fn redirects(sites: &[Site], o: &AutoHttpsOptions) -> Vec<Site> {
    let on_http_port = |s: &Site| s.addresses.iter().any(|a| a.port == o.http_port);
    let catch_all = sites.iter().any(|s| {
        s.addresses
            .iter()
            .any(|a| a.port == o.http_port && a.host.is_none())
    });
    if catch_all || sites.iter().any(|s| s.tls.is_some() && on_http_port(s)) {
        return Vec::new();
    }
    let served: Vec<&str> = sites
        .iter()
        .flat_map(|s| &s.addresses)
        .filter(|a| a.port == o.http_port)
        .filter_map(|a| a.host.as_deref())
        .collect();
    let mut by_port: Vec<(u16, Vec<String>)> = Vec::new();
    let mut taken: Vec<&str> = Vec::new();
    for a in sites
        .iter()
        .filter(|s| s.tls.is_some())
        .flat_map(|s| &s.addresses)
    {
        let Some(host) = a.host.as_deref() else {
            continue;
        };
        // Port 0 is only known once bound, so there is nowhere to redirect to;
        // the server matches hosts exactly, so a wildcard would never match.
        if a.port == 0 || host.starts_with("*.") || served.contains(&host) || taken.contains(&host)
        {
            continue;
        }
        taken.push(host);
        match by_port.iter_mut().find(|(p, _)| *p == a.port) {
            Some((_, hosts)) => hosts.push(host.to_owned()),
            None => by_port.push((a.port, vec![host.to_owned()])),
        }
    }
    by_port
        .into_iter()
        .map(|(port, hosts)| {
            let to = if port == 443 {
                "https://{host}{uri}".to_owned()
            } else {
                format!("https://{{host}}:{port}{{uri}}")
            };
            Site {
                addresses: hosts
                    .into_iter()
                    .map(|host| Address {
                        host: Some(host),
                        port: o.http_port,
                    })
                    .collect(),
                tls: None,
                log: None,
                queue: None,
                routes: vec![Route {
                    group: None,
                    matcher: None,
                    conditions: None,
                    handle: Handler::Redirect(Redirect {
                        to,
                        status: REDIRECT_STATUS,
                        html: false,
                    }),
                }],
                errors: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use std::path::Path;

    fn adapt(src: &str) -> Result<Config, String> {
        crate::parse_caddyfile(src, Path::new("/srv/Caddyfile"), &|_| None)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    fn tls_of(config: &Config, host: &str) -> Option<Tls> {
        config
            .sites
            .iter()
            .find(|s| s.addresses.iter().any(|a| a.host.as_deref() == Some(host)))
            .and_then(|s| s.tls.clone())
    }

    #[test]
    fn local_hosts_get_the_internal_ca() {
        for h in [
            "localhost",
            "a.localhost",
            "10.0.0.1",
            "[::1]",
            "nas.local",
            "db.internal",
            "tv.home.arpa",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["example.com", "localhost.example.com", "internal.example"] {
            assert!(!is_local(h), "{h}");
        }
        // One public host in the site makes it ACME.
        let c = adapt("localhost, example.com {\n}\n").unwrap();
        assert!(matches!(
            tls_of(&c, "localhost"),
            Some(Tls::Managed(Issuer::Acme(_)))
        ));
    }

    #[test]
    fn address_rules() {
        let c = adapt(
            "a.test {\n}\nb.test:9000 {\n}\nc.test:80 {\n}\nhttp://d.test {\n}\nhttps://e.test:8443 {\n}\n:8080 {\n}\nf.test:0 {\n}\n",
        )
        .unwrap();
        for https in ["a.test", "b.test", "e.test", "f.test"] {
            assert!(tls_of(&c, https).is_some(), "{https}");
        }
        for clear in ["c.test", "d.test"] {
            assert!(tls_of(&c, clear).is_none(), "{clear}");
        }
        let hostless = &c.sites[5];
        assert_eq!(hostless.addresses[0].port, 8080);
        assert!(hostless.tls.is_none());
    }

    #[test]
    fn redirects_skip_port_zero_wildcards_and_served_hosts() {
        let c = adapt(
            "a.test {\n}\nb.test:0 {\n}\n*.c.test {\n    tls internal\n}\nd.test {\n}\nhttp://d.test {\n}\n",
        )
        .unwrap();
        let redirect = c.sites.last().unwrap();
        let hosts: Vec<_> = redirect
            .addresses
            .iter()
            .map(|a| (a.host.as_deref().unwrap(), a.port))
            .collect();
        assert_eq!(hosts, [("a.test", 80)]);
        assert_eq!(
            redirect.routes[0].handle,
            Handler::Redirect(Redirect {
                to: "https://{host}{uri}".into(),
                status: 308,
                html: false
            })
        );
    }

    #[test]
    fn a_hostless_site_on_the_http_port_takes_every_redirect() {
        let c = adapt("a.test {\n}\n:80 {\n    respond \"mine\"\n}\n").unwrap();
        assert_eq!(c.sites.len(), 2);
    }

    #[test]
    fn no_redirects_when_disabled() {
        for mode in ["disable_redirects", "off"] {
            let c = adapt(&format!(
                "{{\n    auto_https {mode}\n}}\na.test:8443 {{\n    tls internal\n}}\n"
            ))
            .unwrap();
            assert_eq!(c.sites.len(), 1, "{mode}");
        }
    }

    #[test]
    fn explicit_issuer_keeps_its_fields_and_takes_the_rest_from_globals() {
        let c = adapt(
            "{\n    email g@x.test\n    acme_ca https://g.test/dir\n}\na.test {\n    tls me@x.test\n}\n",
        )
        .unwrap();
        assert_eq!(
            tls_of(&c, "a.test"),
            Some(Tls::Managed(Issuer::Acme(AcmeIssuer {
                email: Some("me@x.test".into()),
                dir: Some("https://g.test/dir".into()),
                ..AcmeIssuer::default()
            })))
        );
    }

    #[test]
    fn resolving_is_idempotent_through_json() {
        let src = "{\n    email g@x.test\n    http_port 8080\n}\na.test {\n}\n";
        let c = adapt(src).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back = crate::parse_json(&json, Path::new("/srv/c.json")).unwrap();
        assert_eq!(back.config, c);
    }

    #[test]
    fn every_auto_https_option_round_trips_through_json() {
        let src = "{
    email admin@example.com
    acme_ca https://acme.example.net/directory
    acme_ca_root ./root.pem
    acme_eab {
        key_id kid
        mac_key bWFj
    }
    http_port 8080
    https_port 8443
    auto_https disable_redirects
    local_certs
    storage postgres://db.test/certs
}
a.test {
}
b.test {
    tls {
        issuer acme {
            disable_http_challenge
        }
    }
}
";
        let c = adapt(src).unwrap();
        assert_eq!(
            c.auto_https,
            AutoHttpsOptions {
                email: Some("admin@example.com".into()),
                acme_ca: Some("https://acme.example.net/directory".into()),
                acme_ca_root: Some("/srv/root.pem".into()),
                acme_eab: Some(crate::model::Eab {
                    key_id: "kid".into(),
                    mac_key: "bWFj".into()
                }),
                http_port: 8080,
                https_port: 8443,
                mode: AutoHttps::DisableRedirects,
                local_certs: true,
            }
        );
        assert_eq!(c.storage_url.as_deref(), Some("postgres://db.test/certs"));
        assert_eq!(tls_of(&c, "a.test"), Some(Tls::Managed(Issuer::Internal)));
        let Some(Tls::Managed(Issuer::Acme(b))) = tls_of(&c, "b.test") else {
            panic!("b.test should be ACME");
        };
        assert!(b.disable_http_challenge);
        assert_eq!(b.ca_root.as_deref(), Some(Path::new("/srv/root.pem")));
        let json = serde_json::to_string_pretty(&c).unwrap();
        let back = crate::parse_json(&json, Path::new("/srv/c.json")).unwrap();
        assert_eq!(back.config, c);
    }

    #[test]
    fn tls_json_shapes() {
        let cases: [(Tls, &str); 3] = [
            (Tls::Managed(Issuer::Internal), r#"{"issuer":"internal"}"#),
            (
                Tls::Managed(Issuer::Acme(AcmeIssuer {
                    email: Some("a@b.c".into()),
                    dir: Some("https://ca.test/dir".into()),
                    ..AcmeIssuer::default()
                })),
                r#"{"issuer":"acme","email":"a@b.c","dir":"https://ca.test/dir"}"#,
            ),
            (
                Tls::Files(crate::model::TlsFiles {
                    cert: "/c.pem".into(),
                    key: "/k.pem".into(),
                    origin: None,
                }),
                r#"{"cert":"/c.pem","key":"/k.pem"}"#,
            ),
        ];
        for (tls, json) in cases {
            assert_eq!(serde_json::to_string(&tls).unwrap(), json);
            assert_eq!(serde_json::from_str::<Tls>(json).unwrap(), tls);
        }
        let err = serde_json::from_str::<Tls>(r#"{"issuer":"internal","email":"a@b.c"}"#);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("unknown field `email`"));
    }
}
