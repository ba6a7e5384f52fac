//! Parse-time placeholders: `{env.NAME}`, `{$NAME}` and `{$NAME:default}`.
//!
//! They are replaced inside every text token (quoted ones included) after
//! lexing, so a value never splits a token or opens a block, and a substituted
//! value is never scanned again. An unset variable becomes the empty string and
//! produces a warning at the placeholder. Every other `{…}` (runtime placeholders
//! such as `{http.request.uri}`) is left as written.

use crate::error::Pos;
use crate::lexer::Token;

/// Looks up one environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Replaces the placeholders of all `tokens`; warnings are pushed to `warnings`.
pub(crate) fn substitute(tokens: &mut [Token], env: Env<'_>, warnings: &mut Vec<(Pos, String)>) {
    for token in tokens
        .iter_mut()
        .filter(|t| t.is_text() && !t.braces.is_empty())
    {
        let text = std::mem::take(&mut token.text);
        token.text = substitute_text(&text, token, env, warnings);
        token.from_env = token.text != text || text.contains("{env.");
        token.braces.clear();
    }
}

fn substitute_text(
    text: &str,
    token: &Token,
    env: Env<'_>,
    warnings: &mut Vec<(Pos, String)>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0; // byte offset of `rest` in `text`
    while let Some(start) = rest.find('{') {
        let (before, from_brace) = rest.split_at(start);
        out.push_str(before);
        let consumed = match parse_placeholder(from_brace) {
            Some((len, name, default)) => {
                let value = match (env(name), default) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_owned(),
                    (None, None) => {
                        // `braces` is in text order: a binary search keeps
                        // tokens full of placeholders linear.
                        let pos = token
                            .braces
                            .binary_search_by_key(&(offset + start), |(o, _)| *o)
                            .ok()
                            .and_then(|i| token.braces.get(i))
                            .map_or(token.pos, |(_, p)| *p);
                        warnings.push((
                            pos,
                            format!(
                                "environment variable `{name}` is not set; using an empty string"
                            ),
                        ));
                        String::new()
                    }
                };
                out.push_str(&value);
                len
            }
            None => {
                out.push('{');
                1
            }
        };
        // `consumed` ends on a char boundary: it is 1 (the ASCII `{`) or the
        // length up to and including an ASCII `}`.
        rest = from_brace.get(consumed..).unwrap_or("");
        offset += start + consumed;
    }
    out.push_str(rest);
    out
}

/// If `s` starts with a placeholder, returns its length in bytes, the variable
/// name and the default value.
fn parse_placeholder(s: &str) -> Option<(usize, &str, Option<&str>)> {
    let end = s.find('}')?;
    let inner = s.get(1..end)?;
    if inner.contains('{') {
        return None;
    }
    if let Some(name) = inner.strip_prefix("env.") {
        return (!name.is_empty()).then_some((end + 1, name, None));
    }
    let body = inner.strip_prefix('$')?;
    let (name, default) = match body.split_once(':') {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    (!name.is_empty()).then_some((end + 1, name, default))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn run(src: &str) -> (Vec<String>, Vec<(Pos, String)>) {
        let env = |k: &str| match k {
            "HOME_DIR" => Some("/home/me".to_owned()),
            "EMPTY" => Some(String::new()),
            "BRACE" => Some("{env.HOME_DIR}".to_owned()),
            _ => None,
        };
        let mut tokens = lex(src).unwrap();
        let mut warnings = Vec::new();
        substitute(&mut tokens, &env, &mut warnings);
        (tokens.into_iter().map(|t| t.text).collect(), warnings)
    }

    #[test]
    fn both_syntaxes_anywhere_in_a_token() {
        let (t, w) = run("a{env.HOME_DIR}/x \"{$HOME_DIR}\" `{$EMPTY}`");
        assert_eq!(t, vec!["a/home/me/x", "/home/me", ""]);
        assert!(w.is_empty(), "set-but-empty is not a warning");
    }

    #[test]
    fn defaults() {
        let (t, w) = run("{$NOPE:8080} {$HOME_DIR:x} {$NOPE:}");
        assert_eq!(t, vec!["8080", "/home/me", ""]);
        assert!(w.is_empty());
    }

    #[test]
    fn unset_warns_at_the_placeholder() {
        let (t, w) = run("x\n  pre-{env.SECRET}-{$OTHER}");
        assert_eq!(t, vec!["x", "pre--"]);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].0, Pos::at(2, 7));
        assert_eq!(
            w[0].1,
            "environment variable `SECRET` is not set; using an empty string"
        );
        assert_eq!(w[1].0, Pos::at(2, 20));
    }

    #[test]
    fn other_placeholders_stay() {
        let (t, w) = run("{http.request.uri} {env.} {$} {env.A {x}} {");
        assert_eq!(
            t,
            vec!["{http.request.uri}", "{env.}", "{$}", "{env.A", "{x}}", "{"]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn values_are_not_rescanned() {
        let (t, _) = run("{$BRACE}");
        assert_eq!(t, vec!["{env.HOME_DIR}"]);
    }
}
