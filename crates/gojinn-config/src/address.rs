//! Site addresses: Caddy's `[scheme://]host[:port]` forms, several per
//! block. Whether an address is HTTPS is decided per site by `autohttps`,
//! which needs the whole block.

use crate::autohttps::Scheme;
use crate::error::{PResult, Pos, PosError};
use crate::lexer::{self, Token};
use crate::model::{Address, AutoHttps, AutoHttpsOptions};
use crate::{names, validate};

/// One address of a site block as written.
pub(crate) struct SiteKey {
    pub(crate) address: Address,
    pub(crate) scheme: Scheme,
    pub(crate) pos: Pos,
    pub(crate) text: String,
}

/// The addresses of one site block; several per token when comma-separated.
pub(crate) fn site_keys(keys: &[&Token], o: &AutoHttpsOptions) -> PResult<Vec<SiteKey>> {
    let mut out = Vec::new();
    for key in keys {
        let text = key.text.as_str();
        if text.starts_with('(') && text.ends_with(')') {
            return Err(PosError::new(
                key.pos,
                format!("snippets (`{text}`) are not supported by gojinn"),
            ));
        }
        if text.starts_with("&(") {
            return Err(PosError::new(
                key.pos,
                format!("named routes (`{text}`) are not supported by gojinn"),
            ));
        }
        if names::DIRECTIVES.contains(&text) || names::UNSUPPORTED_DIRECTIVES.contains(&text) {
            return Err(PosError::new(
                key.pos,
                format!("expected a site address, found the directive `{text}`; put directives in a site block such as `:8080 {{ … }}`"),
            ));
        }
        if text.split(',').all(str::is_empty) {
            // `""` or `,`: a site that could never be reached (found by fuzzing).
            let what = if text.is_empty() {
                "the site address is empty".to_owned()
            } else {
                format!("the site address `{text}` names no address")
            };
            return Err(PosError::new(
                key.pos,
                format!("{what}; give a port, e.g. `:8080`"),
            ));
        }
        let mut offset = usize::from(key.kind == lexer::Kind::Quoted);
        for piece in text.split(',') {
            if !piece.is_empty() {
                let pos = Pos {
                    col: key.pos.col + offset,
                    ..key.pos
                };
                let (address, scheme) =
                    parse_address(piece, o).map_err(|m| PosError::new(pos, m))?;
                out.push(SiteKey {
                    address,
                    scheme,
                    pos,
                    text: piece.to_owned(),
                });
            }
            offset += piece.chars().count() + 1;
        }
    }
    Ok(out)
}

/// Splits `host:port`; `[v6]:port` keeps its brackets. `Ok((host, None))` when
/// there is no port; `Err` for an IPv6 address without brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(String, Option<String>), ()> {
    if s.starts_with('[') {
        let close = s.find(']').ok_or(())?;
        let (host, after) = s.split_at(close + 1);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_owned(), Some(port.to_owned()))),
            None if after.is_empty() => Ok((host.to_owned(), None)),
            None => Err(()),
        };
    }
    match s.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(()),
        Some((host, port)) => Ok((host.to_owned(), Some(port.to_owned()))),
        None => Ok((s.to_owned(), None)),
    }
}

