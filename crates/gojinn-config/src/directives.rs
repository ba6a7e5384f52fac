//! Site directives: `root`, `handle`, `handle_path`, `route`, `respond`,
//! `file_server` (and `gojinn`, in its own module), Caddy's directive order and
//! route sorting.

use std::path::{Path, PathBuf};

use crate::caddyfile::{unexpected, Ctx};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::{Kind, Token};
use crate::matcher::{self, is_matcher_token};
use crate::model::{Handler, Route};
use crate::named::{self, RouteMatch};
use crate::names::{self, hint};
use crate::tree::{Block, Node};
use crate::{gojinn, paths, validate};

/// How the directives of a block are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Site, `handle` and `handle_path` blocks: Caddy's directive order, then
    /// matcher specificity.
    Sorted,
    /// `route` blocks: as written.
    Written,
}

/// The routes of a block of directives. `root` is the directory `file_server`
/// serves unless a `root` directive of this block says otherwise.
pub(crate) fn block(
    cx: &mut Ctx<'_>,
    nodes: &[Node],
    root: &Path,
    mode: Mode,
) -> PResult<Vec<Route>> {
    // Checked first, so that `handle /x` followed by `{` on the next line is
    // reported at the `{` rather than as a `handle` without a block.
    if let Some(stray) = nodes.iter().find(|n| n.words.is_empty()) {
        return Err(PosError::new(
            stray.pos(),
            "unexpected `{`: a block must open on the same line as its directive",
        ));
    }
    // Only the site block itself may hold `tls`; nested blocks see `false`.
    let site_level = std::mem::replace(&mut cx.site_level, false);
    let scope = named::scope(&cx.matchers, nodes)?;
    let outer_matchers = std::mem::replace(&mut cx.matchers, scope);
    let routes = directives(cx, nodes, root, mode, site_level);
    cx.matchers = outer_matchers;
    routes
}

