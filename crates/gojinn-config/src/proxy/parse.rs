//! `reverse_proxy [<matcher>] [<upstreams…>] [{ sub-directives }]`, Caddy's
//! syntax; Caddy's options this server lacks are refused by name.

use crate::caddyfile::Ctx;
use crate::directives::{first_time, no_block, one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::{Kind, Token};
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;
use crate::units;

use super::{
    check_range, status_spec, template, ActiveHealth, HttpVersion, LbPolicy, ReverseProxy,
    Transport, Upstream, DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_HEALTH_TIMEOUT_MS,
    DEFAULT_LB_TRY_INTERVAL_MS,
};

/// `reverse_proxy` sub-directives gojinn implements.
pub(crate) const SUBDIRECTIVES: &[&str] = &[
    "to",
    "lb_policy",
    "lb_retries",
    "lb_try_duration",
    "lb_try_interval",
    "health_uri",
    "health_port",
    "health_interval",
    "health_timeout",
    "health_status",
    "fail_duration",
    "max_fails",
    "unhealthy_status",
    "unhealthy_latency",
    "unhealthy_request_count",
    "flush_interval",
    "trusted_proxies",
    "header_up",
    "header_down",
    "transport",
];

/// Caddy's `reverse_proxy` sub-directives that gojinn does not implement.
pub(crate) const UNSUPPORTED_SUBDIRECTIVES: &[&str] = &[
    "dynamic",
    "lb_retry_match",
    "health_upstream",
    "health_passes",
    "health_fails",
    "health_method",
    "health_request_body",
    "health_body",
    "health_follow_redirects",
    "health_headers",
    "request_buffers",
    "response_buffers",
    "stream_timeout",
    "stream_close_delay",
    "method",
    "rewrite",
    "handle_response",
    "replace_status",
    "copy_response",
    "copy_response_headers",
    "buffer_requests",
    "buffer_responses",
    "max_buffer_size",
    "verbose_logs",
];

/// Caddy's `private_ranges` for `trusted_proxies`.
const PRIVATE_RANGES: &[&str] = &[
    "192.168.0.0/16",
    "172.16.0.0/12",
    "10.0.0.0/8",
    "127.0.0.1/8",
    "fd00::/8",
    "::1",
];

/// The scheme the upstreams were written with, and where.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    H2c,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
            Scheme::H2c => "h2c://",
        }
    }
}

struct Parsing {
    p: ReverseProxy,
    /// The config file's directory, for `tls_trusted_ca_certs`.
    base: std::path::PathBuf,
    /// The first upstream with an explicit scheme, and it.
    scheme: Option<(Scheme, Pos, String)>,
    health_interval: Option<Pos>,
    health_timeout: Option<Pos>,
    health_status: Option<u16>,
    health_port: Option<u16>,
    health_uri: Option<String>,
}

/// Parses one `reverse_proxy` directive into a route.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (name, args) = split(node)?;
    let (matcher, upstreams) = crate::directives::leading_matcher(cx, args)?;
    let mut st = Parsing {
        p: ReverseProxy {
            upstreams: Vec::new(),
            lb_policy: LbPolicy::default(),
            lb_try_duration_ms: 0,
            lb_try_interval_ms: DEFAULT_LB_TRY_INTERVAL_MS,
            lb_retries: 0,
            active_health: None,
            passive_health: Default::default(),
            flush_interval_ms: None,
            trusted_proxies: Vec::new(),
            header_up: Vec::new(),
            header_down: Vec::new(),
            transport: Transport::default(),
            origin: Some(cx.sources.place(name.pos)),
        },
        base: cx.base.clone(),
        scheme: None,
        health_interval: None,
        health_timeout: None,
        health_status: None,
        health_port: None,
        health_uri: None,
    };
    for u in upstreams {
        upstream(&mut st, u)?;
    }
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for sub in node.block.iter().flat_map(|b| &b.nodes) {
        sub_directive(&mut st, sub, &mut seen)?;
    }
    if st.p.upstreams.is_empty() {
        return Err(PosError::new(
            name.pos,
            "`reverse_proxy` needs at least one upstream, e.g. `reverse_proxy localhost:8080`",
        ));
    }
    finish_health(&mut st, name)?;
    let t = &st.p.transport;
    if t.tls && t.versions.contains(&HttpVersion::H2c) {
        return Err(PosError::new(
            name.pos,
            "`reverse_proxy` cannot speak h2c (cleartext HTTP/2) over TLS: remove `h2c` from `versions`, or use `http://` upstreams without `tls`",
        ));
    }
    Ok(matcher.route(None, Handler::ReverseProxy(st.p)))
}

