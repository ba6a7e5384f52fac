//! Header rules: hop-by-hop headers dropped both ways, `X-Forwarded-*` as
//! Caddy sets them, then `header_up` on the request and `header_down` on the
//! response, in the order written.

use std::net::IpAddr;

use gojinn_config::proxy::template::{Part, Placeholder as Var, Template};
use gojinn_config::proxy::{parse_cidr, HeaderOp};
use gojinn_config::ReverseProxy;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use regex::Regex;

use crate::ClientInfo;

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded;
/// `Connection` may name more.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// One header operation, its templates parsed and its regex compiled.
enum Op {
    Set(HeaderName, Template),
    Add(HeaderName, Template),
    Delete(HeaderName),
    Replace(HeaderName, Regex, Template),
}

/// The handler's header rules, compiled once per load.
pub(crate) struct HeaderRules {
    up: Vec<Op>,
    down: Vec<Op>,
    trusted: Vec<(IpAddr, u8)>,
}

impl HeaderRules {
    pub(crate) fn new(cfg: &ReverseProxy) -> Result<HeaderRules, String> {
        let compile =
            |ops: &[HeaderOp]| -> Result<Vec<Op>, String> { ops.iter().map(compile_op).collect() };
        let trusted = cfg
            .trusted_proxies
            .iter()
            .map(|r| match r.parse::<IpAddr>() {
                Ok(ip) => Ok((ip, if ip.is_ipv4() { 32 } else { 128 })),
                Err(_) => parse_cidr(r).ok_or_else(|| format!("invalid trusted proxy range `{r}`")),
            })
            .collect::<Result<_, _>>()?;
        Ok(HeaderRules {
            up: compile(&cfg.header_up)?,
            down: compile(&cfg.header_down)?,
            trusted,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted
            .iter()
            .any(|(net, bits)| in_net(ip, *net, *bits))
    }

    /// Applies `header_up` (`down` false) or `header_down` (`down` true) to
    /// `headers`, for the request `req` of `client` proxied to `upstream`.
    pub(crate) fn apply(
        &self,
        down: bool,
        headers: &mut HeaderMap,
        req: &http::request::Parts,
        client: &ClientInfo,
        upstream: &str,
    ) {
        let ops = if down { &self.down } else { &self.up };
        apply(
            ops,
            headers,
            &Vars {
                req,
                client,
                upstream,
            },
        );
    }
}

fn compile_op(op: &HeaderOp) -> Result<Op, String> {
    let name = |f: &str| {
        HeaderName::from_bytes(f.as_bytes()).map_err(|_| format!("invalid header name `{f}`"))
    };
    Ok(match op {
        HeaderOp::Set { field, value } => Op::Set(name(field)?, Template::parse(value)?),
        HeaderOp::Add { field, value } => Op::Add(name(field)?, Template::parse(value)?),
        HeaderOp::Delete { field } => Op::Delete(name(field)?),
        HeaderOp::Replace {
            field,
            find,
            replace,
        } => Op::Replace(
            name(field)?,
            Regex::new(find).map_err(|e| format!("invalid regular expression `{find}`: {e}"))?,
            Template::parse(replace)?,
        ),
        // The config refuses it for proxies (`proxy::check`).
        HeaderOp::Default { field, .. } => {
            return Err(format!("`?{field}` is not supported in proxy headers"))
        }
    })
}

/// Whether `ip` is in `net/bits`.
fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// True when the request asks to switch protocols (`Connection: upgrade`
/// with an `Upgrade` header).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes the hop-by-hop headers, and those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
}

/// The request headers as every try sends them, before `header_up`: hop-by-hop
/// headers removed (an upgrade keeps `Connection: upgrade` and `Upgrade`),
/// `Host` kept (HTTP/2 clients send `:authority` instead: it becomes `Host`),
/// `X-Forwarded-For`, `-Proto` and `-Host` set. Returns whether the request is
/// an upgrade.
pub(crate) fn prepare_request(
    parts: &mut http::request::Parts,
    client: &ClientInfo,
    rules: &HeaderRules,
) -> bool {
    let headers = &mut parts.headers;
    let upgrade = is_upgrade(headers)
        .then(|| headers.get(UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(headers);
    if let Some(protocol) = &upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol.clone());
    }
    if !headers.contains_key(HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(HOST, v);
        }
    }
    let ip = client.remote.ip().to_canonical();
    let trusted = rules.trusts(ip);
    let ip_text = ip.to_string();
    let xff = match headers.get_all(&X_FORWARDED_FOR).iter().next() {
        Some(_) if trusted => {
            let prior: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            format!("{}, {ip_text}", prior.join(", "))
        }
        _ => ip_text,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        let proto = if client.tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match headers.get(HOST).cloned() {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host);
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    upgrade.is_some()
}

/// The response headers before `header_down`: hop-by-hop headers removed.
pub(crate) fn prepare_response(headers: &mut HeaderMap, upgrade: bool) {
    let protocol = upgrade.then(|| headers.get(UPGRADE).cloned()).flatten();
    strip_hop_by_hop(headers);
    if let Some(p) = protocol {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, p);
    }
}

