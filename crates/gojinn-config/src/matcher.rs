//! Inline path matchers and the specificity order of routes.
//!
//! Gojinn supports Caddy's path matcher forms `/exact`, `/prefix*` and `*suffix`
//! (a `*` only at the start or the end), and `*` for every request. Named
//! matchers (`@name`) are in `named`.

use std::cmp::Reverse;

use crate::conditions::MatcherSet;
use crate::lexer::{Kind, Token};
use crate::model::Route;

/// Whether `token` is written as a matcher: an unquoted word starting with `/`,
/// `*` or `@`. Quoting a word makes it plain text (`respond "/not-a-matcher"`).
pub(crate) fn is_matcher_token(token: &Token) -> bool {
    token.kind == Kind::Word
        && (token.text.starts_with('/')
            || token.text.starts_with('*')
            || token.text.starts_with('@'))
}

/// Parses an inline path matcher into the model's form: `None` matches
/// everything.
pub(crate) fn parse(text: &str) -> Result<Option<String>, String> {
    if text == "*" {
        return Ok(None);
    }
    check_pattern(text)?;
    Ok(Some(text.to_owned()))
}

/// Checks a path pattern of the model (`Route::matcher`).
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    let forms = "use `/exact`, `/prefix*`, `*suffix` or `*`";
    if p == "*" {
        return Ok(());
    }
    if let Some(suffix) = p.strip_prefix('*') {
        if suffix.contains('*') {
            return Err(format!(
                "path matcher `{p}` is not supported: a `*` may appear only at the start or at the end ({forms})"
            ));
        }
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err(format!(
            "invalid path matcher `{p}`: it must start with `/` or `*` ({forms})"
        ));
    }
    let body = p.strip_suffix('*').unwrap_or(p);
    if body.contains('*') {
        return Err(format!(
            "path matcher `{p}` is not supported: a `*` may appear only at the start or at the end ({forms})"
        ));
    }
    if p.chars().any(char::is_control) {
        return Err(format!(
            "invalid path matcher `{p}`: it contains a control character"
        ));
    }
    Ok(())
}

/// Sort key of a route among routes of the same directive, after Caddy's
/// `sortRoutes`: the longer path (trailing `*` trimmed) first; for the same
/// trimmed path, the exact one before the wildcard one; routes without a matcher
/// last. Equal keys keep their written order (the sort is stable).
///
/// Caddy only sub-sorts paths of equal trimmed length when they are the same
/// string; ordering the rest by "exact first" is equivalent, because an exact
/// path and a prefix of the same length can both match a request only when
/// they are the same string.
///
/// A named matcher sorts by its first `path`; among routes without a path, one
/// with a named matcher comes before one with no matcher at all (Caddy's rule).
pub(crate) fn specificity(route: &Route) -> (Reverse<usize>, bool, bool) {
    let path = route
        .matcher
        .as_deref()
        .or_else(|| route.conditions.as_ref().and_then(MatcherSet::first_path));
    let any = route.matcher.is_some() || route.conditions.is_some();
    let (len, wild) = path_key(path);
    (len, wild, !any)
}

fn path_key(matcher: Option<&str>) -> (Reverse<usize>, bool) {
    match matcher {
        None => (Reverse(0), false),
        Some(p) => {
            let trimmed = p.strip_suffix('*').unwrap_or(p);
            (Reverse(trimmed.len()), p.ends_with('*'))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use crate::lexer::lex;

    #[test]
    fn matcher_tokens() {
        let t = lex("/a * *.json @x \"/q\" a").unwrap();
        let m: Vec<bool> = t.iter().map(is_matcher_token).collect();
        assert_eq!(m, vec![true, true, true, true, false, false]);
    }

    #[test]
    fn forms() {
        assert_eq!(parse("*"), Ok(None));
        for ok in ["/", "/exact", "/api/*", "/api*", "*.json", "/*"] {
            assert_eq!(parse(ok), Ok(Some(ok.to_owned())));
        }
        for bad in ["/a/*/b", "**", "*a*", "api", "/a\u{7}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorting_keys() {
        let mut v = vec![
            None,
            Some("/api/*"),
            Some("/a"),
            Some("/api/v1/*"),
            Some("/api"),
            Some("*.json"),
        ];
        v.sort_by_key(|m| path_key(*m));
        assert_eq!(
            v,
            vec![
                Some("/api/v1/*"),
                Some("*.json"),
                Some("/api/*"),
                Some("/api"),
                Some("/a"),
                None
            ]
        );
        // exact before wildcard for the same trimmed path
        let mut v = vec![Some("/foo*"), Some("/foo")];
        v.sort_by_key(|m| path_key(*m));
        assert_eq!(v, vec![Some("/foo"), Some("/foo*")]);
    }
}