/// The routes of `nodes`, with the block's named matchers in scope.
fn directives(
    cx: &mut Ctx<'_>,
    nodes: &[Node],
    root: &Path,
    mode: Mode,
    site_level: bool,
) -> PResult<Vec<Route>> {
    let mut root = root.to_path_buf();
    if mode == Mode::Sorted {
        // `root` sorts first, so it applies to the whole block wherever it is.
        let mut first: Option<Pos> = None;
        for node in nodes.iter().filter(|n| name(n) == Some("root")) {
            if let Some(f) = first {
                return Err(PosError::new(
                    node.pos(),
                    format!(
                        "`root` is given twice in this block (first at line {}, column {})",
                        f.line, f.col
                    ),
                ));
            }
            first = Some(node.pos());
            root = parse_root(cx, node)?;
        }
    }
    // Caddy makes the `handle` and `handle_path` routes of one block mutually
    // exclusive: the first that matches is the only one that runs.
    let group = nodes
        .iter()
        .any(|n| matches!(name(n), Some("handle" | "handle_path")))
        .then(|| {
            let g = format!("handle_{}", cx.groups);
            cx.groups += 1;
            g
        });
    // Likewise the `rewrite`s of one block.
    let rewrite_group = nodes.iter().any(|n| name(n) == Some("rewrite")).then(|| {
        let g = format!("rewrite_{}", cx.groups);
        cx.groups += 1;
        g
    });
    let mut routes: Vec<(usize, Route)> = Vec::new();
    for node in nodes {
        let Some(name_token) = node.words.first() else {
            return Err(PosError::new(
                node.pos(),
                "unexpected `{`: a block must open on the same line as its directive",
            ));
        };
        let dir = name_token.text.as_str();
        if named::is_definition(node) {
            continue;
        }
        let route = match dir {
            "root" => {
                if mode == Mode::Written {
                    root = parse_root(cx, node)?;
                }
                continue;
            }
            "handle" | "handle_path" | "route" => subroute(cx, node, &root, group.as_ref())?,
            "respond" => respond(cx, node)?,
            "file_server" => crate::file_server::parse(cx, node, &root)?,
            "try_files" => crate::try_files::parse(cx, node, &root)?,
            "gojinn" if cx.in_errors => {
                return Err(PosError::new(
                    name_token.pos,
                    "`gojinn` inside `handle_errors` is not supported by gojinn; answer errors with `respond` or `file_server`",
                ))
            }
            "gojinn" => gojinn::parse(cx, node)?,
            "handle_errors" if site_level => {
                let errors = crate::errors::parse(cx, node, &root)?;
                cx.errors.push(errors);
                continue;
            }
            "handle_errors" => {
                return Err(PosError::new(
                    name_token.pos,
                    "`handle_errors` applies to a whole site: put it directly in the site block",
                ))
            }
            "header" => crate::headers::parse(cx, node, false)?,
            "request_header" => crate::headers::parse(cx, node, true)?,
            "redir" => crate::redir::parse(cx, node)?,
            "rewrite" => crate::rewrite::rewrite(cx, node, rewrite_group.clone())?,
            "uri" => crate::rewrite::uri(cx, node)?,
            "reverse_proxy" => crate::proxy::parse::parse(cx, node)?,
            "basic_auth" | "basicauth" => crate::basic_auth::parse(cx, node)?,
            "encode" => crate::encode::parse(cx, node)?,
            "tls" if site_level => {
                if let Some((_, first)) = &cx.tls {
                    return Err(PosError::new(
                        name_token.pos,
                        format!(
                            "`tls` is given twice in this site (first at line {}, column {})",
                            first.line, first.col
                        ),
                    ));
                }
                cx.tls = Some((crate::tls::parse(cx, node)?, name_token.pos));
                continue;
            }
            "log" => {
                crate::logs::site(cx, node, site_level)?;
                continue;
            }
            "queue" => {
                crate::jobs::site_queue(cx, node, site_level)?;
                continue;
            }
            "tls" => {
                return Err(PosError::new(
                    name_token.pos,
                    "`tls` applies to a whole site: put it directly in the site block, not inside `handle` or `route`",
                ))
            }
            _ => return Err(unknown_directive(name_token, cx.single_site)),
        };
        routes.push((cx.rank(dir), route));
    }
    if mode == Mode::Sorted {
        routes.sort_by_key(|(rank, r)| (*rank, matcher::specificity(r)));
    }
    Ok(routes.into_iter().map(|(_, r)| r).collect())
}

fn name(node: &Node) -> Option<&str> {
    node.words.first().map(|w| w.text.as_str())
}

/// The directive's name token and its arguments.
pub(crate) fn split(node: &Node) -> PResult<(&Token, &[Token])> {
    node.words.split_first().ok_or_else(|| {
        PosError::new(
            node.pos(),
            "unexpected `{`: a block must open on the same line as its directive",
        )
    })
}

/// The block of a block-only option such as `log { … }`: an argument after the
/// name is refused with `no_args`, a missing block with an error showing `example`.
pub(crate) fn only_block<'a>(node: &'a Node, no_args: &str, example: &str) -> PResult<&'a Block> {
    let (name, args) = split(node)?;
    if let Some(extra) = args.first() {
        return Err(unexpected(extra, no_args));
    }
    node.block.as_ref().ok_or_else(|| {
        PosError::new(
            name.pos,
            format!("`{}` needs a block, e.g. `{example}`", name.text),
        )
    })
}

/// The nodes of `block`, refusing a bare `{` and an option given twice.
pub(crate) fn each_once<'a>(block: &'a Block, what: &str) -> PResult<&'a [Node]> {
    let mut seen = Vec::new();
    for sub in &block.nodes {
        let (key, _) = split(sub)?;
        let k = key.text.as_str();
        first_time(&mut seen, k, key.pos, |first| {
            format!(
                "duplicate `{k}` in `{what}` (first set at line {}, column {})",
                first.line, first.col
            )
        })?;
    }
    Ok(&block.nodes)
}

