//! The `tls` site directive: `tls CERT KEY` (files the user gives),
//! `tls EMAIL`, `tls internal` and `tls { … }` (a certificate gojinn obtains).
//! What the global options add to a managed issuer, and which sites get one
//! without asking, is `autohttps`'s job.

use std::path::Path;

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{first_time, single, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::model::{AcmeIssuer, Eab, Issuer, Tls, TlsFiles};
use crate::names::hint;
use crate::tree::Node;
use crate::{paths, validate};

/// Options of a `tls { … }` block gojinn implements.
const OPTIONS: &[&str] = &["issuer", "ca", "ca_root", "eab"];

/// Caddy's `tls { … }` options gojinn does not implement.
const UNSUPPORTED_OPTIONS: &[&str] = &[
    "alpn",
    "ciphers",
    "client_auth",
    "curves",
    "dns",
    "get_certificate",
    "insecure_secrets_log",
    "key_type",
    "load",
    "on_demand",
    "propagation_delay",
    "propagation_timeout",
    "protocols",
    "reuse_private_keys",
    "resolvers",
    "dns_ttl",
    "dns_challenge_override_domain",
];

/// Options of `issuer acme { … }` gojinn implements.
const ACME_OPTIONS: &[&str] = &[
    "dir",
    "email",
    "trusted_roots",
    "eab",
    "disable_http_challenge",
    "disable_tlsalpn_challenge",
];

/// Caddy's `issuer acme { … }` options gojinn does not implement.
const UNSUPPORTED_ACME_OPTIONS: &[&str] = &[
    "test_dir",
    "timeout",
    "alt_http_port",
    "alt_tlsalpn_port",
    "dns",
    "propagation_delay",
    "propagation_timeout",
    "resolvers",
    "dns_ttl",
    "dns_challenge_override_domain",
    "preferred_chains",
    "profile",
];

/// What a `tls` directive asks for while it is read.
#[derive(Default)]
struct Draft {
    /// `tls internal` / `issuer internal`, where.
    internal: Option<Pos>,
    /// The ACME fields set so far.
    acme: AcmeIssuer,
    /// Where the first ACME-only setting was written, and its name.
    acme_at: Option<(Pos, String)>,
}

impl Draft {
    fn acme_setting(&mut self, t: &Token) {
        if self.acme_at.is_none() {
            self.acme_at = Some((t.pos, t.text.clone()));
        }
    }

    fn finish(self) -> PResult<Tls> {
        match (self.internal, self.acme_at) {
            (Some(_), Some((pos, what))) => Err(PosError::new(
                pos,
                format!(
                    "`{what}` configures an ACME issuer, but this `tls` uses `internal`: \
                     drop one of them"
                ),
            )),
            (Some(_), None) => Ok(Tls::Managed(Issuer::Internal)),
            (None, _) => Ok(Tls::Managed(Issuer::Acme(self.acme))),
        }
    }
}

/// Parses one `tls` directive; paths resolve against the config file's directory.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Tls> {
    let (name, args) = split(node)?;
    let mut draft = Draft::default();
    match args {
        [] if node.block.is_none() => {
            return Err(PosError::new(
                name.pos,
                "`tls` needs certificate files, an email, `internal` or a block, e.g. \
                 `tls cert.pem key.pem`, `tls you@example.com` or `tls internal`",
            ))
        }
        [] => {}
        [one] if one.text == "internal" => draft.internal = Some(one.pos),
        [one] if one.text.contains('@') => {
            draft.acme.email = Some(email(one)?);
            draft.acme_setting(one);
        }
        [one] => {
            return Err(PosError::new(
                one.pos,
                format!(
                    "`tls {}` has no key file: write `tls cert.pem key.pem`",
                    one.text
                ),
            ))
        }
        [cert, key] => return files(cx, node, name, cert, key),
        [_, _, extra, ..] => {
            return Err(unexpected(
                extra,
                "`tls` takes a certificate file and a key file, an email or `internal`",
            ))
        }
    }
    if let Some(block) = &node.block {
        let mut seen: Vec<(&str, Pos)> = Vec::new();
        for opt in &block.nodes {
            let (o, args) = split(opt)?;
            let key = o.text.as_str();
            if OPTIONS.contains(&key) {
                first_time(&mut seen, key, o.pos, |first| {
                    format!(
                        "`tls` option `{key}` is given twice (first at line {}, column {})",
                        first.line, first.col
                    )
                })?;
            }
            if key != "issuer" {
                crate::directives::no_block(opt, key)?;
            }
            match key {
                "issuer" => issuer(cx, opt, o, args, &mut draft)?,
                "ca" => {
                    let t = single(
                        o,
                        args,
                        "ca https://acme-staging-v02.api.letsencrypt.org/directory",
                    )?;
                    draft.acme.dir = Some(url(t)?);
                    draft.acme_setting(o);
                }
                "ca_root" => {
                    let t = single(o, args, "ca_root /etc/ssl/acme-root.pem")?;
                    draft.acme.ca_root = Some(file(cx, t, "ca_root")?);
                    draft.acme_setting(o);
                }
                "eab" => {
                    draft.acme.eab = Some(eab_args(o, args)?);
                    draft.acme_setting(o);
                }
                _ => {
                    return Err(refused_option(
                        o,
                        "`tls`",
                        [OPTIONS, UNSUPPORTED_OPTIONS],
                        ": gojinn's are `issuer`, `ca`, `ca_root` and `eab`",
                    ))
                }
            }
        }
    }
    draft.finish()
}

