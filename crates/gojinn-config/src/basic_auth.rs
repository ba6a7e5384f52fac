//! `basic_auth [<matcher>] [bcrypt [<realm>]] { <username> <hash> … }` (Caddy
//! also spells it `basicauth`): HTTP Basic authentication against bcrypt
//! hashes in Caddy's format, plain (`$2a$14$…`) or base64-encoded.

use base64::Engine as _;

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{leading_matcher, split};
use crate::error::{PResult, PosError};
use crate::handlers::{Account, BasicAuth};
use crate::model::{Handler, Route};
use crate::names::hint;
use crate::tree::Node;

/// The realm when none is written (Caddy's).
const DEFAULT_REALM: &str = "restricted";

/// Parses one `basic_auth` (or `basicauth`).
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (name, args) = split(node)?;
    let dir = name.text.as_str();
    let (matcher, rest) = leading_matcher(cx, args)?;
    let realm = match rest {
        [] => DEFAULT_REALM.to_owned(),
        [alg, more @ ..] => {
            match alg.text.as_str() {
                "bcrypt" => {}
                "scrypt" | "argon2id" => {
                    return Err(PosError::new(
                        alg.pos,
                        format!(
                            "`{dir}` hash algorithm `{}` is not supported by gojinn: use bcrypt hashes (`gojinn hash-password`)",
                            alg.text
                        ),
                    ))
                }
                other => {
                    return Err(PosError::new(
                        alg.pos,
                        format!(
                            "unknown `{dir}` hash algorithm `{other}`{}: use `bcrypt`",
                            hint(other, &[&["bcrypt"]])
                        ),
                    ))
                }
            }
            match more {
                [] => DEFAULT_REALM.to_owned(),
                [realm] => realm.text.clone(),
                [_, extra, ..] => {
                    return Err(unexpected(
                        extra,
                        &format!("`{dir}` takes a hash algorithm and a realm"),
                    ))
                }
            }
        }
    };
    if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
        return Err(PosError::new(
            name.pos,
            format!("invalid realm `{realm}`: it may not hold `\"`, `\\` or control characters"),
        ));
    }
    let example =
        format!("`{dir} {{ alice $2a$14$… }}` (make the hash with `gojinn hash-password`)");
    let Some(block) = &node.block else {
        return Err(PosError::new(
            name.pos,
            format!("`{dir}` needs a block of accounts, e.g. {example}"),
        ));
    };
    let mut accounts: Vec<Account> = Vec::new();
    for sub in &block.nodes {
        let (user, values) = split(sub)?;
        if let Some(b) = &sub.block {
            return Err(PosError::new(b.open, "an account does not take a block"));
        }
        let hash = match values {
            [h] => h,
            [] => {
                return Err(PosError::new(
                    user.pos,
                    format!(
                        "account `{}` needs a password hash, e.g. {example}",
                        user.text
                    ),
                ))
            }
            [_, extra, ..] => {
                return Err(unexpected(
                    extra,
                    "an account is a user name and a bcrypt hash",
                ))
            }
        };
        if user.text.is_empty() || user.text.contains(':') {
            return Err(PosError::new(
                user.pos,
                format!(
                    "invalid user name `{}`: it may not be empty or hold `:`",
                    user.text
                ),
            ));
        }
        if accounts.iter().any(|a| a.username == user.text) {
            return Err(PosError::new(
                user.pos,
                format!("account `{}` is given twice", user.text),
            ));
        }
        let plain = normalize(&user.text, &hash.text).map_err(|e| PosError::new(hash.pos, e))?;
        accounts.push(Account {
            username: user.text.clone(),
            hash: plain,
        });
    }
    if accounts.is_empty() {
        return Err(PosError::new(
            block.open,
            format!("`{dir}` has no account, e.g. {example}"),
        ));
    }
    Ok(matcher.route(None, Handler::BasicAuth(BasicAuth { realm, accounts })))
}

/// The plain form of `user`'s hash, written plain or base64-encoded.
fn normalize(user: &str, text: &str) -> Result<String, String> {
    let plain = if text.starts_with("$2") {
        text.to_owned()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| s.starts_with("$2"))
            .ok_or_else(|| not_bcrypt(user))?
    };
    check_hash(&plain).map_err(|()| not_bcrypt(user))?;
    Ok(plain)
}

/// The error for an account whose hash is not one. The value is not quoted:
/// it may be a password written where its hash belongs.
fn not_bcrypt(user: &str) -> String {
    format!(
        "the password of `{user}` is not a bcrypt hash (the value is not shown, in case it is a password): \
         expected `$2a$<cost>$<53 characters>` or its base64 form; make one with `gojinn hash-password`"
    )
}

/// `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost from 04 to 31, `$`, and
/// 53 characters of bcrypt's base64 alphabet.
fn check_hash(h: &str) -> Result<(), ()> {
    let b = h.as_bytes();
    let version = matches!(b.get(..4), Some(b"$2a$" | b"$2b$" | b"$2x$" | b"$2y$"));
    let cost = h
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| (4..=31).contains(&c));
    let rest = h.get(6..).unwrap_or("");
    let body = rest.strip_prefix('$').unwrap_or("");
    let alphabet = body.len() == 53
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/');
    if version && cost && alphabet {
        Ok(())
    } else {
        Err(())
    }
}

/// Checks an account list read from JSON: the same rules as the Caddyfile's
/// (the hash plain).
pub(crate) fn validate(auth: &BasicAuth) -> Result<(), String> {
    if auth.accounts.is_empty() {
        return Err("`basic_auth` has no account".to_owned());
    }
    for a in &auth.accounts {
        if a.username.is_empty() || a.username.contains(':') {
            return Err(format!("invalid user name `{}`", a.username));
        }
        check_hash(&a.hash).map_err(|()| not_bcrypt(&a.username))?;
    }
    Ok(())
}
