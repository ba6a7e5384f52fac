//! `import`: snippets (`(name) { … }` at the top level of a file) and files
//! (a path or a glob, relative to the importing file), expanded at the token
//! level before the tree is built, as Caddy does. `{args[N]}` in what is
//! imported is the Nth argument after the name; a token that is exactly
//! `{args[:]}` (or `{args[N:]}`, `{args[:M]}`, `{args[N:M]}`) becomes those
//! arguments. Every imported token knows where it came from and where it was
//! imported ([`Sources`]), so an error names both places.

use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, PResult, Pos, PosError};
use crate::lexer::{self, Kind, Token};
use crate::placeholders::{self, Env};

/// Deepest chain of imports (an import inside an imported text, …).
const MAX_IMPORT_DEPTH: usize = 16;
/// Most tokens a config may expand to: snippets that import each other
/// twice per level would otherwise grow exponentially.
const MAX_TOKENS: usize = 200_000;

/// The texts a config is made of: the file itself (index 0), then one entry
/// per import of a snippet or file.
pub(crate) struct Sources {
    list: Vec<Source>,
}

struct Source {
    /// The file the text is in.
    file: PathBuf,
    /// The `import` that brought it in; `None` for the config file.
    imported_at: Option<Pos>,
}

impl Sources {
    /// The sources of a config file before any import.
    pub(crate) fn new(file: &Path) -> Sources {
        Sources {
            list: vec![Source {
                file: file.to_path_buf(),
                imported_at: None,
            }],
        }
    }

    fn file(&self, src: u32) -> &Path {
        self.list
            .get(src as usize)
            .or_else(|| self.list.first())
            .map_or(Path::new(""), |s| s.file.as_path())
    }

    /// The config file itself (the first source).
    pub(crate) fn config_file(&self) -> &Path {
        self.file(0)
    }

    /// `file:line:col` of `pos`.
    pub(crate) fn place(&self, pos: Pos) -> String {
        format!("{}:{}:{}", self.file(pos.src).display(), pos.line, pos.col)
    }

    /// The diagnostic for `message` at `pos`: the place in the text it is in,
    /// followed by every `import` that led there.
    pub(crate) fn diagnostic(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        let mut message = message.into();
        let mut at = self.list.get(pos.src as usize).and_then(|s| s.imported_at);
        let mut hops = 0;
        while let Some(p) = at.filter(|_| hops <= MAX_IMPORT_DEPTH) {
            message.push_str(&format!(" (imported at {})", self.place(p)));
            at = self.list.get(p.src as usize).and_then(|s| s.imported_at);
            hops += 1;
        }
        Diagnostic::at(self.file(pos.src), pos, message)
    }

    fn add(&mut self, file: PathBuf, imported_at: Pos) -> PResult<u32> {
        let id = u32::try_from(self.list.len())
            .map_err(|_| PosError::new(imported_at, "too many imports"))?;
        self.list.push(Source {
            file,
            imported_at: Some(imported_at),
        });
        Ok(id)
    }
}

/// A snippet: its body and where it is defined.
struct Snippet {
    name: String,
    body: Vec<Token>,
    at: Pos,
}

struct Expander<'a> {
    sources: &'a mut Sources,
    env: Env<'a>,
    warnings: &'a mut Vec<(Pos, String)>,
    snippets: Vec<Snippet>,
    /// What is being imported now, outermost first: snippet names and files.
    stack: Vec<String>,
    tokens: usize,
}

/// Expands every `import` of `tokens` (the config file's, placeholders
/// already substituted) and takes the snippet definitions out.
pub(crate) fn expand(
    tokens: Vec<Token>,
    sources: &mut Sources,
    env: Env<'_>,
    warnings: &mut Vec<(Pos, String)>,
) -> PResult<Vec<Token>> {
    let main = sources.file(0).display().to_string();
    let mut x = Expander {
        sources,
        env,
        warnings,
        snippets: Vec::new(),
        stack: vec![main],
        tokens: 0,
    };
    let rest = x.take_snippets(tokens)?;
    let mut out = x.expand(rest)?;
    renumber_lines(&mut out);
    Ok(out)
}

