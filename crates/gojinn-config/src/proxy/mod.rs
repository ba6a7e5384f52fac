//! `reverse_proxy`: the model of one proxy handler, its Caddyfile parser
//! ([`parse`]), the request-time header templates ([`template`]) and the checks
//! the JSON loader shares with the parser.
//!
//! The model is plain data, as the rest of [`crate::model`]; `gojinn-proxy`
//! turns it into upstream pools, health checkers and an HTTP client.

pub(crate) mod parse;
mod rules;
pub mod template;
mod transport;

use serde::{Deserialize, Serialize};

/// Default `transport http { dial_timeout … }`: 3 s, as in Caddy.
pub const DEFAULT_DIAL_TIMEOUT_MS: u64 = 3_000;
/// Default `lb_try_interval`: 250 ms, as in Caddy.
pub const DEFAULT_LB_TRY_INTERVAL_MS: u64 = 250;
/// Default `health_interval`: 30 s, as in Caddy.
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 30_000;
/// Default `health_timeout`: 5 s, as in Caddy.
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 5_000;
/// Default `max_fails`: one failure within `fail_duration` takes an upstream out.
pub const DEFAULT_MAX_FAILS: u32 = 1;

/// One `reverse_proxy` directive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReverseProxy {
    /// The backends, in the order written (`first` picks by this order).
    pub upstreams: Vec<Upstream>,
    /// How an upstream is chosen for a request.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lb_policy: LbPolicy,
    /// `lb_try_duration`: how long a request may keep trying upstreams, in ms
    /// (0: no time-based retries).
    #[serde(default, skip_serializing_if = "is_default")]
    pub lb_try_duration_ms: u64,
    /// `lb_try_interval`: the wait between two tries, in ms.
    #[serde(
        default = "default_try_interval",
        skip_serializing_if = "is_default_try_interval"
    )]
    pub lb_try_interval_ms: u64,
    /// `lb_retries`: how many times a failed request is tried again (0: only
    /// `lb_try_duration` limits the tries).
    #[serde(default, skip_serializing_if = "is_default")]
    pub lb_retries: u32,
    /// Active health checks, when `health_uri` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_health: Option<ActiveHealth>,
    /// Passive health checks (on when `fail_duration` is above zero).
    #[serde(default, skip_serializing_if = "is_default")]
    pub passive_health: PassiveHealth,
    /// `flush_interval`, in ms (negative: flush after every write). Responses
    /// are always forwarded frame by frame as they arrive, which satisfies any
    /// value; the option is kept for the JSON form and `gojinn adapt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<i64>,
    /// `trusted_proxies`: client networks (CIDR) whose `X-Forwarded-*` headers
    /// are kept and extended; from anyone else they are replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// `header_up`: changes to the request headers sent upstream, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_up: Vec<HeaderOp>,
    /// `header_down`: changes to the response headers sent back, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_down: Vec<HeaderOp>,
    /// `transport http { … }`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub transport: Transport,
    /// Where the directive was written (`file:line:col`), for load errors and
    /// log lines; not part of the JSON form.
    #[serde(skip)]
    pub origin: Option<String>,
}

/// One backend: `host:port`, the port always present (80 or 443 filled in
/// from the scheme when the address had none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// What is dialled: `host:port`, an IPv6 host in brackets.
    pub dial: String,
}

/// `lb_policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum LbPolicy {
    /// Any available upstream, at random (Caddy's default).
    #[default]
    Random,
    /// Available upstreams in turn.
    RoundRobin,
    /// The available upstream with the fewest requests in flight (ties at random).
    LeastConn,
    /// The first available upstream, in the order written.
    First,
    /// By a hash of the client's IP address.
    IpHash,
    /// By a hash of the request URI.
    UriHash,
    /// By a hash of a request header; at random when the request lacks it.
    Header {
        /// The header hashed.
        field: String,
    },
}

