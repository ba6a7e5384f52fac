//! Caddyfile lexer: text → tokens with positions and logical lines.
//!
//! Rules (Caddy's): tokens are separated by whitespace; `#` starts a comment only
//! at the start of a token; `"double quoted"` tokens may span lines and know one
//! escape, `\"` (a `\` before a newline keeps the newline; any other `\x` stays
//! as written); `` `backtick` `` tokens are raw; `{` and `}` are braces only when
//! they stand alone, so `{env.X}` is an ordinary word; a `\` right before a
//! newline joins the two lines into one logical line.

use crate::error::{PResult, Pos, PosError};

/// What a token is, as far as the block structure is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted word.
    Word,
    /// A `"double"` or `` `backtick` `` quoted string (never a brace or matcher).
    Quoted,
    /// A lone `{`.
    Open,
    /// A lone `}`.
    Close,
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The text, quotes removed and escapes applied.
    pub(crate) text: String,
    /// Where the token starts (its opening quote for quoted tokens).
    pub(crate) pos: Pos,
    /// Structural kind.
    pub(crate) kind: Kind,
    /// Logical line number: grows at every newline not escaped by `\` and not
    /// inside quotes. Tokens of one directive share it.
    pub(crate) line: usize,
    /// Byte offset in `text` → source position, for every `{` in `text`: lets a
    /// placeholder warning point at the placeholder itself.
    pub(crate) braces: Vec<(usize, Pos)>,
    /// A `{env.X}` placeholder was substituted into `text`: a value that may
    /// be a secret (crash records redact it).
    pub(crate) from_env: bool,
}

impl Token {
    /// Whether this token is plain text (a word or a quoted string).
    pub(crate) fn is_text(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Quoted)
    }
}

struct Cursor {
    src: u32,
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
            src: self.src,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// If a `\` followed by a newline (`\n` or `\r\n`) is next, consumes it.
    fn eat_escaped_newline(&mut self) -> bool {
        if self.peek() != Some('\\') {
            return false;
        }
        let len = match (self.peek_at(1), self.peek_at(2)) {
            (Some('\n'), _) => 2,
            (Some('\r'), Some('\n')) => 3,
            _ => return false,
        };
        for _ in 0..len {
            self.bump();
        }
        true
    }
}

/// Splits `src` into tokens.
#[cfg(test)]
pub(crate) fn lex(src: &str) -> PResult<Vec<Token>> {
    lex_source(src, 0)
}

