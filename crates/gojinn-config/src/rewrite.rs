//! `rewrite [<matcher>] <to>` and `uri [<matcher>] strip_prefix|strip_suffix|
//! replace|path_regexp …`: changes to the request's path and query that the
//! following routes match against and the answering handler sees.

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{leading_matcher, no_block, split};
use crate::error::{PResult, PosError};
use crate::handlers::Rewrite;
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;

/// `uri` operations gojinn implements.
const URI_OPS: &[&str] = &["strip_prefix", "strip_suffix", "replace", "path_regexp"];

/// Parses one `rewrite`; `group` makes the rewrites of a block mutually
/// exclusive, as in Caddy.
pub(crate) fn rewrite(cx: &Ctx<'_>, node: &Node, group: Option<String>) -> PResult<Route> {
    let (name, args) = split(node)?;
    no_block(node, "rewrite")?;
    let (matcher, rest) = crate::redir::target_args(cx, "rewrite", args)?;
    let to = match rest {
        [to] => to,
        [] => {
            return Err(PosError::new(
                name.pos,
                "`rewrite` needs a target, e.g. `rewrite * /index.html?{query}`",
            ))
        }
        [_, extra, ..] => return Err(unexpected(extra, "`rewrite` takes one target")),
    };
    if to.text.is_empty() {
        return Err(PosError::new(to.pos, "`rewrite` target is empty"));
    }
    Ok(matcher.route(
        group,
        Handler::Rewrite(Rewrite::Uri {
            to: to.text.clone(),
        }),
    ))
}

/// Parses one `uri`.
pub(crate) fn uri(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (name, args) = split(node)?;
    no_block(node, "uri")?;
    let (matcher, rest) = leading_matcher(cx, args)?;
    let Some((op, values)) = rest.split_first() else {
        return Err(PosError::new(
            name.pos,
            "`uri` needs an operation, e.g. `uri strip_prefix /api`",
        ));
    };
    let arity = |n: usize, example: &str| -> PResult<()> {
        if values.len() < n {
            return Err(PosError::new(
                op.pos,
                format!("`uri {}` needs {n} value(s), e.g. `uri {example}`", op.text),
            ));
        }
        Ok(())
    };
    let too_many = |at: usize, what: &str| -> PResult<()> {
        match values.get(at) {
            Some(extra) => Err(unexpected(
                extra,
                &format!("`uri {}` takes {what}", op.text),
            )),
            None => Ok(()),
        }
    };
    let rewrite =
        match op.text.as_str() {
            "strip_prefix" | "strip_suffix" => {
                arity(1, &format!("{} /api", op.text))?;
                too_many(1, "one value")?;
                let v = values[0].text.clone();
                if v.is_empty() {
                    return Err(PosError::new(
                        values[0].pos,
                        format!("`uri {}` value is empty", op.text),
                    ));
                }
                if op.text == "strip_prefix" {
                    // Caddy adds the leading slash a prefix lacks.
                    let prefix = if v.starts_with('/') {
                        v
                    } else {
                        format!("/{v}")
                    };
                    Rewrite::StripPrefix { prefix }
                } else {
                    Rewrite::StripSuffix { suffix: v }
                }
            }
            "replace" => {
                arity(2, "replace /old/ /new/")?;
                too_many(3, "a substring, its replacement and a limit")?;
                let limit = match values.get(2) {
                    None => None,
                    Some(l) => Some(l.text.parse::<u32>().map_err(|_| {
                        PosError::new(
                            l.pos,
                            format!(
                                "invalid limit `{}`: expected a number of replacements",
                                l.text
                            ),
                        )
                    })?)
                    .filter(|n| *n > 0),
                };
                if values[0].text.is_empty() {
                    return Err(PosError::new(
                        values[0].pos,
                        "`uri replace` needs a non-empty substring to find",
                    ));
                }
                Rewrite::Replace {
                    find: values[0].text.clone(),
                    replace: values[1].text.clone(),
                    limit,
                }
            }
            "path_regexp" => {
                arity(2, "path_regexp ^/v1/(.*) /v2/$1")?;
                too_many(2, "a regular expression and its replacement")?;
                crate::named::check_regexp(&values[0].text)
                    .map_err(|e| PosError::new(values[0].pos, e))?;
                Rewrite::PathRegexp {
                    find: values[0].text.clone(),
                    replace: values[1].text.clone(),
                }
            }
            "query" => return Err(PosError::new(
                op.pos,
                "`uri query` is not supported by gojinn; use `rewrite * {path}?…` to set the query",
            )),
            other => {
                return Err(PosError::new(
                    op.pos,
                    format!(
                        "unknown `uri` operation `{other}`{}",
                        hint(other, &[URI_OPS, &["query"]])
                    ),
                ))
            }
        };
    Ok(matcher.route(None, Handler::Rewrite(rewrite)))
}

/// Checks a rewrite read from JSON: the same rules as the Caddyfile's.
pub(crate) fn validate(r: &Rewrite) -> Result<(), String> {
    match r {
        Rewrite::Uri { to } if to.is_empty() => Err("`rewrite` target is empty".to_owned()),
        Rewrite::StripPrefix { prefix } if !prefix.starts_with('/') => {
            Err(format!("strip_prefix `{prefix}` must start with `/`"))
        }
        Rewrite::StripSuffix { suffix } if suffix.is_empty() => {
            Err("strip_suffix is empty".to_owned())
        }
        Rewrite::Replace { find, .. } if find.is_empty() => {
            Err("`replace` needs a non-empty substring to find".to_owned())
        }
        Rewrite::PathRegexp { find, .. } => crate::named::check_regexp(find),
        _ => Ok(()),
    }
}
