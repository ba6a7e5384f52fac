//! Named matchers: `@name { <kind> … }` and `@name <kind> …` definitions, and
//! the matcher token of a directive (`*`, `/path`, `@name`) resolved against
//! the definitions in scope.
//!
//! Definitions are scoped as in Caddy: a block sees its own and its enclosing
//! blocks' definitions, wherever in the block they are written.

use std::net::IpAddr;

use crate::caddyfile::unexpected;
use crate::conditions::{HeaderMatch, HeaderRegexp, MatcherSet, QueryMatch, Regexp};
use crate::directives::split;
use crate::error::{PResult, Pos, PosError};
use crate::lexer::{Kind, Token};
use crate::matcher;
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;

/// The matcher kinds gojinn implements.
const KINDS: &[&str] = &[
    "path",
    "path_regexp",
    "method",
    "header",
    "header_regexp",
    "query",
    "host",
    "protocol",
    "remote_ip",
    "client_ip",
    "not",
];

/// Caddy's matcher kinds gojinn does not implement.
const UNSUPPORTED_KINDS: &[&str] = &["expression", "file", "vars", "vars_regexp"];

/// Longest compiled form of one regular expression (the `regex` crate's
/// default is 10 MiB; a matcher needs far less, and configs are untrusted).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A named matcher in scope: its name (with `@`), its set and where it is
/// defined.
pub(crate) type Definition = (String, MatcherSet, Pos);

/// What a directive's matcher token selects.
#[derive(Debug, Default)]
pub(crate) struct RouteMatch {
    /// An inline path pattern.
    pub(crate) path: Option<String>,
    /// A named matcher's conditions.
    pub(crate) conditions: Option<MatcherSet>,
}

impl RouteMatch {
    /// A route with this matcher.
    pub(crate) fn route(self, group: Option<String>, handle: Handler) -> Route {
        Route {
            group,
            matcher: self.path,
            conditions: self.conditions,
            handle,
        }
    }
}

/// Whether `node` defines a named matcher.
pub(crate) fn is_definition(node: &Node) -> bool {
    node.words
        .first()
        .is_some_and(|w| w.kind == Kind::Word && w.text.starts_with('@'))
}

/// The definitions of a block, added to the ones of its enclosing blocks
/// (`inherited`); a name defined here shadows an enclosing one.
pub(crate) fn scope(inherited: &[Definition], nodes: &[Node]) -> PResult<Vec<Definition>> {
    let mut here: Vec<Definition> = Vec::new();
    for node in nodes.iter().filter(|n| is_definition(n)) {
        let (name, _) = split(node)?;
        if let Some((_, _, first)) = here.iter().find(|(n, _, _)| *n == name.text) {
            return Err(PosError::new(
                name.pos,
                format!(
                    "named matcher `{}` is defined twice in this block (first at line {}, column {})",
                    name.text, first.line, first.col
                ),
            ));
        }
        let set = definition(node)?;
        here.push((name.text.clone(), set, name.pos));
    }
    let mut all: Vec<Definition> = inherited
        .iter()
        .filter(|(n, _, _)| !here.iter().any(|(h, _, _)| h == n))
        .cloned()
        .collect();
    all.extend(here);
    Ok(all)
}

/// Resolves a matcher token: `*` (everything), a path pattern or `@name`.
pub(crate) fn resolve(defs: &[Definition], token: &Token) -> PResult<RouteMatch> {
    let Some(wanted) = token.text.strip_prefix('@') else {
        let path = matcher::parse(&token.text).map_err(|e| PosError::new(token.pos, e))?;
        return Ok(RouteMatch {
            path,
            conditions: None,
        });
    };
    match defs.iter().find(|(n, _, _)| *n == token.text) {
        Some((_, set, _)) => Ok(RouteMatch {
            path: None,
            conditions: Some(set.clone()),
        }),
        None => {
            let names: Vec<&str> = defs.iter().map(|(n, _, _)| &n[1..]).collect();
            let near = crate::names::suggest(wanted, &names)
                .map(|s| format!(" (did you mean `@{s}`?)"))
                .unwrap_or_default();
            Err(PosError::new(
                token.pos,
                format!(
                    "unknown named matcher `{}`{near}: define it in this site, e.g. `{} path /api/*`",
                    token.text, token.text
                ),
            ))
        }
    }
}