fn finish_health(st: &mut Parsing, name: &Token) -> PResult<()> {
    match st.health_uri.take() {
        Some(uri) => {
            st.p.active_health = Some(ActiveHealth {
                uri,
                port: st.health_port,
                interval_ms: st
                    .p
                    .active_health
                    .as_ref()
                    .map_or(DEFAULT_HEALTH_INTERVAL_MS, |h| h.interval_ms),
                timeout_ms: st
                    .p
                    .active_health
                    .as_ref()
                    .map_or(DEFAULT_HEALTH_TIMEOUT_MS, |h| h.timeout_ms),
                status: st.health_status,
            });
            Ok(())
        }
        None => {
            let stray = [st.health_interval, st.health_timeout]
                .into_iter()
                .flatten()
                .next();
            match stray.or_else(|| {
                (st.health_port.is_some() || st.health_status.is_some()).then_some(name.pos)
            }) {
                Some(pos) => Err(PosError::new(
                    pos,
                    "active health checks need `health_uri`, e.g. `health_uri /health`",
                )),
                None => Ok(()),
            }
        }
    }
}

/// One upstream address: `host:port`, `:port`, `http://host[:port]`,
/// `https://host[:port]`, `h2c://host[:port]`.
fn upstream(st: &mut Parsing, t: &Token) -> PResult<()> {
    let text = t.text.as_str();
    let err = |m: String| PosError::new(t.pos, m);
    if text.contains('{') {
        return Err(err(format!(
            "upstream `{text}`: placeholders in upstream addresses are not supported by gojinn"
        )));
    }
    if text.starts_with("unix/") || text.starts_with("srv+") {
        return Err(err(format!(
            "upstream `{text}`: unix sockets and SRV upstreams are not supported by gojinn; write `host:port`"
        )));
    }
    let (scheme, rest) = match text.split_once("://") {
        Some(("http", r)) => (Some(Scheme::Http), r),
        Some(("https", r)) => (Some(Scheme::Https), r),
        Some(("h2c", r)) => (Some(Scheme::H2c), r),
        Some((s, _)) => {
            return Err(err(format!(
                "upstream `{text}`: unsupported scheme `{s}://` (use `http://`, `https://` or `h2c://`)"
            )))
        }
        None => (None, text),
    };
    if rest.contains(['/', '?', '#']) {
        return Err(err(format!(
            "upstream `{text}`: an upstream address has no path; strip or change the path with `handle_path` instead"
        )));
    }
    let default_port = if scheme == Some(Scheme::Https) {
        443
    } else {
        80
    };
    let (host, port) = split_host_port(rest).ok_or_else(|| {
        err(format!(
            "invalid upstream `{text}`: expected `host:port`, e.g. `localhost:8080`"
        ))
    })?;
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                err(format!(
                    "invalid upstream `{text}`: port `{p}` is not a number from 0 to 65535"
                ))
            })?,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    let dial = format!("{host}:{port}");
    super::check_dial(&dial).map_err(err)?;
    if let Some(s) = scheme {
        match &st.scheme {
            Some((first, at, first_text)) if *first != s => {
                return Err(err(format!(
                    "upstream `{text}` uses `{}` but `{first_text}` (line {}, column {}) uses `{}`: all upstreams of one `reverse_proxy` use one scheme",
                    s.name(),
                    at.line,
                    at.col,
                    first.name()
                )))
            }
            Some(_) => {}
            None => st.scheme = Some((s, t.pos, text.to_owned())),
        }
        match s {
            Scheme::Https => st.p.transport.tls = true,
            Scheme::H2c => st.p.transport.versions = vec![HttpVersion::H2c],
            Scheme::Http => {}
        }
    }
    st.p.upstreams.push(Upstream { dial });
    Ok(())
}