/// Parses one site address. A port left out is the `http_port` after
/// `http://` (or for any host under `auto_https off`), else the `https_port`.
pub(crate) fn parse_address(text: &str, o: &AutoHttpsOptions) -> Result<(Address, Scheme), String> {
    let lower = text.to_ascii_lowercase();
    let (rest, scheme) = if let Some(rest) = lower.strip_prefix("http://") {
        (rest, Scheme::Http)
    } else if let Some(rest) = lower.strip_prefix("https://") {
        (rest, Scheme::Https)
    } else if let Some((scheme, _)) = lower.split_once("://") {
        return Err(format!(
            "address `{text}` has the unsupported scheme `{scheme}`: use `http://`, `https://` or no scheme"
        ));
    } else {
        (lower.as_str(), Scheme::Unstated)
    };
    if rest.contains('/') {
        return Err(format!(
            "address `{text}` has a path; site addresses are a host and a port only: \
             match paths inside the block, e.g. `handle /api/* {{ … }}`"
        ));
    }
    let Ok((host, port)) = split_host_port(rest) else {
        return Err(format!(
            "invalid address `{text}`: write IPv6 hosts in brackets, e.g. `[::1]:8080`"
        ));
    };
    let port: u16 = match port {
        None if scheme == Scheme::Http => o.http_port,
        None if scheme == Scheme::Https => o.https_port,
        None if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!(
                "address `{text}` has no `:` before the port; did you mean `:{host}`?"
            ))
        }
        None if o.mode == AutoHttps::Off => o.http_port,
        None => o.https_port,
        Some(p) if p.is_empty() => return Err(format!("address `{text}` has an empty port")),
        Some(p) => p.parse().map_err(|_| {
            format!("invalid port `{p}` in address `{text}`: a port is a number from 0 to 65535")
        })?,
    };
    if !host.is_empty() {
        validate::site_host(&host)?;
    }
    Ok((
        Address {
            host: (!host.is_empty()).then_some(host),
            port,
        },
        scheme,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn addr_with(text: &str, o: &AutoHttpsOptions) -> Result<(Option<String>, u16), String> {
        parse_address(text, o).map(|(a, _)| (a.host, a.port))
    }

    fn addr(text: &str) -> Result<(Option<String>, u16), String> {
        addr_with(text, &AutoHttpsOptions::default())
    }

    #[test]
    fn addresses() {
        assert_eq!(addr(":8080"), Ok((None, 8080)));
        assert_eq!(addr("localhost:8080"), Ok((Some("localhost".into()), 8080)));
        assert_eq!(
            addr("Example.COM:9000"),
            Ok((Some("example.com".into()), 9000))
        );
        assert_eq!(addr("http://:8081"), Ok((None, 8081)));
        assert_eq!(addr("http://a.test:1"), Ok((Some("a.test".into()), 1)));
        assert_eq!(addr("http://a.test"), Ok((Some("a.test".into()), 80)));
        assert_eq!(addr("[::1]:8080"), Ok((Some("[::1]".into()), 8080)));
        assert_eq!(addr(":0"), Ok((None, 0)));
    }

    #[test]
    fn a_host_without_port_takes_the_https_port() {
        for (text, host) in [
            ("example.com", "example.com"),
            ("localhost", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "[::1]"),
            ("*.example.com", "*.example.com"),
        ] {
            assert_eq!(addr(text), Ok((Some(host.into()), 443)), "{text}");
            assert_eq!(
                parse_address(text, &AutoHttpsOptions::default()).unwrap().1,
                Scheme::Unstated
            );
        }
        let o = AutoHttpsOptions {
            http_port: 8080,
            https_port: 8443,
            ..AutoHttpsOptions::default()
        };
        assert_eq!(addr_with("a.test", &o), Ok((Some("a.test".into()), 8443)));
        assert_eq!(
            addr_with("https://a.test", &o),
            Ok((Some("a.test".into()), 8443))
        );
        assert_eq!(
            addr_with("http://a.test", &o),
            Ok((Some("a.test".into()), 8080))
        );
        // `auto_https off`: no implicit HTTPS, so the default is the HTTP port.
        let off = AutoHttpsOptions {
            mode: AutoHttps::Off,
            ..o
        };
        assert_eq!(addr_with("a.test", &off), Ok((Some("a.test".into()), 8080)));
        assert_eq!(
            addr_with("https://a.test", &off),
            Ok((Some("a.test".into()), 8443))
        );
    }

    #[test]
    fn address_errors() {
        assert_eq!(
            addr("https://x.test:8443"),
            Ok((Some("x.test".into()), 8443))
        );
        assert_eq!(addr("https://x.test"), Ok((Some("x.test".into()), 443)));
        assert_eq!(
            parse_address("https://:8443", &AutoHttpsOptions::default())
                .unwrap()
                .1,
            Scheme::Https
        );
        assert_eq!(
            addr("8080").unwrap_err(),
            "address `8080` has no `:` before the port; did you mean `:8080`?"
        );
        assert!(addr(":99999")
            .unwrap_err()
            .starts_with("invalid port `99999`"));
        assert!(addr("localhost:").unwrap_err().contains("empty port"));
        assert!(addr("::1:80").unwrap_err().contains("brackets"));
        assert!(addr("[::1").unwrap_err().contains("brackets"));
        assert!(addr("a.test:80/api").unwrap_err().contains("has a path"));
        assert!(addr("ftp://a:1")
            .unwrap_err()
            .contains("unsupported scheme `ftp`"));
        assert!(addr("a.*.test:80")
            .unwrap_err()
            .starts_with("wildcard host"));
        assert!(addr("*.1.2.3.4")
            .unwrap_err()
            .starts_with("invalid wildcard host"));
        assert!(addr("*").unwrap_err().starts_with("wildcard host"));
        assert!(addr("a b:80").is_err());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("[::1]"), Ok(("[::1]".into(), None)));
        assert_eq!(split_host_port("[::1]x"), Err(()));
        assert_eq!(split_host_port(":1"), Ok((String::new(), Some("1".into()))));
    }
}
