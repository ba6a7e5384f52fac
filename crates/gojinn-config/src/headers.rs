//! `header [<matcher>] [[+|-|?|>]<field> [<value>|<find> <replace>]] [{ … }]`
//! and `request_header [<matcher>] [+|-]<field> [<value>|<find> <replace>]`.

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{leading_matcher, split};
use crate::error::{PResult, PosError};
use crate::handlers::{HeaderOp, HeaderOps};
use crate::lexer::Token;
use crate::model::{Handler, Route};
use crate::tree::Node;

/// Parses `header` (`request == false`) or `request_header`.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node, request: bool) -> PResult<Route> {
    let (name, args) = split(node)?;
    let dir = name.text.as_str();
    let (matcher, rest) = leading_matcher(cx, args)?;
    let mut ops = Vec::new();
    let mut deferred = false;
    if !rest.is_empty() {
        deferred |= op(dir, rest, request, &mut ops)?;
    }
    if let Some(block) = &node.block {
        if request {
            return Err(PosError::new(
                block.open,
                "`request_header` does not take a block: write one `request_header` line per field",
            ));
        }
        for sub in &block.nodes {
            let (first, more) = split(sub)?;
            if let Some(b) = &sub.block {
                return Err(PosError::new(
                    b.open,
                    "a header operation does not take a block",
                ));
            }
            if first.text == "defer" {
                if let Some(extra) = more.first() {
                    return Err(unexpected(extra, "`defer` takes no value"));
                }
                deferred = true;
                continue;
            }
            deferred |= op(dir, &sub.words, request, &mut ops)?;
        }
    }
    if ops.is_empty() {
        return Err(PosError::new(
            name.pos,
            format!("`{dir}` needs a field to change, e.g. `{dir} X-Frame-Options DENY`"),
        ));
    }
    let ops = HeaderOps { ops, deferred };
    Ok(matcher.route(
        None,
        if request {
            Handler::RequestHeaders(ops)
        } else {
            Handler::Headers(ops)
        },
    ))
}

/// One operation from `words` (`[+|-|?|>]field [value|find replace]`),
/// pushed to `ops`; returns whether it makes the handler deferred.
fn op(dir: &str, words: &[Token], request: bool, ops: &mut Vec<HeaderOp>) -> PResult<bool> {
    let Some((field_token, values)) = words.split_first() else {
        return Ok(false);
    };
    let text = field_token.text.as_str();
    let (prefix, field) = match text.chars().next() {
        Some(c @ ('+' | '-' | '?' | '>')) => (Some(c), &text[1..]),
        _ => (None, text),
    };
    if request && matches!(prefix, Some('?' | '>')) {
        return Err(PosError::new(
            field_token.pos,
            format!(
                "`request_header` does not take the `{}` prefix (`{text}`): use `Field value`, `+Field value` or `-Field`",
                prefix.unwrap_or_default()
            ),
        ));
    }
    let deletes_prefix = prefix == Some('-') && field.ends_with('*');
    let name = if deletes_prefix {
        &field[..field.len() - 1]
    } else {
        field
    };
    check_field(name).map_err(|e| PosError::new(field_token.pos, e))?;
    let field = field.to_owned();
    let value = |why: &str| -> PResult<String> {
        match values {
            [v] => Ok(v.text.clone()),
            [] => Err(PosError::new(
                field_token.pos,
                format!("`{text}` needs {why}, e.g. `{dir} {text} value`"),
            )),
            [_, extra, ..] => Err(unexpected(extra, &format!("`{text}` takes one value"))),
        }
    };
    let (op, deferred) = match (prefix, values) {
        (Some('-'), []) => (HeaderOp::Delete { field }, true),
        (Some('-'), [extra, ..]) => {
            return Err(unexpected(
                extra,
                &format!("`{text}` deletes the field and takes no value"),
            ))
        }
        (Some('+'), _) => (
            HeaderOp::Add {
                field,
                value: value("the value to add")?,
            },
            false,
        ),
        (Some('?'), _) => (
            HeaderOp::Default {
                field,
                value: value("a default value")?,
            },
            true,
        ),
        (_, [find, replace]) => {
            crate::named::check_regexp(&find.text).map_err(|e| PosError::new(find.pos, e))?;
            let op = HeaderOp::Replace {
                field,
                find: find.text.clone(),
                replace: replace.text.clone(),
            };
            // A replacement acts on the fields the answering handler set.
            (op, true)
        }
        (_, [_, _, extra, ..]) => {
            return Err(unexpected(
                extra,
                &format!("`{text}` takes a value, or a regular expression and its replacement"),
            ));
        }
        (p, _) => {
            let hint = if values.is_empty() {
                format!("; to delete the field write `-{field}`")
            } else {
                String::new()
            };
            let v = value("a value")
                .map_err(|e| PosError::new(e.pos, format!("{}{hint}", e.message)))?;
            (HeaderOp::Set { field, value: v }, p == Some('>'))
        }
    };
    ops.push(op);
    Ok(deferred && !request)
}

/// A header field name: an HTTP token.
fn check_field(name: &str) -> Result<(), String> {
    crate::named::check_token("header field", name)
}

/// Checks operations read from JSON: the same rules as the Caddyfile's.
pub(crate) fn validate(ops: &HeaderOps) -> Result<(), String> {
    for op in &ops.ops {
        match op {
            HeaderOp::Delete { field } => check_field(field.strip_suffix('*').unwrap_or(field))?,
            HeaderOp::Set { field, .. }
            | HeaderOp::Add { field, .. }
            | HeaderOp::Default { field, .. } => check_field(field)?,
            HeaderOp::Replace { field, find, .. } => {
                check_field(field)?;
                crate::named::check_regexp(find)?;
            }
        }
    }
    Ok(())
}