/// Records that `key` is given at `pos`. If it was given before, the error
/// `message(first)` at `pos`, where `first` is the earlier place.
pub(crate) fn first_time<'a>(
    seen: &mut Vec<(&'a str, Pos)>,
    key: &'a str,
    pos: Pos,
    message: impl FnOnce(Pos) -> String,
) -> PResult<()> {
    if let Some((_, first)) = seen.iter().find(|(s, _)| *s == key) {
        return Err(PosError::new(pos, message(*first)));
    }
    seen.push((key, pos));
    Ok(())
}

/// Looks like a site address: `:8080`, `host:8080`, `http://…`.
fn looks_like_address(s: &str) -> bool {
    s.contains("://")
        || s.rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

fn unknown_directive(t: &Token, single_site: bool) -> PosError {
    let d = t.text.as_str();
    let message = if names::UNSUPPORTED_DIRECTIVES.contains(&d) {
        format!("`{d}` is not supported by gojinn")
    } else if names::GLOBAL_OPTIONS.contains(&d) || names::UNSUPPORTED_GLOBAL_OPTIONS.contains(&d) {
        format!("`{d}` is a global option: it belongs in the global options block at the top of the file")
    } else if looks_like_address(d) && single_site {
        format!(
            "unexpected site address `{d}` among directives: when a file has several sites, \
             each site's directives go in braces, e.g. `:8080 {{ … }}`"
        )
    } else if looks_like_address(d) {
        format!("unexpected site address `{d}` among directives: is a `}}` missing before it?")
    } else {
        format!(
            "unknown directive `{d}`{}",
            hint(d, &[names::DIRECTIVES, names::UNSUPPORTED_DIRECTIVES])
        )
    };
    PosError::new(t.pos, message)
}

/// Errors if the node has a block.
pub(crate) fn no_block(node: &Node, what: &str) -> PResult<()> {
    match &node.block {
        Some(b) => Err(PosError::new(
            b.open,
            format!("`{what}` does not take a block"),
        )),
        None => Ok(()),
    }
}

/// The single argument of a sub-directive such as `timeout 2s`.
pub(crate) fn one_arg<'a>(node: &'a Node, example: &str) -> PResult<&'a Token> {
    let (name, args) = split(node)?;
    no_block(node, &name.text)?;
    single(name, args, example)
}

/// The one argument `args` of the option or directive `name`.
pub(crate) fn single<'a>(name: &Token, args: &'a [Token], example: &str) -> PResult<&'a Token> {
    match args {
        [one] => Ok(one),
        [] => Err(PosError::new(
            name.pos,
            format!("`{}` needs a value, e.g. `{example}`", name.text),
        )),
        [_, extra, ..] => Err(unexpected(
            extra,
            &format!("`{}` takes one value", name.text),
        )),
    }
}

/// Splits a leading matcher (`*`, `/path`, `@name`) off `args`.
pub(crate) fn leading_matcher<'a>(
    cx: &Ctx<'_>,
    args: &'a [Token],
) -> PResult<(RouteMatch, &'a [Token])> {
    match args.split_first() {
        Some((m, rest)) if is_matcher_token(m) => Ok((named::resolve(&cx.matchers, m)?, rest)),
        _ => Ok((RouteMatch::default(), args)),
    }
}

/// `handle [<matcher>] { … }`, `handle_path <prefix>* { … }`, `route [<matcher>] { … }`.
fn subroute(cx: &mut Ctx<'_>, node: &Node, root: &Path, group: Option<&String>) -> PResult<Route> {
    let (name, args) = split(node)?;
    let dir = name.text.as_str();
    let (matcher, strip_prefix) = if dir == "handle_path" {
        handle_path_prefix(name, args)?
    } else {
        let m = match args {
            [] => RouteMatch::default(),
            [m] if is_matcher_token(m) => named::resolve(&cx.matchers, m)?,
            [m] => {
                return Err(PosError::new(
                    m.pos,
                    format!("invalid matcher `{}` for `{dir}`: a path matcher starts with `/` or `*`, e.g. `/api/*`; a named one with `@`", m.text),
                ))
            }
            [_, extra, ..] => return Err(unexpected(extra, &format!("`{dir}` takes at most one matcher"))),
        };
        (m, None)
    };
    let Some(body) = &node.block else {
        return Err(PosError::new(
            name.pos,
            format!("`{dir}` needs a block, e.g. `{dir} /api/* {{ … }}`"),
        ));
    };
    let (mode, group) = if dir == "route" {
        (Mode::Written, None)
    } else {
        (Mode::Sorted, group.cloned())
    };
    let routes = block(cx, &body.nodes, root, mode)?;
    Ok(matcher.route(
        group,
        Handler::Subroute {
            strip_prefix,
            routes,
        },
    ))
}