/// One definition: `@name { … }` or `@name <kind> …`.
fn definition(node: &Node) -> PResult<MatcherSet> {
    let (name, args) = split(node)?;
    let bare = &name.text[1..];
    if bare.is_empty()
        || !bare
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(PosError::new(
            name.pos,
            format!(
                "invalid matcher name `{}`: use letters, digits, `_`, `-` and `.` after the `@`",
                name.text
            ),
        ));
    }
    let mut set = MatcherSet {
        name: name.text.clone(),
        ..MatcherSet::default()
    };
    match (args.split_first(), &node.block) {
        (Some((first, _)), _) if first.kind == Kind::Quoted => {
            return Err(expression(first.pos));
        }
        (Some((kind, rest)), None) => condition(&mut set, bare, kind, rest, None)?,
        (Some(_), Some(b)) => {
            return Err(PosError::new(
                b.open,
                format!(
                "named matcher `{}` takes either one condition on its line or a block, not both",
                name.text
            ),
            ))
        }
        (None, Some(b)) => {
            for sub in &b.nodes {
                let (kind, rest) = split(sub)?;
                condition(
                    &mut set,
                    bare,
                    kind,
                    rest,
                    sub.block.as_ref().map(|b| &b.nodes[..]),
                )?;
            }
        }
        (None, None) => {}
    }
    if set
        == (MatcherSet {
            name: name.text.clone(),
            ..MatcherSet::default()
        })
    {
        return Err(PosError::new(
            name.pos,
            format!(
                "named matcher `{}` has no conditions, e.g. `{} path /api/*`",
                name.text, name.text
            ),
        ));
    }
    Ok(set)
}

fn expression(pos: Pos) -> PosError {
    PosError::new(
        pos,
        "`expression` matchers (CEL) are not supported by gojinn; write the conditions with \
         `path`, `method`, `header`, `query`, `host`, `protocol`, `remote_ip` and `not`",
    )
}

