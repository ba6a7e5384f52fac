//! `gojinn run --envfile FILE` and `--environ`, as Caddy has them: variables
//! from a file for the config's `{env.X}` placeholders, and the environment
//! printed at start (Gojinn's systemd unit runs `gojinn run --environ`).

use anyhow::Context as _;
use std::path::Path;

/// Sets the variables of `file` that the environment does not already have
/// (the environment wins, as in Caddy). Called before any thread starts:
/// changing the environment of a multi-threaded process is a data race.
pub(crate) fn load_envfile(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the envfile `{}`", file.display()))?;
    for (name, value) in
        parse(&text).map_err(|(line, why)| anyhow::anyhow!("{}:{line}: {why}", file.display()))?
    {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(name, value);
        }
    }
    Ok(())
}

/// `KEY=VALUE` lines: blank lines and `#` comments are skipped, `export `
/// before a name is allowed, a value may be in double quotes (with `\n`, `\"`
/// and `\\` escapes) or single quotes (literal); an unquoted value ends at ` #`.
/// Errors carry the 1-based line.
fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            return Err((i + 1, format!("`{line}` is not `NAME=VALUE`")));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err((i + 1, format!("invalid variable name `{name}`")));
        }
        let value = value.trim();
        let value = if let Some(rest) = value.strip_prefix('"') {
            unquote_double(rest).ok_or((i + 1, format!("unterminated `\"` in `{line}`")))?
        } else if let Some(rest) = value.strip_prefix('\'') {
            rest.split_once('\'')
                .map(|(v, _)| v.to_owned())
                .ok_or((i + 1, format!("unterminated `'` in `{line}`")))?
        } else {
            value
                .split_once(" #")
                .map_or(value, |(v, _)| v)
                .trim_end()
                .to_owned()
        };
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

fn unquote_double(rest: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Prints the environment, one `NAME=VALUE` per line, to stdout.
pub(crate) fn print() -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for (name, value) in std::env::vars_os() {
        writeln!(
            out,
            "{}={}",
            name.to_string_lossy(),
            value.to_string_lossy()
        )?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::parse;

    #[test]
    fn envfile_lines() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\\n\"\nD='lit\\n'\nE=x # comment\nF=\n";
        let got = parse(text).unwrap();
        let want = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not a comment\n"),
            ("D", "lit\\n"),
            ("E", "x"),
            ("F", ""),
        ];
        assert_eq!(got.len(), want.len());
        for ((n, v), (wn, wv)) in got.iter().zip(want) {
            assert_eq!((n.as_str(), v.as_str()), (wn, wv));
        }
        assert_eq!(parse("NOEQUALS\n").unwrap_err().0, 1);
        assert_eq!(parse("A=1\nBAD NAME=x\n").unwrap_err().0, 2);
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
    }
}