/// Active health checks: a request to every upstream every `interval_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealth {
    /// `health_uri`: path (and query) requested.
    pub uri: String,
    /// `health_port`: a port to check instead of the upstream's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `health_interval`, in ms.
    #[serde(default = "default_health_interval")]
    pub interval_ms: u64,
    /// `health_timeout`, in ms.
    #[serde(default = "default_health_timeout")]
    pub timeout_ms: u64,
    /// `health_status`: the status expected; a single digit `n` means any
    /// `nxx`. `None`: any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Passive health checks: failures of real requests counted for `fail_duration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    /// `fail_duration`: how long a failure is remembered, in ms; 0 turns passive
    /// checks off.
    #[serde(default, skip_serializing_if = "is_default")]
    pub fail_duration_ms: u64,
    /// `max_fails`: remembered failures that make an upstream unavailable.
    #[serde(
        default = "default_max_fails",
        skip_serializing_if = "is_default_max_fails"
    )]
    pub max_fails: u32,
    /// `unhealthy_status`: response statuses counted as failures (a single
    /// digit `n` means any `nxx`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy_status: Vec<u16>,
    /// `unhealthy_latency`: a response slower than this (to its headers) is a
    /// failure, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_latency_ms: Option<u64>,
    /// `unhealthy_request_count`: an upstream with this many requests in flight
    /// takes no more (0: no limit).
    #[serde(default, skip_serializing_if = "is_default")]
    pub unhealthy_request_count: u32,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            fail_duration_ms: 0,
            max_fails: DEFAULT_MAX_FAILS,
            unhealthy_status: Vec::new(),
            unhealthy_latency_ms: None,
            unhealthy_request_count: 0,
        }
    }
}

/// One `header_up` / `header_down` line: the operations of `header`, less
/// `?Field` and deleting by prefix, which [`check`] refuses.
pub use crate::handlers::HeaderOp;

/// An HTTP version spoken to upstreams (`transport http { versions … }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.1.
    #[serde(rename = "1.1")]
    H1,
    /// HTTP/2 over TLS.
    #[serde(rename = "2")]
    H2,
    /// HTTP/2 over cleartext, prior knowledge.
    #[serde(rename = "h2c")]
    H2c,
}

/// `transport http { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// `dial_timeout`: time to open a connection, in ms.
    #[serde(
        default = "default_dial_timeout",
        skip_serializing_if = "is_default_dial_timeout"
    )]
    pub dial_timeout_ms: u64,
    /// `response_header_timeout`: time from the request sent to the response
    /// head received, in ms; `None` waits as long as the client does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_timeout_ms: Option<u64>,
    /// `tls` (or an `https://` upstream): upstreams are spoken to over TLS.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls: bool,
    /// `tls_insecure_skip_verify`: the upstream's certificate is not checked.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tls_insecure_skip_verify: bool,
    /// `tls_server_name`: the name sent by SNI and checked in the certificate,
    /// instead of the upstream's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// `tls_trusted_ca_certs`: PEM files of the CAs that upstream certificates
    /// must chain to, instead of the public web PKI roots (absolute paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_trusted_ca_certs: Vec<std::path::PathBuf>,
    /// `versions`: HTTP versions offered; empty means `1.1 2`, as in Caddy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<HttpVersion>,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            dial_timeout_ms: DEFAULT_DIAL_TIMEOUT_MS,
            response_header_timeout_ms: None,
            tls: false,
            tls_insecure_skip_verify: false,
            tls_server_name: None,
            tls_trusted_ca_certs: Vec::new(),
            versions: Vec::new(),
        }
    }
}

impl Transport {
    /// True when upstreams are spoken to in HTTP/2 over cleartext only (`versions h2c`
    /// and no `1.1`, or an `h2c://` upstream).
    pub fn h2c(&self) -> bool {
        self.versions.contains(&HttpVersion::H2c) && !self.versions.contains(&HttpVersion::H1)
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
fn default_try_interval() -> u64 {
    DEFAULT_LB_TRY_INTERVAL_MS
}
fn is_default_try_interval(v: &u64) -> bool {
    *v == DEFAULT_LB_TRY_INTERVAL_MS
}
fn default_health_interval() -> u64 {
    DEFAULT_HEALTH_INTERVAL_MS
}
fn default_health_timeout() -> u64 {
    DEFAULT_HEALTH_TIMEOUT_MS
}
fn default_max_fails() -> u32 {
    DEFAULT_MAX_FAILS
}
fn is_default_max_fails(v: &u32) -> bool {
    *v == DEFAULT_MAX_FAILS
}
fn default_dial_timeout() -> u64 {
    DEFAULT_DIAL_TIMEOUT_MS
}
fn is_default_dial_timeout(v: &u64) -> bool {
    *v == DEFAULT_DIAL_TIMEOUT_MS
}

/// Whether `status` (a code, or a class digit `n` for `nxx`) covers `code`.
pub fn status_covers(status: u16, code: u16) -> bool {
    if status < 10 {
        code / 100 == status
    } else {
        code == status
    }
}

/// Checks a status of `health_status` / `unhealthy_status`: `2xx`-style
/// classes become their digit.
pub(crate) fn status_spec(text: &str) -> Result<u16, String> {
    let bad = || {
        format!("invalid status `{text}`: expected a code such as `200` or a class such as `5xx`")
    };
    if let Some(class) = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX")) {
        return match class.parse::<u16>() {
            Ok(d @ 1..=5) if class.len() == 1 => Ok(d),
            _ => Err(bad()),
        };
    }
    match text.parse::<u16>() {
        Ok(code @ 100..=599) if text.len() == 3 => Ok(code),
        _ => Err(bad()),
    }
}

/// Checks a status of the JSON form (a code 100–599 or a class digit 1–5).
pub(crate) fn check_status(code: u16) -> Result<(), String> {
    if (1..=5).contains(&code) || (100..=599).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "invalid status `{code}`: expected a code 100–599, or a class digit 1–5 (`5` for 5xx)"
        ))
    }
}

