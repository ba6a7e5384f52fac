//! `gojinn hash-password`: a bcrypt hash for `basic_auth`, in the form
//! `caddy hash-password` prints (`$2a$14$…`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};

/// Caddy's bcrypt cost.
pub(crate) const DEFAULT_COST: u32 = 14;

/// Hashes `plaintext`, or a line read from stdin when it is `None`, and
/// prints the hash.
pub(crate) fn run(plaintext: Option<String>, algorithm: &str, cost: u32) -> anyhow::Result<()> {
    if algorithm != "bcrypt" {
        bail!("hash algorithm `{algorithm}` is not supported by gojinn: use `bcrypt`");
    }
    if !(4..=31).contains(&cost) {
        bail!("invalid cost `{cost}`: it must be between 4 and 31");
    }
    let password = match plaintext {
        Some(p) => p,
        None => read_password()?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let hash = bcrypt::hash_with_result(password.as_bytes(), cost)
        .context("cannot hash the password")?
        .format_for_version(bcrypt::Version::TwoA);
    println!("{hash}");
    Ok(())
}

/// One line of stdin without its line ending; on a terminal, asks first (the
/// input is echoed: pipe the password in to keep it off the screen).
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (shown as typed; pipe it in to hide it): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}