/// `handle_path`'s matcher and the prefix it strips: `/api/*` strips `/api`.
fn handle_path_prefix(name: &Token, args: &[Token]) -> PResult<(RouteMatch, Option<String>)> {
    let usage = "`handle_path` needs a path prefix ending in `*`, e.g. `handle_path /api/* { … }`";
    let m = match args {
        [] => return Err(PosError::new(name.pos, usage)),
        [m] => m,
        [_, extra, ..] => return Err(unexpected(extra, "`handle_path` takes one path prefix")),
    };
    let at = |e: String| PosError::new(m.pos, e);
    if m.text.starts_with('@') {
        return Err(at(format!(
            "`handle_path` takes a path prefix, not a named matcher (`{}`): use `handle {} {{ uri strip_prefix … }}`",
            m.text, m.text
        )));
    }
    if m.kind != Kind::Word || !m.text.starts_with('/') || !m.text.ends_with('*') {
        return Err(at(format!(
            "invalid `handle_path` prefix `{}`: it must start with `/` and end with `*`, e.g. `/api/*`",
            m.text
        )));
    }
    matcher::check_pattern(&m.text).map_err(at)?;
    let prefix = m.text.trim_end_matches('*');
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    Ok((
        RouteMatch {
            path: Some(m.text.clone()),
            conditions: None,
        },
        (!prefix.is_empty()).then(|| prefix.to_owned()),
    ))
}

/// `respond [<matcher>] [<body>] [<status>]`; a lone three-digit argument is the
/// status (as in Caddy).
fn respond(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (_, args) = split(node)?;
    if let Some(b) = &node.block {
        return Err(PosError::new(
            b.open,
            "`respond` does not take a block in gojinn; write `respond [<matcher>] [<body>] [<status>]`",
        ));
    }
    let (matcher, rest) = leading_matcher(cx, args)?;
    let (body, status) = match rest {
        [] => (String::new(), 200),
        [one] if one.text.len() == 3 && one.text.bytes().all(|b| b.is_ascii_digit()) => {
            (String::new(), status(one)?)
        }
        [one] => (one.text.clone(), 200),
        [body, st] => (body.text.clone(), status(st)?),
        [_, _, extra, ..] => {
            return Err(unexpected(
                extra,
                "`respond` takes at most a body and a status",
            ))
        }
    };
    Ok(matcher.route(None, Handler::StaticResponse { status, body }))
}

fn status(t: &Token) -> PResult<u16> {
    let code: u16 = t
        .text
        .parse()
        .ok()
        .filter(|_| t.text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            PosError::new(
                t.pos,
                format!(
                    "invalid status `{}`: expected a number such as `404`",
                    t.text
                ),
            )
        })?;
    validate::status(code, &t.text).map_err(|e| PosError::new(t.pos, e))?;
    Ok(code)
}