/// Checks an upstream's `dial` (`host:port`) as the JSON form has it.
pub(crate) fn check_dial(dial: &str) -> Result<(), String> {
    let (host, port) = dial
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid upstream `{dial}`: expected `host:port`"))?;
    if port.is_empty() || port.parse::<u16>().is_err() || !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "invalid upstream `{dial}`: the port must be a number from 0 to 65535"
        ));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.is_empty()
        || bare
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@{}".contains(c))
        || (bare.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err())
    {
        return Err(format!(
            "invalid upstream `{dial}`: the host must be a name or an IP address"
        ));
    }
    Ok(())
}

/// Checks a header name of `header_up` / `header_down`.
pub(crate) fn check_field(field: &str) -> Result<(), String> {
    if !field.is_empty() && field.bytes().all(is_token_byte) {
        Ok(())
    } else {
        Err(format!(
            "invalid header name `{field}`: it must be a non-empty HTTP token (letters, digits and `!#$%&'*+-.^_|~`)"
        ))
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a `trusted_proxies` range: an IP address or a CIDR network.
pub(crate) fn check_range(range: &str) -> Result<(), String> {
    if range.parse::<std::net::IpAddr>().is_ok() || parse_cidr(range).is_some() {
        Ok(())
    } else {
        Err(format!(
            "invalid trusted proxy range `{range}`: expected an IP address or a CIDR range such as `10.0.0.0/8`"
        ))
    }
}

/// Parses `addr/bits`.
pub fn parse_cidr(range: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, bits) = range.split_once('/')?;
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|_| bits.bytes().all(|b| b.is_ascii_digit()))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((addr, bits))
}

/// Every check the JSON loader makes of a proxy, as `(field, message)`.
pub(crate) fn check(p: &ReverseProxy) -> Result<(), (&'static str, String)> {
    if p.upstreams.is_empty() {
        return Err((
            "upstreams",
            "`reverse_proxy` needs at least one upstream".to_owned(),
        ));
    }
    for u in &p.upstreams {
        check_dial(&u.dial).map_err(|m| ("upstreams", m))?;
    }
    if let LbPolicy::Header { field } = &p.lb_policy {
        check_field(field).map_err(|m| ("lb_policy", m))?;
    }
    if let Some(h) = &p.active_health {
        template::check_uri(&h.uri).map_err(|m| ("active_health", m))?;
        if h.interval_ms == 0 || h.timeout_ms == 0 {
            return Err((
                "active_health",
                "health_interval and health_timeout must be above zero".to_owned(),
            ));
        }
        if let Some(s) = h.status {
            check_status(s).map_err(|m| ("active_health", m))?;
        }
    }
    for s in &p.passive_health.unhealthy_status {
        check_status(*s).map_err(|m| ("passive_health", m))?;
    }
    for r in &p.trusted_proxies {
        check_range(r).map_err(|m| ("trusted_proxies", m))?;
    }
    for (ops, key) in [(&p.header_up, "header_up"), (&p.header_down, "header_down")] {
        for op in ops {
            check_op(op).map_err(|m| (key, m))?;
        }
    }
    if let Some(name) = &p.transport.tls_server_name {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(("transport", format!("invalid tls_server_name `{name}`")));
        }
    }
    Ok(())
}

/// Checks one header operation: its name, templates and regular expression.
pub(crate) fn check_op(op: &HeaderOp) -> Result<(), String> {
    match op {
        HeaderOp::Set { field, value } | HeaderOp::Add { field, value } => {
            check_field(field)?;
            template::Template::parse(value).map(drop)
        }
        HeaderOp::Delete { field } if field.ends_with('*') => Err(format!(
            "deleting headers by prefix (`-{field}`) is not supported in proxy headers; name each header"
        )),
        HeaderOp::Delete { field } => check_field(field),
        HeaderOp::Default { field, .. } => Err(format!(
            "`?{field}` (set if absent) is not supported in proxy headers; use `+` to add, `-` to delete, or no prefix to set"
        )),
        HeaderOp::Replace {
            field,
            find,
            replace,
        } => {
            check_field(field)?;
            crate::named::check_regexp(find)?;
            template::Template::parse(replace).map(drop)
        }
    }
}