/// `tls CERT KEY`, which takes no options block.
fn files(cx: &Ctx<'_>, node: &Node, name: &Token, cert: &Token, key: &Token) -> PResult<Tls> {
    if let Some(b) = &node.block {
        return Err(PosError::new(
            b.open,
            "`tls cert.pem key.pem` takes no options block in gojinn: the files are the whole \
             configuration (the options of a block are for a certificate gojinn obtains)",
        ));
    }
    for t in [cert, key] {
        if t.text.is_empty() {
            return Err(PosError::new(t.pos, "`tls` file path is empty"));
        }
        validate::no_nul("a `tls` file path", &t.text).map_err(|e| PosError::new(t.pos, e))?;
    }
    Ok(Tls::Files(TlsFiles {
        cert: paths::resolve(&cx.base, Path::new(&cert.text)),
        key: paths::resolve(&cx.base, Path::new(&key.text)),
        origin: Some(cx.sources.place(name.pos)),
    }))
}

/// `issuer acme [{ … }]` or `issuer internal`.
fn issuer(cx: &Ctx<'_>, node: &Node, o: &Token, args: &[Token], draft: &mut Draft) -> PResult<()> {
    let kind = match args {
        [k] => k,
        [] => {
            return Err(PosError::new(
                o.pos,
                "`issuer` needs a name: `issuer acme` or `issuer internal`",
            ))
        }
        [_, extra, ..] => return Err(unexpected(extra, "`issuer` takes a name and a block")),
    };
    match kind.text.as_str() {
        "internal" => {
            if let Some(b) = &node.block {
                return Err(PosError::new(
                    b.open,
                    "`issuer internal` options are not supported by gojinn: write `issuer internal`",
                ));
            }
            draft.internal = Some(kind.pos);
        }
        "acme" => {
            draft.acme_setting(kind);
            let Some(block) = &node.block else {
                return Ok(());
            };
            let mut seen: Vec<(&str, Pos)> = Vec::new();
            for opt in &block.nodes {
                let (a, args) = split(opt)?;
                let key = a.text.as_str();
                crate::directives::no_block(opt, key)?;
                if ACME_OPTIONS.contains(&key) {
                    first_time(&mut seen, key, a.pos, |first| {
                        format!(
                            "`issuer acme` option `{key}` is given twice (first at line {}, column {})",
                            first.line, first.col
                        )
                    })?;
                }
                match key {
                    "dir" => {
                        let t = single(
                            a,
                            args,
                            "dir https://acme-staging-v02.api.letsencrypt.org/directory",
                        )?;
                        draft.acme.dir = Some(url(t)?);
                    }
                    "email" => {
                        draft.acme.email = Some(email(single(a, args, "email you@example.com")?)?)
                    }
                    "trusted_roots" => {
                        let t = single(a, args, "trusted_roots /etc/ssl/acme-root.pem")?;
                        draft.acme.ca_root = Some(file(cx, t, "trusted_roots")?);
                    }
                    "eab" => draft.acme.eab = Some(eab_args(a, args)?),
                    "disable_http_challenge" | "disable_tlsalpn_challenge" => {
                        if let Some(extra) = args.first() {
                            return Err(unexpected(extra, &format!("`{key}` takes no arguments")));
                        }
                        if key == "disable_http_challenge" {
                            draft.acme.disable_http_challenge = true;
                        } else {
                            draft.acme.disable_tlsalpn_challenge = true;
                        }
                    }
                    _ => {
                        return Err(refused_option(
                            a,
                            "`issuer acme`",
                            [ACME_OPTIONS, UNSUPPORTED_ACME_OPTIONS],
                            "",
                        ))
                    }
                }
            }
            if draft.acme.disable_http_challenge && draft.acme.disable_tlsalpn_challenge {
                return Err(PosError::new(
                    kind.pos,
                    "`issuer acme` disables both the HTTP and the TLS-ALPN challenge, which \
                     leaves none (gojinn has no DNS challenge)",
                ));
            }
        }
        other => {
            return Err(PosError::new(
                kind.pos,
                format!(
                    "issuer `{other}` is not supported by gojinn{}: use `acme` or `internal`",
                    hint(other, &[&["acme", "internal"]])
                ),
            ))
        }
    }
    Ok(())
}

