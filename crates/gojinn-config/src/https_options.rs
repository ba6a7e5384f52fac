//! The automatic HTTPS global options (`email`, `acme_ca`, `acme_ca_root`,
//! `acme_eab`, `http_port`, `https_port`, `auto_https`, `local_certs`) and the
//! shared-store form of `storage`.

use std::path::Path;

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{single, split};
use crate::error::{PResult, PosError};
use crate::lexer::Token;
use crate::model::{AutoHttps, Config};
use crate::tree::Node;
use crate::{paths, tls, validate};

/// The global options this module reads.
pub(crate) const OPTIONS: &[&str] = &[
    "email",
    "acme_ca",
    "acme_ca_root",
    "acme_eab",
    "http_port",
    "https_port",
    "auto_https",
    "local_certs",
];

/// URL schemes of a shared `storage`.
const STORE_SCHEMES: &[&str] = &["redis://", "postgres://", "postgresql://"];

/// Reads one of [`OPTIONS`] into `config.auto_https`.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node, config: &mut Config) -> PResult<()> {
    let (name, args) = split(node)?;
    let o = &mut config.auto_https;
    match name.text.as_str() {
        "email" => o.email = Some(tls::email(single(name, args, "email you@example.com")?)?),
        "acme_ca" => {
            let t = single(
                name,
                args,
                "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory",
            )?;
            o.acme_ca = Some(tls::url(t)?);
        }
        "acme_ca_root" => {
            let t = single(name, args, "acme_ca_root /etc/ssl/acme-root.pem")?;
            o.acme_ca_root = Some(tls::file(cx, t, "acme_ca_root")?);
        }
        "acme_eab" => o.acme_eab = Some(eab_block(node, name, args)?),
        "http_port" => o.http_port = port(single(name, args, "http_port 8080")?)?,
        "https_port" => o.https_port = port(single(name, args, "https_port 8443")?)?,
        "auto_https" => {
            let t = single(name, args, "auto_https disable_redirects")?;
            o.mode = match t.text.as_str() {
                "off" => AutoHttps::Off,
                "disable_redirects" => AutoHttps::DisableRedirects,
                "disable_certs" => AutoHttps::DisableCerts,
                "ignore_loaded_certs" | "prefer_wildcard" => {
                    return Err(PosError::new(
                        t.pos,
                        format!("`auto_https {}` is not supported by gojinn", t.text),
                    ))
                }
                other => {
                    return Err(PosError::new(
                        t.pos,
                        format!(
                            "invalid `auto_https` value `{other}`{}: use `off`, `disable_redirects` or `disable_certs`",
                            crate::names::hint(other, &[&["off", "disable_redirects", "disable_certs"]])
                        ),
                    ))
                }
            };
        }
        "local_certs" => {
            if let Some(extra) = args.first() {
                return Err(unexpected(extra, "`local_certs` takes no arguments"));
            }
            o.local_certs = true;
        }
        // Only the names of OPTIONS are passed here.
        _ => {}
    }
    Ok(())
}

/// `storage DIR`, `storage file_system DIR`, or a shared store's URL.
pub(crate) fn storage(
    cx: &Ctx<'_>,
    name: &Token,
    args: &[Token],
    config: &mut Config,
) -> PResult<()> {
    // Caddy's own form names the module: `storage file_system DIR`.
    let value = match args {
        [m, d] if m.text == "file_system" => d,
        [d] => d,
        [] => {
            return Err(PosError::new(
                name.pos,
                "`storage` needs a directory or a store URL, e.g. `storage /var/lib/gojinn` \
                 or `storage redis://localhost:6379`",
            ))
        }
        [_, extra, ..] => {
            return Err(unexpected(
                extra,
                "`storage` takes one directory or store URL",
            ))
        }
    };
    validate::no_nul("storage", &value.text).map_err(|e| PosError::new(value.pos, e))?;
    if value.text.contains("://") && args.len() == 1 {
        store_url(&value.text).map_err(|m| PosError::new(value.pos, m))?;
        config.storage_url = Some(value.text.clone());
    } else {
        config.storage = Some(paths::resolve(&cx.base, Path::new(&value.text)));
    }
    Ok(())
}

/// A shared store's URL: `redis://…`, `postgres://…` or `postgresql://…`
/// naming a server.
pub(crate) fn store_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    match STORE_SCHEMES.iter().find(|s| lower.starts_with(**s)) {
        Some(s) if lower.len() == s.len() => Err(format!("storage URL `{url}` names no server")),
        Some(_) => Ok(()),
        None => Err(format!(
            "storage URL scheme `{}` is not supported by gojinn: use `redis://`, `postgres://` or a directory",
            lower.split_once("://").map_or(lower.as_str(), |(s, _)| s)
        )),
    }
}

/// `acme_eab { key_id ID  mac_key KEY }`.
fn eab_block(node: &Node, name: &Token, args: &[Token]) -> PResult<crate::model::Eab> {
    const EXAMPLE: &str = "acme_eab {\n    key_id ID\n    mac_key KEY\n}";
    if let Some(extra) = args.first() {
        return Err(unexpected(
            extra,
            &format!("`acme_eab` takes a block: `{EXAMPLE}`"),
        ));
    }
    let Some(block) = &node.block else {
        return Err(PosError::new(
            name.pos,
            format!("`acme_eab` needs a block: `{EXAMPLE}`"),
        ));
    };
    let (mut id, mut mac) = (None, None);
    for n in &block.nodes {
        let (k, a) = split(n)?;
        crate::directives::no_block(n, &k.text)?;
        let slot = match k.text.as_str() {
            "key_id" => &mut id,
            "mac_key" => &mut mac,
            other => {
                return Err(PosError::new(
                    k.pos,
                    format!(
                        "unknown `acme_eab` option `{other}`{}: use `key_id` and `mac_key`",
                        crate::names::hint(other, &[&["key_id", "mac_key"]])
                    ),
                ))
            }
        };
        if slot.is_some() {
            return Err(PosError::new(
                k.pos,
                format!("`acme_eab` option `{}` is given twice", k.text),
            ));
        }
        *slot = Some(single(k, a, &format!("{} VALUE", k.text))?);
    }
    match (id, mac) {
        (Some(id), Some(mac)) => tls::eab(id, mac),
        (None, _) => Err(PosError::new(block.open, "`acme_eab` needs a `key_id`")),
        (_, None) => Err(PosError::new(block.open, "`acme_eab` needs a `mac_key`")),
    }
}

/// A listening port from 1 to 65535.
fn port(t: &Token) -> PResult<u16> {
    match t.text.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(PosError::new(
            t.pos,
            format!(
                "invalid port `{}`: a port is a number from 1 to 65535",
                t.text
            ),
        )),
    }
}