/// Splits the text `src` into tokens whose positions name the source `id`.
pub(crate) fn lex_source(src: &str, id: u32) -> PResult<Vec<Token>> {
    let mut cur = Cursor {
        src: id,
        chars: src
            .strip_prefix('\u{feff}')
            .unwrap_or(src)
            .chars()
            .collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut tokens = Vec::new();
    let mut logical = 1;
    while let Some(c) = cur.peek() {
        if c == '\n' {
            cur.bump();
            logical += 1;
        } else if c.is_whitespace() {
            cur.bump();
        } else if cur.eat_escaped_newline() {
            // A continued line: the tokens after it stay on this logical line.
        } else if c == '#' {
            while cur.peek().is_some_and(|c| c != '\n') {
                cur.bump();
            }
        } else if c == '"' {
            tokens.push(quoted(&mut cur, logical)?);
        } else if c == '`' {
            tokens.push(backtick(&mut cur, logical)?);
        } else {
            tokens.push(word(&mut cur, logical));
        }
    }
    Ok(tokens)
}

fn push_char(text: &mut String, braces: &mut Vec<(usize, Pos)>, c: char, pos: Pos) {
    if c == '{' {
        braces.push((text.len(), pos));
    }
    text.push(c);
}

fn word(cur: &mut Cursor, line: usize) -> Token {
    let pos = cur.pos();
    let mut text = String::new();
    let mut braces = Vec::new();
    while let Some(c) = cur.peek() {
        if c.is_whitespace() || (c == '\\' && cur.eat_escaped_newline()) {
            break;
        }
        let at = cur.pos();
        cur.bump();
        push_char(&mut text, &mut braces, c, at);
    }
    let kind = match text.as_str() {
        "{" => Kind::Open,
        "}" => Kind::Close,
        _ => Kind::Word,
    };
    if kind != Kind::Word {
        braces.clear();
    }
    Token {
        text,
        pos,
        kind,
        line,
        braces,
        from_env: false,
    }
}

/// A `"double-quoted"` string: `\"` is an escaped quote and a `\` before a newline
/// keeps the newline; any other backslash is literal.
fn quoted(cur: &mut Cursor, line: usize) -> PResult<Token> {
    delimited(
        cur,
        line,
        '"',
        true,
        "unterminated quoted string: no closing `\"` before the end of the file",
    )
}

/// A `` `backtick` `` string: raw, no escapes.
fn backtick(cur: &mut Cursor, line: usize) -> PResult<Token> {
    delimited(
        cur,
        line,
        '`',
        false,
        "unterminated backtick string: no closing `` ` `` before the end of the file",
    )
}

/// A string from the opening `close` character at the cursor to the next unescaped
/// `close`. Both forms are [`Kind::Quoted`] tokens.
fn delimited(
    cur: &mut Cursor,
    line: usize,
    close: char,
    escapes: bool,
    unterminated: &'static str,
) -> PResult<Token> {
    let pos = cur.pos();
    cur.bump(); // the opening delimiter
    let mut text = String::new();
    let mut braces = Vec::new();
    loop {
        let at = cur.pos();
        match cur.bump() {
            None => return Err(PosError::new(pos, unterminated)),
            Some(c) if c == close => break,
            Some('\\') if escapes => match cur.peek() {
                Some(next @ ('"' | '\n')) => {
                    cur.bump();
                    text.push(next);
                }
                _ => text.push('\\'),
            },
            Some(c) => push_char(&mut text, &mut braces, c, at),
        }
    }
    Ok(Token {
        text,
        pos,
        kind: Kind::Quoted,
        line,
        braces,
        from_env: false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<(String, Kind, usize, usize, usize)> {
        lex(src)
            .unwrap()
            .into_iter()
            .map(|t| (t.text, t.kind, t.line, t.pos.line, t.pos.col))
            .collect()
    }

    fn texts(src: &str) -> Vec<String> {
        lex(src).unwrap().into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn quoted_escapes_and_raw_backticks() {
        assert_eq!(texts(r#""a\"b" "c\d""#), ["a\"b", "c\\d"]);
        assert_eq!(texts("\"x\\\ny\""), ["x\ny"]);
        assert_eq!(texts(r#"`a\"b\`"#), ["a\\\"b\\"]);
        for src in ["\"open", "`open"] {
            let err = lex(src).unwrap_err();
            assert!(
                err.message.contains("unterminated"),
                "{src}: {}",
                err.message
            );
        }
    }

    #[test]
    fn words_braces_and_lines() {
        let t = toks(":8080 {\n  respond hi\n}\n");
        assert_eq!(
            t,
            vec![
                (":8080".into(), Kind::Word, 1, 1, 1),
                ("{".into(), Kind::Open, 1, 1, 7),
                ("respond".into(), Kind::Word, 2, 2, 3),
                ("hi".into(), Kind::Word, 2, 2, 11),
                ("}".into(), Kind::Close, 3, 3, 1),
            ]
        );
    }

    #[test]
    fn placeholder_braces_are_words() {
        let t = toks("env K {env.X} {$Y}");
        assert!(t.iter().all(|t| t.1 == Kind::Word));
        let t = lex("a{b}").unwrap();
        assert_eq!(t[0].braces, vec![(1, Pos::at(1, 2))]);
    }

    #[test]
    fn comments_only_at_token_start() {
        assert_eq!(texts("a#b # comment\nc"), vec!["a#b", "c"]);
        assert_eq!(texts("\"#x\" `#y`"), vec!["#x", "#y"]);
    }

    #[test]
    fn double_quotes_and_escapes() {
        assert_eq!(
            texts(r#""a b" "say \"hi\"" "c:\\d""#),
            vec!["a b", "say \"hi\"", "c:\\\\d"]
        );
        let t = lex("\"line1\nline2\" next\nafter").unwrap();
        assert_eq!(t[0].text, "line1\nline2");
        // `next` is on the line where the string ended: same logical line.
        assert_eq!(t[1].line, t[0].line);
        assert_eq!(t[2].line, t[0].line + 1);
    }

    #[test]
    fn backticks_are_raw() {
        assert_eq!(texts(r#"`a "b" \c`"#), vec![r#"a "b" \c"#]);
    }

    #[test]
    fn quoted_braces_are_text() {
        let t = lex("\"{\" `}`").unwrap();
        assert!(t.iter().all(|t| t.kind == Kind::Quoted));
    }

    #[test]
    fn line_continuation() {
        let t = toks("gojinn a.wasm \\\n  b\nc");
        assert_eq!(t[2].0, "b");
        assert_eq!(t[2].2, 1, "continued line keeps the logical line");
        assert_eq!(
            (t[2].3, t[2].4),
            (2, 3),
            "but reports the physical position"
        );
        assert_eq!(t[3].2, 2);
        // A backslash glued to the word also continues the line.
        assert_eq!(texts("a\\\r\nb"), vec!["a", "b"]);
        // A backslash elsewhere is kept.
        assert_eq!(texts("a\\b \\"), vec!["a\\b", "\\"]);
    }

    #[test]
    fn crlf_and_bom() {
        let t = toks("\u{feff}a\r\nb");
        assert_eq!(t[0].4, 1);
        assert_eq!((t[1].0.as_str(), t[1].2), ("b", 2));
    }

    #[test]
    fn unterminated_strings() {
        let e = lex("respond \"oops").unwrap_err();
        assert_eq!(e.pos, Pos::at(1, 9));
        assert!(e.message.starts_with("unterminated quoted string"));
        let e = lex("x\n `raw").unwrap_err();
        assert_eq!(e.pos, Pos::at(2, 2));
    }

    #[test]
    fn columns_count_characters() {
        let t = toks("é ü");
        assert_eq!(t[1].4, 3);
    }
}