/// `eab KEY_ID MAC_KEY`.
fn eab_args(name: &Token, args: &[Token]) -> PResult<Eab> {
    match args {
        [id, mac] => eab(id, mac),
        [_, _, extra, ..] => Err(unexpected(extra, "`eab` takes a key id and a MAC key")),
        _ => Err(PosError::new(
            name.pos,
            "`eab` needs a key id and a MAC key, e.g. `eab KEY_ID MAC_KEY`",
        )),
    }
}

/// An ACME account email.
pub(crate) fn email(t: &Token) -> PResult<String> {
    let ok = t
        .text
        .split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !t.text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(t.text.clone())
    } else {
        Err(PosError::new(
            t.pos,
            format!("invalid email `{}`: write e.g. `you@example.com`", t.text),
        ))
    }
}

/// An ACME directory URL.
pub(crate) fn url(t: &Token) -> PResult<String> {
    let rest = t
        .text
        .strip_prefix("https://")
        .or_else(|| t.text.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !t.text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(t.text.clone())
    } else {
        Err(PosError::new(
            t.pos,
            format!(
                "invalid ACME directory URL `{}`: write e.g. \
                 `https://acme-staging-v02.api.letsencrypt.org/directory`",
                t.text
            ),
        ))
    }
}

/// A PEM file path of `what`, resolved against the config file's directory.
pub(crate) fn file(cx: &Ctx<'_>, t: &Token, what: &str) -> PResult<std::path::PathBuf> {
    if t.text.is_empty() {
        return Err(PosError::new(t.pos, format!("`{what}` file path is empty")));
    }
    validate::no_nul(&format!("a `{what}` file path"), &t.text)
        .map_err(|e| PosError::new(t.pos, e))?;
    Ok(paths::resolve(&cx.base, Path::new(&t.text)))
}

/// External Account Binding credentials: a key id and a base64url MAC key.
pub(crate) fn eab(id: &Token, mac: &Token) -> PResult<Eab> {
    if id.text.is_empty() || id.text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PosError::new(
            id.pos,
            format!("invalid EAB key id `{}`", id.text),
        ));
    }
    let base64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=');
    if mac.text.is_empty() || !mac.text.chars().all(base64url) {
        return Err(PosError::new(
            mac.pos,
            // The key is a secret: the message does not repeat it.
            "invalid EAB MAC key: it is base64url (letters, digits, `-` and `_`), as the CA gave it",
        ));
    }
    Ok(Eab {
        key_id: id.text.clone(),
        mac_key: mac.text.clone(),
    })
}

/// The error for an option `t` of `what` that gojinn does not take: one of
/// Caddy's it does not support (`[_, unsupported]`), else unknown, with the
/// nearest known name and `known_list`.
fn refused_option(
    t: &Token,
    what: &str,
    [known, unsupported]: [&[&'static str]; 2],
    known_list: &str,
) -> PosError {
    let key = t.text.as_str();
    if unsupported.contains(&key) {
        PosError::new(
            t.pos,
            format!("{what} option `{key}` is not supported by gojinn"),
        )
    } else {
        PosError::new(
            t.pos,
            format!(
                "unknown {what} option `{key}`{}{known_list}",
                hint(key, &[known, unsupported])
            ),
        )
    }
}
