//! `redir [<matcher>] <to> [<code>]`: `permanent` (301), `temporary` (302,
//! the default), `html` (a 200 page that redirects the browser) or a 3xx
//! status.

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{leading_matcher, no_block, split};
use crate::error::{PResult, PosError};
use crate::handlers::Redirect;
use crate::lexer::Token;
use crate::matcher::is_matcher_token;
use crate::model::{Handler, Route};
use crate::named::RouteMatch;
use crate::tree::Node;

/// Parses one `redir`.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (name, args) = split(node)?;
    no_block(node, "redir")?;
    let (matcher, rest) = target_args(cx, "redir", args)?;
    let (to, code) = match rest {
        [to] => (to, None),
        [to, code] => (to, Some(code)),
        [] => {
            return Err(PosError::new(
                name.pos,
                "`redir` needs a target, e.g. `redir https://example.com{uri} permanent`",
            ))
        }
        [_, _, extra, ..] => return Err(unexpected(extra, "`redir` takes a target and a status")),
    };
    if to.text.is_empty() {
        return Err(PosError::new(to.pos, "`redir` target is empty"));
    }
    let (status, html) = match code {
        None => (302, false),
        Some(c) => status(c)?,
    };
    Ok(matcher.route(
        None,
        Handler::Redirect(Redirect {
            to: to.text.clone(),
            status,
            html,
        }),
    ))
}

/// The status of a `redir` code.
fn status(c: &Token) -> PResult<(u16, bool)> {
    match c.text.as_str() {
        "permanent" => Ok((301, false)),
        "temporary" => Ok((302, false)),
        "html" => Ok((200, true)),
        t => match t.parse::<u16>() {
            Ok(n) if (300..=399).contains(&n) && t.len() == 3 => Ok((n, false)),
            _ => Err(PosError::new(
                c.pos,
                format!(
                    "invalid redirect code `{t}`{}: use `permanent`, `temporary`, `html` or a status from 300 to 399",
                    crate::names::hint(t, &[&["permanent", "temporary", "html"]])
                ),
            )),
        },
    }
}

/// Splits the matcher off the arguments of a directive whose first argument
/// is a target (`redir`, `rewrite`): a lone argument is always the target,
/// even when it starts with `/`; with more, a leading `/path`, `*` or `@name`
/// is the matcher, as in Caddy.
pub(crate) fn target_args<'a>(
    cx: &Ctx<'_>,
    dir: &str,
    args: &'a [Token],
) -> PResult<(RouteMatch, &'a [Token])> {
    if args.len() < 2 {
        return Ok((RouteMatch::default(), args));
    }
    let (matcher, rest) = leading_matcher(cx, args)?;
    if let (Some(m), Some(to)) = (args.first().filter(|m| is_matcher_token(m)), rest.first()) {
        let keyword = matches!(to.text.as_str(), "permanent" | "temporary" | "html")
            || (to.text.len() == 3 && to.text.bytes().all(|b| b.is_ascii_digit()));
        if keyword && rest.len() == 1 {
            return Err(PosError::new(
                m.pos,
                format!(
                    "`{dir} {} {}` reads `{}` as a matcher and `{}` as the target; \
                     write `{dir} * {} {}` to redirect every request",
                    m.text, to.text, m.text, to.text, m.text, to.text
                ),
            ));
        }
    }
    Ok((matcher, rest))
}