/// `host:port`, `[v6]:port`, `:port`, `host`; `None` when malformed.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        let host = &s[..inner.len() + 2];
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => None,
        Some((h, p)) => Some((h, Some(p))),
        None if s.is_empty() => None,
        None => Some((s, None)),
    }
}

pub(super) fn at(t: &Token) -> impl Fn(String) -> PosError + '_ {
    move |e| PosError::new(t.pos, e)
}

fn duration(node: &Node, example: &str) -> PResult<u64> {
    let v = one_arg(node, example)?;
    units::parse_duration_ms(&v.text).map_err(at(v))
}

pub(super) fn positive_duration(node: &Node, example: &str) -> PResult<u64> {
    let v = one_arg(node, example)?;
    let ms = units::parse_duration_ms(&v.text).map_err(at(v))?;
    if ms == 0 {
        return Err(PosError::new(
            v.pos,
            format!("invalid duration `{}`: it must be above zero", v.text),
        ));
    }
    Ok(ms)
}

fn count(node: &Node, example: &str) -> PResult<u32> {
    let v = one_arg(node, example)?;
    v.text
        .parse::<u32>()
        .ok()
        .filter(|_| v.text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            PosError::new(
                v.pos,
                format!(
                    "invalid number `{}`: expected a whole number, e.g. `{example}`",
                    v.text
                ),
            )
        })
}