/// What templates read.
struct Vars<'a> {
    req: &'a http::request::Parts,
    client: &'a ClientInfo,
    upstream: &'a str,
}

impl Vars<'_> {
    fn host_port(&self) -> &str {
        self.req
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("")
    }

    fn push(&self, var: &Var, out: &mut String) {
        use std::fmt::Write;
        let ip = self.client.remote.ip().to_canonical();
        match var {
            Var::Host => {
                let hp = self.host_port();
                let host = if hp.starts_with('[') {
                    hp.split_inclusive(']').next().unwrap_or(hp)
                } else {
                    hp.split(':').next().unwrap_or(hp)
                };
                out.push_str(host);
            }
            Var::HostPort => out.push_str(self.host_port()),
            Var::RemoteHost => {
                let _ = write!(out, "{ip}");
            }
            Var::RemotePort => {
                let _ = write!(out, "{}", self.client.remote.port());
            }
            Var::Remote => {
                let _ = write!(
                    out,
                    "{}",
                    std::net::SocketAddr::new(ip, self.client.remote.port())
                );
            }
            Var::Scheme => out.push_str(if self.client.tls { "https" } else { "http" }),
            Var::Method => out.push_str(self.req.method.as_str()),
            Var::Uri => out.push_str(self.req.uri.path_and_query().map_or("/", |pq| pq.as_str())),
            Var::Path => out.push_str(self.req.uri.path()),
            Var::Query => out.push_str(self.req.uri.query().unwrap_or("")),
            Var::UpstreamHostPort => out.push_str(self.upstream),
            Var::UpstreamHost => out.push_str(
                self.upstream
                    .rsplit_once(':')
                    .map_or(self.upstream, |(h, _)| h),
            ),
            Var::UpstreamPort => {
                out.push_str(self.upstream.rsplit_once(':').map_or("", |(_, p)| p))
            }
            Var::Header(name) => {
                if let Some(v) = self
                    .req
                    .headers
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                {
                    out.push_str(v);
                }
            }
            // The config refuses the others in proxy headers (`template::var`).
            _ => {}
        }
    }

    fn render(&self, t: &Template) -> String {
        let mut out = String::new();
        for p in &t.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => self.push(v, &mut out),
            }
        }
        out
    }
}

fn apply(ops: &[Op], headers: &mut HeaderMap, vars: &Vars<'_>) {
    for op in ops {
        match op {
            Op::Set(name, t) => match HeaderValue::from_str(&vars.render(t)) {
                Ok(v) => {
                    headers.insert(name.clone(), v);
                }
                Err(_) => {
                    headers.remove(name);
                }
            },
            Op::Add(name, t) => {
                if let Ok(v) = HeaderValue::from_str(&vars.render(t)) {
                    headers.append(name.clone(), v);
                }
            }
            Op::Delete(name) => {
                headers.remove(name);
            }
            Op::Replace(name, re, t) => {
                let replacement = vars.render(t);
                let values: Vec<HeaderValue> = headers
                    .get_all(name)
                    .iter()
                    .map(|v| match v.to_str() {
                        Ok(s) => HeaderValue::from_str(&re.replace_all(s, replacement.as_str()))
                            .unwrap_or_else(|_| v.clone()),
                        Err(_) => v.clone(),
                    })
                    .collect();
                headers.remove(name);
                for v in values {
                    headers.append(name.clone(), v);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_net(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_net(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_net(ip("::ffff:127.0.0.1"), ip("127.0.0.1"), 8));
        assert!(in_net(ip("::1"), ip("::1"), 128));
        assert!(in_net(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(!in_net(ip("::1"), ip("127.0.0.1"), 8));
    }
}
