//! The `servers { … }` global option (Caddy's form): protocols, timeouts and
//! request-head limits, applied to every listener.

use crate::caddyfile::unexpected;
use crate::directives::{each_once, one_arg, only_block, split};
use crate::error::{PResult, Pos, PosError};
use crate::model::{Protocol, ServerOptions};
use crate::names::{self, hint};
use crate::tree::Node;
use crate::{units, validate};

/// Parses `servers { … }` into `out` (which holds `grace_period` already).
pub(crate) fn parse(node: &Node, out: &mut ServerOptions) -> PResult<()> {
    let block = only_block(
        node,
        "per-listener `servers` options are not supported by gojinn: write `servers { … }`, which applies to every listener",
        "servers { protocols h1 h2 }",
    )?;
    for sub in each_once(block, "servers")? {
        let (key, args) = split(sub)?;
        match key.text.as_str() {
            "protocols" => {
                if let Some(b) = &sub.block {
                    return Err(PosError::new(b.open, "`protocols` takes no block"));
                }
                out.protocols = protocols(key.pos, args)?;
            }
            "timeouts" => timeouts(sub, out)?,
            "max_header_size" => {
                let v = one_arg(sub, "max_header_size 64KiB")?;
                let bytes = units::parse_size(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                validate::max_header_size(bytes, &v.text).map_err(|e| PosError::new(v.pos, e))?;
                out.max_header_size = bytes;
            }
            "max_headers" => {
                let v = one_arg(sub, "max_headers 100")?;
                let n = v.text.parse::<u32>().map_err(|_| {
                    PosError::new(
                        v.pos,
                        format!("invalid max_headers `{}`: expected a whole number", v.text),
                    )
                })?;
                validate::max_headers(n, &v.text).map_err(|e| PosError::new(v.pos, e))?;
                out.max_headers = n;
            }
            k if names::UNSUPPORTED_SERVERS_OPTIONS.contains(&k) => {
                return Err(PosError::new(
                    key.pos,
                    format!("`servers` option `{k}` is not supported by gojinn"),
                ))
            }
            k => {
                return Err(PosError::new(
                    key.pos,
                    format!(
                        "unknown `servers` option `{k}`{}",
                        hint(
                            k,
                            &[names::SERVERS_OPTIONS, names::UNSUPPORTED_SERVERS_OPTIONS]
                        )
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// `protocols h1 h2 h2c`: HTTP/1.1 must be among them.
fn protocols(at: Pos, args: &[crate::lexer::Token]) -> PResult<Vec<Protocol>> {
    if args.is_empty() {
        return Err(PosError::new(
            at,
            "`protocols` needs at least one protocol, e.g. `protocols h1 h2`",
        ));
    }
    let mut out = Vec::new();
    for a in args {
        let p = match a.text.as_str() {
            "h1" => Protocol::H1,
            "h2" => Protocol::H2,
            "h2c" => Protocol::H2c,
            "h3" => {
                return Err(PosError::new(
                    a.pos,
                    "protocol `h3` (HTTP/3 over QUIC) is not supported by gojinn: use `h1`, `h2` or `h2c`",
                ))
            }
            other => {
                return Err(PosError::new(
                    a.pos,
                    format!("unknown protocol `{other}`: use `h1`, `h2` or `h2c`"),
                ))
            }
        };
        if out.contains(&p) {
            return Err(unexpected(a, "this protocol is already listed"));
        }
        out.push(p);
    }
    if !out.contains(&Protocol::H1) {
        return Err(PosError::new(
            at,
            "`protocols` must include `h1`: gojinn always serves HTTP/1.1",
        ));
    }
    Ok(out)
}

/// `timeouts { read_header 10s; idle 5m }`.
fn timeouts(node: &Node, out: &mut ServerOptions) -> PResult<()> {
    let (name, args) = split(node)?;
    let Some(block) = &node.block else {
        return Err(PosError::new(
            name.pos,
            "`timeouts` needs a block, e.g. `timeouts { read_header 10s; idle 5m }`",
        ));
    };
    if let Some(extra) = args.first() {
        return Err(unexpected(
            extra,
            "`timeouts` takes a block, e.g. `timeouts { read_header 10s }`",
        ));
    }
    for sub in each_once(block, "timeouts")? {
        let (key, _) = split(sub)?;
        let k = key.text.as_str();
        match k {
            "read_header" | "idle" => {
                let v = one_arg(sub, &format!("{k} 10s"))?;
                let ms = units::parse_duration_ms(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                if k == "idle" {
                    validate::idle_timeout_ms(ms, &v.text).map_err(|e| PosError::new(v.pos, e))?;
                    out.idle_timeout_ms = ms;
                } else {
                    validate::timeout_ms(ms, "read_header", &v.text)
                        .map_err(|e| PosError::new(v.pos, e))?;
                    out.read_header_timeout_ms = ms;
                }
            }
            "read_body" | "write" => {
                return Err(PosError::new(
                    key.pos,
                    format!("timeout `{k}` is not supported by gojinn: use `read_header` or `idle` (a function's own deadline is its `timeout`)"),
                ))
            }
            _ => {
                return Err(PosError::new(
                    key.pos,
                    format!(
                        "unknown timeout `{k}`{}",
                        hint(k, &[&["read_header", "idle", "read_body", "write"]])
                    ),
                ))
            }
        }
    }
    Ok(())
}