/// Adds one `<kind> <args…>` line (and its block, for `not`) to `set`.
/// `matcher_name` is the default name of regexp captures.
fn condition(
    set: &mut MatcherSet,
    matcher_name: &str,
    kind: &Token,
    args: &[Token],
    block: Option<&[Node]>,
) -> PResult<()> {
    let k = kind.text.as_str();
    if k != "not" {
        if let Some(nodes) = block {
            let pos = nodes.first().map_or(kind.pos, Node::pos);
            return Err(PosError::new(
                pos,
                format!("matcher `{k}` does not take a block"),
            ));
        }
    }
    let needs = |example: &str| {
        PosError::new(
            kind.pos,
            format!("matcher `{k}` needs a value, e.g. `{example}`"),
        )
    };
    let once = |given: bool| {
        if given {
            Err(PosError::new(
                kind.pos,
                format!("matcher `{k}` is given twice in one matcher set; write it once"),
            ))
        } else {
            Ok(())
        }
    };
    let at = |t: &Token| {
        let pos = t.pos;
        move |e: String| PosError::new(pos, e)
    };
    match k {
        "path" => {
            if args.is_empty() {
                return Err(needs("path /api/*"));
            }
            for a in args {
                matcher::check_pattern(&a.text).map_err(at(a))?;
                set.path.push(a.text.clone());
            }
        }
        "path_regexp" => {
            once(set.path_regexp.is_some())?;
            let (name, re) = match args {
                [re] => (matcher_name.to_owned(), re),
                [name, re] => (name.text.clone(), re),
                [] => return Err(needs("path_regexp ^/user/([0-9]+)$")),
                [_, _, extra, ..] => {
                    return Err(unexpected(
                        extra,
                        "`path_regexp` takes a name and an expression",
                    ))
                }
            };
            check_regexp(&re.text).map_err(at(re))?;
            set.path_regexp = Some(Regexp {
                name,
                pattern: re.text.clone(),
            });
        }
        "method" => {
            if args.is_empty() {
                return Err(needs("method GET POST"));
            }
            for a in args {
                check_token("method", &a.text).map_err(at(a))?;
                set.method.push(a.text.to_ascii_uppercase());
            }
        }
        "header" => {
            let Some((field, values)) = args.split_first() else {
                return Err(needs("header Content-Type application/json"));
            };
            let (absent, name) = match field.text.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, field.text.as_str()),
            };
            check_token("header field", name).map_err(at(field))?;
            if absent {
                if let Some(v) = values.first() {
                    return Err(unexpected(
                        v,
                        "`header !Field` takes no value: the field must be absent",
                    ));
                }
            }
            match set
                .header
                .iter_mut()
                .find(|h| h.field.eq_ignore_ascii_case(name))
            {
                Some(h) if h.absent == absent && !absent => {
                    h.values.extend(values.iter().map(|v| v.text.clone()))
                }
                Some(_) => {
                    return Err(PosError::new(
                        field.pos,
                        format!(
                        "header field `{name}` is both required and excluded in this matcher set"
                    ),
                    ))
                }
                None => set.header.push(HeaderMatch {
                    field: name.to_owned(),
                    values: values.iter().map(|v| v.text.clone()).collect(),
                    absent,
                }),
            }
        }
        "header_regexp" => {
            let (name, field, re) = match args {
                [field, re] => (matcher_name.to_owned(), field, re),
                [name, field, re] => (name.text.clone(), field, re),
                [] | [_] => return Err(needs("header_regexp Cookie session=([a-f0-9]+)")),
                [_, _, _, extra, ..] => {
                    return Err(unexpected(
                        extra,
                        "`header_regexp` takes a name, a field and an expression",
                    ))
                }
            };
            check_token("header field", &field.text).map_err(at(field))?;
            check_regexp(&re.text).map_err(at(re))?;
            if set
                .header_regexp
                .iter()
                .any(|h| h.field.eq_ignore_ascii_case(&field.text))
            {
                return Err(PosError::new(
                    field.pos,
                    format!(
                        "`header_regexp` for field `{}` is given twice in this matcher set",
                        field.text
                    ),
                ));
            }
            set.header_regexp.push(HeaderRegexp {
                field: field.text.clone(),
                regexp: Regexp {
                    name,
                    pattern: re.text.clone(),
                },
            });
        }
        "query" => {
            if args.is_empty() {
                return Err(needs("query page=1"));
            }
            for a in args {
                let Some((key, value)) = a.text.split_once('=') else {
                    return Err(PosError::new(
                        a.pos,
                        format!(
                            "invalid query matcher `{}`: write `key=value`, or `key=*` for any value",
                            a.text
                        ),
                    ));
                };
                match set.query.iter_mut().find(|q| q.key == key) {
                    Some(q) => q.values.push(value.to_owned()),
                    None => set.query.push(QueryMatch {
                        key: key.to_owned(),
                        values: vec![value.to_owned()],
                    }),
                }
            }
        }
        "host" => {
            if args.is_empty() {
                return Err(needs("host example.com"));
            }
            for a in args {
                check_host(&a.text).map_err(at(a))?;
                set.host.push(a.text.to_ascii_lowercase());
            }
        }
        "protocol" => {
            once(set.protocol.is_some())?;
            let p = match args {
                [p] => p,
                [] => return Err(needs("protocol https")),
                [_, extra, ..] => return Err(unexpected(extra, "`protocol` takes one value")),
            };
            let lower = p.text.to_ascii_lowercase();
            check_protocol(&lower).map_err(at(p))?;
            set.protocol = Some(lower);
        }
        "remote_ip" | "client_ip" => {
            if let Some(f) = args.first().filter(|a| a.text == "forwarded") {
                return Err(PosError::new(
                    f.pos,
                    "`remote_ip forwarded` is not supported (Caddy removed it too): use `client_ip`",
                ));
            }
            if args.is_empty() {
                return Err(needs(&format!("{k} 10.0.0.0/8")));
            }
            let list = if k == "remote_ip" {
                &mut set.remote_ip
            } else {
                &mut set.client_ip
            };
            for a in args {
                check_ip_range(&a.text).map_err(at(a))?;
                list.push(a.text.clone());
            }
        }
        "not" => {
            let mut inner = MatcherSet::default();
            match (args.split_first(), block) {
                (Some((kind, rest)), None) => {
                    if kind.text == "not" {
                        return Err(PosError::new(
                            kind.pos,
                            "`not not` is not supported: drop both",
                        ));
                    }
                    condition(&mut inner, matcher_name, kind, rest, None)?
                }
                (None, Some(nodes)) if !nodes.is_empty() => {
                    for sub in nodes {
                        let (kind, rest) = split(sub)?;
                        condition(
                            &mut inner,
                            matcher_name,
                            kind,
                            rest,
                            sub.block.as_ref().map(|b| &b.nodes[..]),
                        )?;
                    }
                }
                (Some(_), Some(nodes)) => {
                    let pos = nodes.first().map_or(kind.pos, Node::pos);
                    return Err(PosError::new(
                        pos,
                        "`not` takes either one condition on its line or a block, not both",
                    ));
                }
                (None, _) => return Err(needs("not path /admin/*")),
            }
            set.not.push(inner);
        }
        "expression" => return Err(expression(kind.pos)),
        _ if UNSUPPORTED_KINDS.contains(&k) => {
            return Err(PosError::new(
                kind.pos,
                format!("matcher `{k}` is not supported by gojinn"),
            ))
        }
        _ => {
            return Err(PosError::new(
                kind.pos,
                format!(
                    "unknown matcher `{k}`{}",
                    hint(k, &[KINDS, UNSUPPORTED_KINDS])
                ),
            ))
        }
    }
    Ok(())
}

