//! `transport http { … }` of `reverse_proxy`: timeouts, upstream TLS and the
//! HTTP versions spoken to upstreams.

use crate::caddyfile::unexpected;
use crate::directives::one_arg;
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::tree::Node;

use super::parse::positive_duration;
use super::{HttpVersion, Transport};

/// `transport http` sub-directives gojinn implements.
pub(crate) const TRANSPORT_SUBDIRECTIVES: &[&str] = &[
    "dial_timeout",
    "response_header_timeout",
    "tls",
    "tls_insecure_skip_verify",
    "tls_server_name",
    "tls_trusted_ca_certs",
    "versions",
];

/// Caddy's `transport http` sub-directives that gojinn does not implement.
const UNSUPPORTED_TRANSPORT_SUBDIRECTIVES: &[&str] = &[
    "read_buffer",
    "write_buffer",
    "max_response_header",
    "proxy_protocol",
    "dial_fallback_delay",
    "expect_continue_timeout",
    "resolvers",
    "tls_client_auth",
    "tls_curves",
    "tls_timeout",
    "tls_trust_pool",
    "tls_renegotiation",
    "tls_except_ports",
    "keepalive",
    "keepalive_interval",
    "keepalive_idle_conns",
    "keepalive_idle_conns_per_host",
    "compression",
    "max_conns_per_host",
    "forward_proxy_url",
    "network_proxy",
    "read_timeout",
    "write_timeout",
    "local_address",
];

/// `transport http { … }`.
pub(crate) fn parse(
    t: &mut Transport,
    base: &std::path::Path,
    node: &Node,
    name: &Token,
    args: &[Token],
) -> PResult<()> {
    match args {
        [] => {
            return Err(PosError::new(
                name.pos,
                "`transport` needs a name, e.g. `transport http { dial_timeout 5s }`",
            ))
        }
        [kind, ..] if kind.text != "http" => {
            return Err(PosError::new(
                kind.pos,
                format!(
                    "transport `{}` is not supported by gojinn; only `transport http` is",
                    kind.text
                ),
            ))
        }
        [_, extra, ..] => {
            return Err(unexpected(
                extra,
                "`transport http` takes its options in a block",
            ))
        }
        [_] => {}
    }
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for sub in node.block.iter().flat_map(|b| &b.nodes) {
        let (key, vals) = crate::options::option(
            sub,
            "transport http",
            TRANSPORT_SUBDIRECTIVES,
            UNSUPPORTED_TRANSPORT_SUBDIRECTIVES,
            &mut seen,
        )?;
        let k = key.text.as_str();
        match k {
            "dial_timeout" => t.dial_timeout_ms = positive_duration(sub, "dial_timeout 5s")?,
            "response_header_timeout" => {
                t.response_header_timeout_ms =
                    Some(positive_duration(sub, "response_header_timeout 30s")?)
            }
            "tls" | "tls_insecure_skip_verify" => {
                if let Some(extra) = vals.first() {
                    return Err(unexpected(extra, &format!("`{k}` takes no value")));
                }
                t.tls = true;
                if k == "tls_insecure_skip_verify" {
                    t.tls_insecure_skip_verify = true;
                }
            }
            "tls_server_name" => {
                let v = one_arg(sub, "tls_server_name example.com")?;
                if v.text.is_empty() || v.text.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(PosError::new(
                        v.pos,
                        format!("invalid tls_server_name `{}`", v.text),
                    ));
                }
                t.tls = true;
                t.tls_server_name = Some(v.text.clone());
            }
            "tls_trusted_ca_certs" => {
                if vals.is_empty() {
                    return Err(PosError::new(
                        key.pos,
                        "`tls_trusted_ca_certs` needs at least one PEM file, e.g. `tls_trusted_ca_certs ./ca.pem`",
                    ));
                }
                for v in vals {
                    if v.text.is_empty() {
                        return Err(PosError::new(v.pos, "the CA certificate path is empty"));
                    }
                    t.tls_trusted_ca_certs
                        .push(crate::paths::resolve(base, std::path::Path::new(&v.text)));
                }
                t.tls = true;
            }
            "versions" => {
                if vals.is_empty() {
                    return Err(PosError::new(
                        key.pos,
                        "`versions` needs at least one version, e.g. `versions 1.1 2` or `versions h2c 2`",
                    ));
                }
                t.versions.clear();
                for v in vals {
                    let version = match v.text.as_str() {
                        "1.1" => HttpVersion::H1,
                        "2" => HttpVersion::H2,
                        "h2c" => HttpVersion::H2c,
                        "3" => {
                            return Err(PosError::new(
                                v.pos,
                                "HTTP/3 to upstreams (`versions 3`) is not supported by gojinn",
                            ))
                        }
                        other => {
                            return Err(PosError::new(
                                v.pos,
                                format!(
                                    "unknown HTTP version `{other}`: expected `1.1`, `2` or `h2c`"
                                ),
                            ))
                        }
                    };
                    if !t.versions.contains(&version) {
                        t.versions.push(version);
                    }
                }
            }
            _ => {
                return Err(PosError::new(
                    key.pos,
                    format!("unknown transport http sub-directive `{k}`"),
                ))
            }
        }
    }
    Ok(())
}
