//! Inline path matchers and the specificity order of routes.
//!
//! Gojinn supports Caddy's path matcher forms `/exact`, `/prefix*` and `*suffix`
//! (a `*` only at the start or the end), and `*` for every request. Named
//! matchers (`@name`) are not supported.

use std::cmp::Reverse;

use crate::lexer::{Kind, Token};

/// Whether `token` is written as a matcher: an unquoted word starting with `/`,
/// `*` or `@`. Quoting a word makes it plain text (`respond "/not-a-matcher"`).
pub(crate) fn is_matcher_token(token: &Token) -> bool {
    token.kind == Kind::Word
        && (token.text.starts_with('/')
            || token.text.starts_with('*')
            || token.text.starts_with('@'))
}

/// Parses an inline matcher into the model's form: `None` matches everything.
pub(crate) fn parse(text: &str) -> Result<Option<String>, String> {
    if let Some(name) = text.strip_prefix('@') {
        return Err(format!(
            "named matchers (`@{name}`) are not supported by gojinn; use an inline path matcher \
             such as `/api/*`, or nest the directives in `handle /api/* {{ … }}`"
        ));
    }
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
pub(crate) fn specificity(matcher: Option<&str>) -> (Reverse<usize>, bool) {
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
        assert!(parse("@api")
            .unwrap_err()
            .starts_with("named matchers (`@api`) are not supported by gojinn"));
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
        v.sort_by_key(|m| specificity(*m));
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
        v.sort_by_key(|m| specificity(*m));
        assert_eq!(v, vec![Some("/foo"), Some("/foo*")]);
    }
}