impl Expander<'_> {
    /// Removes the top-level `(name) { … }` definitions from `tokens` and
    /// records them.
    fn take_snippets(&mut self, tokens: Vec<Token>) -> PResult<Vec<Token>> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut depth = 0usize;
        let mut it = tokens.into_iter().peekable();
        while let Some(t) = it.next() {
            let name = (depth == 0 && t.kind == Kind::Word)
                .then(|| t.text.strip_prefix('(')?.strip_suffix(')'))
                .flatten()
                .filter(|n| !n.is_empty());
            let opens = it
                .peek()
                .is_some_and(|n| n.kind == Kind::Open && n.line == t.line);
            match name {
                Some(name) if opens => {
                    let name = name.to_owned();
                    if let Some(first) = self.snippets.iter().find(|s| s.name == name) {
                        return Err(PosError::new(
                            t.pos,
                            format!(
                                "snippet `{name}` is defined twice (first at {})",
                                self.sources.place(first.at)
                            ),
                        ));
                    }
                    let open = it.next().map_or(t.pos, |o| o.pos);
                    let mut body = Vec::new();
                    let mut inner = 0usize;
                    loop {
                        match it.next() {
                            None => {
                                return Err(PosError::new(
                                    open,
                                    format!("unclosed `{{` of snippet `{name}`: no matching `}}` before the end of the file"),
                                ))
                            }
                            Some(b) if b.kind == Kind::Close && inner == 0 => break,
                            Some(b) => {
                                match b.kind {
                                    Kind::Open => inner += 1,
                                    Kind::Close => inner -= 1,
                                    _ => {}
                                }
                                body.push(b);
                            }
                        }
                    }
                    self.snippets.push(Snippet {
                        name,
                        body,
                        at: t.pos,
                    });
                }
                _ => {
                    match t.kind {
                        Kind::Open => depth += 1,
                        Kind::Close => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    out.push(t);
                }
            }
        }
        Ok(out)
    }

    /// `tokens` with each `import` line replaced by what it imports.
    fn expand(&mut self, tokens: Vec<Token>) -> PResult<Vec<Token>> {
        let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
        let mut it = tokens.into_iter().peekable();
        let mut prev: Option<(usize, Kind)> = None;
        while let Some(t) = it.next() {
            let line_start = prev.is_none_or(|(line, kind)| {
                line != t.line || matches!(kind, Kind::Open | Kind::Close)
            });
            prev = Some((t.line, t.kind));
            if !(line_start && t.kind == Kind::Word && t.text == "import") {
                out.push(t);
                continue;
            }
            let mut args = Vec::new();
            while let Some(a) = it.next_if(|a| a.is_text() && a.line == t.line) {
                args.push(a);
            }
            if let Some(open) = it.next_if(|a| a.kind == Kind::Open && a.line == t.line) {
                return Err(PosError::new(
                    open.pos,
                    "`import` does not take a block in gojinn",
                ));
            }
            let imported = self.import(&t, &args)?;
            self.tokens += imported.len();
            if self.tokens > MAX_TOKENS {
                return Err(PosError::new(
                    t.pos,
                    format!("the imports expand to more than {MAX_TOKENS} tokens"),
                ));
            }
            out.extend(imported);
        }
        Ok(out)
    }

    /// What `import <args…>` at `at` stands for, expanded.
    fn import(&mut self, at: &Token, args: &[Token]) -> PResult<Vec<Token>> {
        let Some((target, values)) = args.split_first() else {
            return Err(PosError::new(
                at.pos,
                "`import` needs a snippet name or a file, e.g. `import common` or `import sites/*.caddy`",
            ));
        };
        if self.stack.len() > MAX_IMPORT_DEPTH {
            return Err(PosError::new(
                at.pos,
                format!("imports are nested too deeply (more than {MAX_IMPORT_DEPTH} levels)"),
            ));
        }
        let values: Vec<String> = values.iter().map(|v| v.text.clone()).collect();
        if let Some(i) = self.snippets.iter().position(|s| s.name == target.text) {
            let key = format!("snippet `{}`", target.text);
            self.check_cycle(&key, target)?;
            let (body, file) = {
                let s = &self.snippets[i];
                (s.body.clone(), self.sources.file(s.at.src).to_path_buf())
            };
            let src = self.sources.add(file, at.pos)?;
            let body = relocate(body, src);
            return self.nested(key, substitute_args(body, &values)?);
        }
        let base = self
            .sources
            .file(at.pos.src)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let pattern = base.join(&target.text);
        let files = self.files(target, &pattern)?;
        let mut out = Vec::new();
        for file in files {
            let key = format!("file `{}`", file.display());
            self.check_cycle(&key, target)?;
            let text = std::fs::read_to_string(&file).map_err(|e| {
                PosError::new(
                    target.pos,
                    format!("cannot import `{}`: {e}", file.display()),
                )
            })?;
            let src = self.sources.add(file, at.pos)?;
            let mut tokens = lexer::lex_source(&text, src)?;
            placeholders::substitute(&mut tokens, self.env, self.warnings);
            let tokens = self.take_snippets(tokens)?;
            out.extend(self.nested(key, substitute_args(tokens, &values)?)?);
        }
        Ok(out)
    }

    /// The files `import <target>` names: the file, or the glob's matches
    /// in order (none is a warning, as in Caddy).
    fn files(&mut self, target: &Token, pattern: &Path) -> PResult<Vec<PathBuf>> {
        let text = pattern.to_string_lossy();
        if !text.contains(['*', '?', '[']) {
            if !pattern.is_file() {
                let snippets: Vec<&str> = self.snippets.iter().map(|s| s.name.as_str()).collect();
                let near = crate::names::suggest(&target.text, &snippets)
                    .map(|s| format!(" (did you mean the snippet `{s}`?)"))
                    .unwrap_or_default();
                return Err(PosError::new(
                    target.pos,
                    format!(
                        "cannot import `{}`: no snippet has that name and no file `{}` exists{near}",
                        target.text,
                        pattern.display()
                    ),
                ));
            }
            return Ok(vec![pattern.to_path_buf()]);
        }
        let paths = glob::glob(&text).map_err(|e| {
            PosError::new(
                target.pos,
                format!("invalid import pattern `{}`: {}", target.text, e.msg),
            )
        })?;
        let mut files: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
        files.sort();
        if files.is_empty() {
            self.warnings.push((
                target.pos,
                format!("`import {}` matches no file", target.text),
            ));
        }
        Ok(files)
    }

    fn check_cycle(&self, key: &str, at: &Token) -> PResult<()> {
        if let Some(i) = self.stack.iter().position(|k| k == key) {
            let chain: Vec<&str> = self.stack[i..].iter().map(String::as_str).collect();
            return Err(PosError::new(
                at.pos,
                format!("import cycle: {} → {key}", chain.join(" → ")),
            ));
        }
        Ok(())
    }

    /// Expands `tokens` with `key` on the stack of what is being imported.
    fn nested(&mut self, key: String, tokens: Vec<Token>) -> PResult<Vec<Token>> {
        self.stack.push(key);
        let out = self.expand(tokens);
        self.stack.pop();
        out
    }
}