/// `root [*] <dir>`.
fn parse_root(cx: &Ctx<'_>, node: &Node) -> PResult<PathBuf> {
    let (name, args) = split(node)?;
    no_block(node, "root")?;
    let dir = match args {
        [] => {
            return Err(PosError::new(
                name.pos,
                "`root` needs a directory, e.g. `root * ./public`",
            ))
        }
        [d] => d,
        [m, d] if m.kind == Kind::Word && m.text == "*" => d,
        [m, _] if m.text.starts_with('@') => {
            return Err(PosError::new(
                m.pos,
                format!(
                    "`root` with a named matcher (`{}`) is not supported by gojinn; \
                     put `root * <dir>` inside a `handle {} {{ … }}` block instead",
                    m.text, m.text
                ),
            ))
        }
        [m, _] if is_matcher_token(m) => {
            return Err(PosError::new(
                m.pos,
                format!(
                    "`root` with a path matcher (`{}`) is not supported by gojinn; \
                     put `root * <dir>` inside a `handle {} {{ … }}` block instead",
                    m.text, m.text
                ),
            ))
        }
        [_, extra] => return Err(unexpected(extra, "`root` takes one directory")),
        [_, _, extra, ..] => return Err(unexpected(extra, "`root` takes one directory")),
    };
    if dir.text.is_empty() {
        return Err(PosError::new(dir.pos, "`root` directory is empty"));
    }
    Ok(paths::resolve(&cx.base, Path::new(&dir.text)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use std::path::Path;

    use crate::model::{Handler, Route};

    /// `(group, matcher, handler kind)` of a site's top-level routes.
    fn shape(src: &str) -> Vec<(Option<String>, Option<String>, &'static str)> {
        let loaded = crate::caddyfile::adapt(src, Path::new("/c/Caddyfile"), &|_| None).unwrap();
        let routes: Vec<Route> = loaded.config.sites.into_iter().next().unwrap().routes;
        routes
            .into_iter()
            .map(|r| {
                let kind = match r.handle {
                    Handler::Subroute { .. } => "subroute",
                    Handler::StaticResponse { .. } => "respond",
                    Handler::FileServer { .. } => "file_server",
                    Handler::TryFiles { .. } => "try_files",
                    Handler::Gojinn(_) => "gojinn",
                    Handler::ReverseProxy(_) => "reverse_proxy",
                    Handler::Encode(_) => "encode",
                    _ => "other",
                };
                (r.group, r.matcher, kind)
            })
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn directive_order_then_specificity() {
        let got = shape(
            ":1 {\n gojinn /a/* a.wasm\n file_server\n respond /r\n route { \n}\n handle {\n}\n handle_path /p/* {\n}\n handle /pp {\n}\n gojinn /a/b/* b.wasm\n}",
        );
        let h = s("handle_0");
        assert_eq!(
            got,
            vec![
                // Same trimmed length: the exact path first.
                (h.clone(), s("/pp"), "subroute"),
                (h.clone(), s("/p/*"), "subroute"),
                (h, None, "subroute"),
                (None, None, "subroute"),
                (None, s("/r"), "respond"),
                (None, None, "file_server"),
                (None, s("/a/b/*"), "gojinn"),
                (None, s("/a/*"), "gojinn"),
            ]
        );
    }

    #[test]
    fn order_option_moves_gojinn() {
        let got = shape(
            "{\n order gojinn before respond\n}\n:1 {\n file_server\n respond\n gojinn a.wasm\n}",
        );
        let kinds: Vec<_> = got.iter().map(|g| g.2).collect();
        assert_eq!(kinds, vec!["gojinn", "respond", "file_server"]);
        let got =
            shape("{\n order gojinn after file_server\n}\n:1 {\n gojinn a.wasm\n file_server\n}");
        let kinds: Vec<_> = got.iter().map(|g| g.2).collect();
        assert_eq!(kinds, vec!["file_server", "gojinn"]);
    }

    #[test]
    fn route_keeps_written_order() {
        let loaded = crate::caddyfile::adapt(
            ":1 {\n route {\n  gojinn a.wasm\n  respond /x\n  file_server\n }\n}",
            Path::new("/c/Caddyfile"),
            &|_| None,
        )
        .unwrap();
        let Handler::Subroute { routes, .. } = &loaded.config.sites[0].routes[0].handle else {
            panic!("expected a subroute");
        };
        let kinds: Vec<bool> = routes
            .iter()
            .map(|r| matches!(r.handle, Handler::Gojinn(_)))
            .collect();
        assert_eq!(kinds, vec![true, false, false]);
        assert!(routes.iter().all(|r| r.group.is_none()));
    }
}