fn sub_directive<'n>(
    st: &mut Parsing,
    node: &'n Node,
    seen: &mut Vec<(&'n str, Pos)>,
) -> PResult<()> {
    let (name, args) = split(node)?;
    let sub = name.text.as_str();
    if !SUBDIRECTIVES.contains(&sub) {
        return Err(unknown(name));
    }
    if !matches!(sub, "to" | "header_up" | "header_down" | "trusted_proxies") {
        first_time(seen, sub, name.pos, |first| {
            format!(
                "duplicate `{sub}` (first set at line {}, column {})",
                first.line, first.col
            )
        })?;
    }
    if sub != "transport" {
        no_block(node, sub)?;
    }
    let passive = &mut st.p.passive_health;
    match sub {
        "to" => {
            if args.is_empty() {
                return Err(PosError::new(
                    name.pos,
                    "`to` needs at least one upstream, e.g. `to localhost:8080`",
                ));
            }
            for u in args {
                upstream(st, u)?;
            }
        }
        "lb_policy" => st.p.lb_policy = super::rules::policy(name, args)?,
        "lb_retries" => st.p.lb_retries = count(node, "lb_retries 2")?,
        "lb_try_duration" => st.p.lb_try_duration_ms = duration(node, "lb_try_duration 5s")?,
        "lb_try_interval" => st.p.lb_try_interval_ms = duration(node, "lb_try_interval 250ms")?,
        "health_uri" => {
            let v = one_arg(node, "health_uri /health")?;
            template::check_uri(&v.text).map_err(at(v))?;
            st.health_uri = Some(v.text.clone());
        }
        "health_port" => {
            let v = one_arg(node, "health_port 8081")?;
            let port = v
                .text
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0 && v.text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    PosError::new(
                        v.pos,
                        format!(
                            "invalid health_port `{}`: expected a port from 1 to 65535",
                            v.text
                        ),
                    )
                })?;
            st.health_port = Some(port);
        }
        "health_interval" | "health_timeout" => {
            let ms = positive_duration(node, &format!("{sub} 10s"))?;
            let h = st.p.active_health.get_or_insert(ActiveHealth {
                uri: String::new(),
                port: None,
                interval_ms: DEFAULT_HEALTH_INTERVAL_MS,
                timeout_ms: DEFAULT_HEALTH_TIMEOUT_MS,
                status: None,
            });
            if sub == "health_interval" {
                h.interval_ms = ms;
                st.health_interval = Some(name.pos);
            } else {
                h.timeout_ms = ms;
                st.health_timeout = Some(name.pos);
            }
        }
        "health_status" => {
            let v = one_arg(node, "health_status 2xx")?;
            st.health_status = Some(status_spec(&v.text).map_err(at(v))?);
        }
        "fail_duration" => passive.fail_duration_ms = duration(node, "fail_duration 30s")?,
        "max_fails" => {
            let n = count(node, "max_fails 3")?;
            if n == 0 {
                return Err(PosError::new(name.pos, "`max_fails` must be at least 1"));
            }
            passive.max_fails = n;
        }
        "unhealthy_status" => {
            if args.is_empty() {
                return Err(PosError::new(
                    name.pos,
                    "`unhealthy_status` needs at least one status, e.g. `unhealthy_status 5xx`",
                ));
            }
            for a in args {
                passive
                    .unhealthy_status
                    .push(status_spec(&a.text).map_err(at(a))?);
            }
        }
        "unhealthy_latency" => {
            passive.unhealthy_latency_ms = Some(positive_duration(node, "unhealthy_latency 5s")?)
        }
        "unhealthy_request_count" => {
            passive.unhealthy_request_count = count(node, "unhealthy_request_count 100")?
        }
        "flush_interval" => {
            let v = one_arg(node, "flush_interval -1")?;
            st.p.flush_interval_ms = Some(match v.text.strip_prefix('-') {
                Some(d) => {
                    units::parse_duration_ms(d)
                        .or_else(|_| d.parse::<u64>().map_err(|_| String::new()))
                        .map_err(|_| {
                            PosError::new(
                                v.pos,
                                format!("invalid flush_interval `{}`: expected a duration, or `-1` to flush after every write", v.text),
                            )
                        })?;
                    -1
                }
                None => i64::try_from(units::parse_duration_ms(&v.text).map_err(at(v))?)
                    .unwrap_or(i64::MAX),
            });
        }
        "trusted_proxies" => {
            if args.is_empty() {
                return Err(PosError::new(
                    name.pos,
                    "`trusted_proxies` needs ranges, e.g. `trusted_proxies private_ranges` or `trusted_proxies 10.0.0.0/8`",
                ));
            }
            for a in args {
                if a.text == "private_ranges" {
                    st.p.trusted_proxies
                        .extend(PRIVATE_RANGES.iter().map(|r| (*r).to_owned()));
                } else {
                    check_range(&a.text).map_err(at(a))?;
                    st.p.trusted_proxies.push(a.text.clone());
                }
            }
        }
        "header_up" | "header_down" => {
            let op = super::rules::header_op(name, args)?;
            if sub == "header_up" {
                st.p.header_up.push(op);
            } else {
                st.p.header_down.push(op);
            }
        }
        "transport" => super::transport::parse(&mut st.p.transport, &st.base, node, name, args)?,
        _ => return Err(unknown(name)),
    }
    Ok(())
}

fn unknown(name: &Token) -> PosError {
    let s = name.text.as_str();
    let message = if UNSUPPORTED_SUBDIRECTIVES.contains(&s) {
        format!("reverse_proxy sub-directive `{s}` is not supported by gojinn")
    } else if crate::names::DIRECTIVES.contains(&s)
        || crate::names::UNSUPPORTED_DIRECTIVES.contains(&s)
    {
        format!(
            "`{s}` is a directive, not a reverse_proxy sub-directive: is a `}}` missing before it?"
        )
    } else if name.kind != Kind::Word {
        format!("unexpected `{s}` in `reverse_proxy`: expected a sub-directive such as `to` or `lb_policy`")
    } else {
        format!(
            "unknown reverse_proxy sub-directive `{s}`{}",
            hint(s, &[SUBDIRECTIVES, UNSUPPORTED_SUBDIRECTIVES])
        )
    };
    PosError::new(name.pos, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(split_host_port("a:1"), Some(("a", Some("1"))));
        assert_eq!(split_host_port(":1"), Some(("", Some("1"))));
        assert_eq!(split_host_port("a"), Some(("a", None)));
        assert_eq!(split_host_port("[::1]:8"), Some(("[::1]", Some("8"))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]", None)));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("[::1"), None);
        assert_eq!(split_host_port(""), None);
    }
}