/// `tokens` as a new source `src`: same lines and columns, another text.
fn relocate(mut tokens: Vec<Token>, src: u32) -> Vec<Token> {
    for t in &mut tokens {
        t.pos.src = src;
        for (_, p) in &mut t.braces {
            p.src = src;
        }
    }
    tokens
}

/// Replaces `{args[N]}` (and `{args.N}`) in every text token, and splices
/// the arguments in for a token that is exactly a range `{args[a:b]}`.
fn substitute_args(tokens: Vec<Token>, args: &[String]) -> PResult<Vec<Token>> {
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        if !t.is_text() || !t.text.contains("{args") {
            out.push(t);
            continue;
        }
        if let Some(range) = whole_range(&t.text) {
            let (from, to) = range(args.len()).ok_or_else(|| {
                PosError::new(
                    t.pos,
                    format!(
                        "`{}` is out of range: the import gave {} argument(s)",
                        t.text,
                        args.len()
                    ),
                )
            })?;
            for a in args.get(from..to).unwrap_or(&[]) {
                out.push(Token {
                    text: a.clone(),
                    braces: Vec::new(),
                    from_env: false,
                    ..t.clone()
                });
            }
            continue;
        }
        let mut text = String::with_capacity(t.text.len());
        let mut rest = t.text.as_str();
        while let Some(start) = rest.find("{args") {
            let (before, from) = rest.split_at(start);
            text.push_str(before);
            let end = from.find('}').unwrap_or(from.len());
            let inner = from.get(1..end).unwrap_or("");
            let index = inner
                .strip_prefix("args[")
                .and_then(|r| r.strip_suffix(']'))
                .or_else(|| inner.strip_prefix("args."))
                .and_then(|n| n.parse::<usize>().ok());
            match index {
                Some(i) if end < from.len() => {
                    let value = args.get(i).ok_or_else(|| {
                        PosError::new(
                            t.pos,
                            format!(
                                "`{{{inner}}}` is out of range: the import gave {} argument(s)",
                                args.len()
                            ),
                        )
                    })?;
                    text.push_str(value);
                    rest = from.get(end + 1..).unwrap_or("");
                }
                _ => {
                    text.push('{');
                    rest = from.get(1..).unwrap_or("");
                }
            }
        }
        text.push_str(rest);
        out.push(Token {
            text,
            braces: Vec::new(),
            from_env: false,
            ..t
        });
    }
    Ok(out)
}

/// A token that is exactly `{args[a:b]}` (bounds optional): the range of
/// arguments it stands for, given how many there are.
#[allow(clippy::type_complexity)]
fn whole_range(text: &str) -> Option<Box<dyn Fn(usize) -> Option<(usize, usize)>>> {
    let inner = text.strip_prefix("{args[")?.strip_suffix("]}")?;
    let (a, b) = inner.split_once(':')?;
    let bound = |s: &str| -> Option<Option<usize>> {
        if s.is_empty() {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    let (a, b) = (bound(a)?, bound(b)?);
    Some(Box::new(move |n| {
        let from = a.unwrap_or(0);
        let to = b.unwrap_or(n);
        (from <= to && to <= n).then_some((from, to))
    }))
}

/// Gives every token a logical line number that changes exactly where the
/// (text, line) it came from changes, so lines of different imports never
/// merge into one directive.
fn renumber_lines(tokens: &mut [Token]) {
    let mut last: Option<(u32, usize)> = None;
    let mut line = 0;
    for t in tokens {
        let key = (t.pos.src, t.line);
        if last != Some(key) {
            line += 1;
            last = Some(key);
        }
        t.line = line;
    }
}
