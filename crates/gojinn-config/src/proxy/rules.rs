//! `reverse_proxy`'s rules: `lb_policy` and the `header_up` / `header_down` lines.

use crate::caddyfile::unexpected;
use crate::error::{PResult, PosError};
use crate::lexer::Token;
use crate::names::hint;

use super::parse::at;
use super::{check_field, check_op, HeaderOp, LbPolicy};

/// `lb_policy` names gojinn implements.
const POLICIES: &[&str] = &[
    "random",
    "round_robin",
    "least_conn",
    "first",
    "ip_hash",
    "uri_hash",
    "header",
];

/// Caddy's `lb_policy` names that gojinn does not implement.
const UNSUPPORTED_POLICIES: &[&str] = &[
    "random_choose",
    "weighted_round_robin",
    "client_ip_hash",
    "query",
    "cookie",
];

/// `lb_policy <name> [<field>]`.
pub(crate) fn policy(name: &Token, args: &[Token]) -> PResult<LbPolicy> {
    let Some((p, rest)) = args.split_first() else {
        return Err(PosError::new(
            name.pos,
            "`lb_policy` needs a policy, e.g. `lb_policy round_robin`",
        ));
    };
    let policy = match p.text.as_str() {
        "random" => LbPolicy::Random,
        "round_robin" => LbPolicy::RoundRobin,
        "least_conn" => LbPolicy::LeastConn,
        "first" => LbPolicy::First,
        "ip_hash" => LbPolicy::IpHash,
        "uri_hash" => LbPolicy::UriHash,
        "header" => {
            let Some((field, more)) = rest.split_first() else {
                return Err(PosError::new(
                    p.pos,
                    "`lb_policy header` needs a header name, e.g. `lb_policy header X-User`",
                ));
            };
            if let Some(extra) = more.first() {
                return Err(unexpected(
                    extra,
                    "`lb_policy header` takes one header name",
                ));
            }
            check_field(&field.text).map_err(at(field))?;
            return Ok(LbPolicy::Header {
                field: field.text.clone(),
            });
        }
        s if UNSUPPORTED_POLICIES.contains(&s) => {
            return Err(PosError::new(
                p.pos,
                format!("lb_policy `{s}` is not supported by gojinn"),
            ))
        }
        s => {
            return Err(PosError::new(
                p.pos,
                format!(
                    "unknown lb_policy `{s}`{}",
                    hint(s, &[POLICIES, UNSUPPORTED_POLICIES])
                ),
            ))
        }
    };
    if let Some(extra) = rest.first() {
        return Err(unexpected(
            extra,
            &format!("lb_policy `{}` takes no options", p.text),
        ));
    }
    Ok(policy)
}

/// `header_up` / `header_down`: `[+|-]Field [value | search replacement]`.
pub(crate) fn header_op(name: &Token, args: &[Token]) -> PResult<HeaderOp> {
    let dir = name.text.as_str();
    let Some((f, rest)) = args.split_first() else {
        return Err(PosError::new(
            name.pos,
            format!("`{dir}` needs a header name, e.g. `{dir} X-Real-IP {{remote_host}}`"),
        ));
    };
    let text = f.text.as_str();
    let (prefix, field) = match text.chars().next() {
        Some(c @ ('+' | '-')) => (Some(c), &text[1..]),
        Some(c @ ('?' | '>')) => {
            return Err(PosError::new(
                f.pos,
                format!("`{dir}` field prefix `{c}` is not supported by gojinn; use `+` to add, `-` to delete, or no prefix to set"),
            ))
        }
        _ => (None, text),
    };
    check_field(field).map_err(at(f))?;
    let field = field.to_owned();
    let op = match (prefix, rest) {
        (Some('-'), []) if field.contains('*') => {
            return Err(PosError::new(
                f.pos,
                format!("`{dir} {text}`: wildcards in deleted header names are not supported by gojinn; name each header"),
            ))
        }
        (Some('-'), []) => HeaderOp::Delete { field },
        (Some('-'), [extra, ..]) => {
            return Err(unexpected(extra, &format!("`{dir} -{field}` deletes the header and takes no value")))
        }
        (_, []) => {
            return Err(PosError::new(
                f.pos,
                format!("`{dir} {text}` needs a value, e.g. `{dir} {text} value`; write `-{field}` to delete it"),
            ))
        }
        (Some('+'), [v]) => HeaderOp::Add {
            field,
            value: v.text.clone(),
        },
        (_, [v]) => HeaderOp::Set {
            field,
            value: v.text.clone(),
        },
        (_, [find, replace]) => HeaderOp::Replace {
            field,
            find: find.text.clone(),
            replace: replace.text.clone(),
        },
        (_, [_, _, extra, ..]) => {
            return Err(unexpected(
                extra,
                &format!("`{dir}` takes a header name and a value, or a search and a replacement; quote a value that has spaces"),
            ))
        }
    };
    let bad = match &op {
        HeaderOp::Replace { find, .. } => rest.first().filter(|_| regex::Regex::new(find).is_err()),
        _ => None,
    };
    check_op(&op).map_err(|m| PosError::new(bad.or(rest.last()).map_or(f.pos, |t| t.pos), m))?;
    Ok(op)
}