/// Compiles `pattern` as the server will.
pub(crate) fn check_regexp(pattern: &str) -> Result<(), String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| {
            let why = e.to_string();
            let last = why.lines().last().unwrap_or("").trim();
            let last = last.strip_prefix("error: ").unwrap_or(last);
            format!("invalid regular expression `{pattern}`: {last}")
        })
}

/// An HTTP token (method, header field name).
pub(crate) fn check_token(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {what} `{s}`"))
    }
}

fn check_host(h: &str) -> Result<(), String> {
    let ok = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.*_:[]".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid host `{h}`: expected a name such as `example.com` or `*.example.com`"
        ))
    }
}

/// The protocols `protocol` accepts.
const PROTOCOLS: &[&str] = &[
    "http",
    "https",
    "grpc",
    "http/1.0",
    "http/1.1",
    "http/2",
    "http/3",
    "http/1.0+",
    "http/1.1+",
    "http/2+",
    "http/3+",
];

fn check_protocol(p: &str) -> Result<(), String> {
    if PROTOCOLS.contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "unknown protocol `{p}`{}: use `http`, `https`, `grpc` or a version such as `http/2` or `http/2+`",
            hint(p, &[PROTOCOLS])
        ))
    }
}

/// An IP address, a CIDR range, or `private_ranges`.
pub(crate) fn check_ip_range(s: &str) -> Result<(), String> {
    if s == "private_ranges" || s.parse::<IpAddr>().is_ok() || s.parse::<ipnet::IpNet>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "invalid IP range `{s}`: expected an address (`10.0.0.1`), a CIDR range (`10.0.0.0/8`, `::1/128`) or `private_ranges`"
        ))
    }
}

/// Checks a set read from JSON: the same rules as the Caddyfile's.
pub(crate) fn validate(set: &MatcherSet) -> Result<(), String> {
    for p in &set.path {
        matcher::check_pattern(p)?;
    }
    let regexps = set
        .path_regexp
        .iter()
        .chain(set.header_regexp.iter().map(|h| &h.regexp));
    for r in regexps {
        check_regexp(&r.pattern)?;
    }
    for m in &set.method {
        check_token("method", m)?;
    }
    for h in set
        .header
        .iter()
        .map(|h| &h.field)
        .chain(set.header_regexp.iter().map(|h| &h.field))
    {
        check_token("header field", h)?;
    }
    for h in &set.host {
        check_host(h)?;
    }
    if let Some(p) = &set.protocol {
        check_protocol(p)?;
    }
    for r in set.remote_ip.iter().chain(&set.client_ip) {
        check_ip_range(r)?;
    }
    set.not.iter().try_for_each(validate)
}
