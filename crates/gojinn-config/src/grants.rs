//! Host-capability settings of a `gojinn` block: `permissions { … }`, `mount`, `kv`,
//! `db_driver` and `db_dsn`, and the checks both loaders apply to them. Nothing is
//! granted unless written here.

use std::path::{Component, Path, PathBuf};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{first_time, no_block, one_arg, only_block, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::model::{DbAccess, DbDriver, Function, Mount, Permissions};
use crate::names::hint;
use crate::paths;
use crate::tree::Node;

/// Entries of a `permissions` block.
pub(crate) const PERMISSIONS: &[&str] = &["kv_read", "kv_write", "db", "http", "enqueue"];

fn at(t: &Token) -> impl Fn(String) -> PosError + '_ {
    move |e| PosError::new(t.pos, e)
}

/// `permissions { kv_read …; kv_write …; db read|write; http host:port …;
/// enqueue module … }`.
pub(crate) fn permissions(cx: &Ctx<'_>, node: &Node) -> PResult<Permissions> {
    let block = only_block(
        node,
        "`permissions` takes a block, e.g. `permissions { kv_read users:* }`",
        "permissions { kv_read users:* }",
    )?;
    let mut p = Permissions::default();
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for entry in &block.nodes {
        let (what, values) = split(entry)?;
        let key = what.text.as_str();
        if matches!(key, "s3_read" | "s3_write") {
            return Err(PosError::new(
                what.pos,
                crate::names::gojinn_only_message(
                    key,
                    "keep objects in a mounted directory (`mount ./objects /objects rw`) or in KV",
                ),
            ));
        }
        if !PERMISSIONS.contains(&key) {
            return Err(PosError::new(
                what.pos,
                format!(
                    "unknown permission `{key}`{}; permissions are `kv_read`, `kv_write`, `db`, `http` and `enqueue`",
                    hint(key, &[PERMISSIONS])
                ),
            ));
        }
        first_time(&mut seen, key, what.pos, |first| {
            format!(
                "duplicate permission `{key}` (first set at line {}, column {})",
                first.line, first.col
            )
        })?;
        no_block(entry, key)?;
        if values.is_empty() {
            let example = match key {
                "db" => "db read",
                "kv_write" => "kv_write sessions:*",
                "http" => "http api.example.com:443",
                "enqueue" => "enqueue ./functions/worker.wasm",
                _ => "kv_read users:*",
            };
            return Err(PosError::new(
                what.pos,
                format!("`{key}` needs at least one value, e.g. `{example}`"),
            ));
        }
        match key {
            "kv_read" | "kv_write" => {
                let list = if key == "kv_read" {
                    &mut p.kv_read
                } else {
                    &mut p.kv_write
                };
                for v in values {
                    kv_pattern(key, &v.text).map_err(at(v))?;
                    list.push(v.text.clone());
                }
            }
            "db" => {
                if let Some(extra) = values.get(1) {
                    return Err(unexpected(extra, "`db` takes one mode, `read` or `write`"));
                }
                p.db = Some(db_access(&values[0].text).map_err(at(&values[0]))?);
            }
            "enqueue" => {
                for v in values {
                    p.enqueue.push(crate::gojinn::module(cx, v)?);
                }
            }
            _ => {
                for v in values {
                    http_target(&v.text).map_err(at(v))?;
                    p.http.push(v.text.to_ascii_lowercase());
                }
            }
        }
    }
    Ok(p)
}

/// `mount HOST GUEST [ro|rw]`.
pub(crate) fn mount(base: &Path, node: &Node) -> PResult<Mount> {
    let (name, args) = split(node)?;
    no_block(node, "mount")?;
    let (host, guest, mode) =
        match args {
            [h, g] => (h, g, None),
            [h, g, m] => (h, g, Some(m)),
            [_, _, _, extra, ..] => {
                return Err(unexpected(
                    extra,
                    "`mount` takes a host directory, a guest path and `ro` or `rw`",
                ))
            }
            _ => return Err(PosError::new(
                name.pos,
                "`mount` needs a host directory and a guest path, e.g. `mount ./assets /assets ro`",
            )),
        };
    let writable = match mode.map(|m| m.text.as_str()) {
        None | Some("ro") => false,
        Some("rw") => true,
        Some(other) => {
            return Err(PosError::new(
                mode.map_or(name.pos, |m| m.pos),
                format!("unknown mount mode `{other}`: use `ro` (the default) or `rw`"),
            ))
        }
    };
    mount_host(&host.text).map_err(at(host))?;
    mount_guest(&guest.text).map_err(at(guest))?;
    Ok(Mount {
        host: paths::resolve(base, Path::new(&host.text)),
        guest: guest.text.clone(),
        writable,
    })
}

/// `db_driver sqlite|postgres`.
pub(crate) fn driver(node: &Node) -> PResult<DbDriver> {
    let v = one_arg(node, "db_driver sqlite")?;
    db_driver(&v.text).map_err(at(v))
}

/// `kv embedded|redis://…`.
pub(crate) fn kv(node: &Node) -> PResult<String> {
    let v = one_arg(node, "kv embedded")?;
    kv_backend(&v.text).map_err(at(v))?;
    Ok(v.text.clone())
}

/// A `kv_read`/`kv_write` pattern: a key prefix, optionally ending in `*`
/// (`users:`, `users:*` and `*`).
pub(crate) fn kv_pattern(what: &str, pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err(format!("{what} pattern is empty"));
    }
    if pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "invalid {what} pattern `{}`: it must not contain spaces or control characters",
            pattern.escape_debug()
        ));
    }
    // Not `pattern[..len - 1]`: that slices inside a multi-byte last character
    // (found by fuzzing the Caddyfile adapter).
    if pattern.strip_suffix('*').unwrap_or(pattern).contains('*') {
        return Err(format!(
            "invalid {what} pattern `{pattern}`: `*` may only end a pattern, e.g. `users:*`"
        ));
    }
    Ok(())
}

/// A `db` mode.
pub(crate) fn db_access(mode: &str) -> Result<DbAccess, String> {
    match mode {
        "read" => Ok(DbAccess::Read),
        "write" => Ok(DbAccess::Write),
        other => Err(format!("unknown db mode `{other}`: use `read` or `write`")),
    }
}

/// A `db_driver` name. `sqlite3` and `libsql` are Gojinn's names for SQLite
/// (Go's `database/sql` drivers); a libSQL file is a SQLite file.
pub(crate) fn db_driver(name: &str) -> Result<DbDriver, String> {
    match name {
        "sqlite" | "sqlite3" | "libsql" => Ok(DbDriver::Sqlite),
        "postgres" => Ok(DbDriver::Postgres),
        "mysql" => Err(
            "db_driver `mysql` is a Gojinn driver this server does not have: move the data to SQLite or PostgreSQL and write `db_driver sqlite` or `db_driver postgres`".to_owned(),
        ),
        other => Err(format!(
            "unknown db_driver `{other}`{}: use `sqlite` or `postgres`",
            hint(other, &[&["sqlite", "postgres", "sqlite3", "libsql"]])
        )),
    }
}

/// A `kv` backend.
pub(crate) fn kv_backend(v: &str) -> Result<(), String> {
    if v == "embedded" {
        return Ok(());
    }
    if let Some(rest) = v
        .strip_prefix("redis://")
        .or_else(|| v.strip_prefix("rediss://"))
    {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!(
                "kv URL `{v}` has no host, e.g. `redis://127.0.0.1:6379/0`"
            ));
        }
        return Ok(());
    }
    Err(format!(
        "unknown kv backend `{v}`: use `embedded` or a `redis://host:port/db` URL"
    ))
}

/// An outbound HTTP grant: `host:port`, the host optionally `*.domain`.
pub(crate) fn http_target(target: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid http grant `{target}`: {why}"));
    if target.contains("://") || target.contains('/') {
        return bad("write `host:port` without a scheme or path, e.g. `api.example.com:443`");
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return bad("a port is required, e.g. `api.example.com:443`");
    };
    if port.is_empty()
        || !port.bytes().all(|b| b.is_ascii_digit())
        || port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return bad("the port must be a number between 1 and 65535");
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let ok = !name.is_empty()
        && !name.contains('*')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    let ipv6 = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if ok || ipv6 {
        Ok(())
    } else {
        bad("the host must be a name or an IP address; `*.` may only start it, e.g. `*.internal.example:8443`")
    }
}

/// The host side of a mount, as written. `..` is refused so a mount cannot climb
/// out of the tree it appears to name.
pub(crate) fn mount_host(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("mount host directory is empty".to_owned());
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!(
            "mount host directory `{path}` must not contain `..`: name the directory directly"
        ));
    }
    Ok(())
}

/// The guest side of a mount: an absolute path without `..`.
pub(crate) fn mount_guest(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "mount guest path `{path}` must be absolute, e.g. `/assets`"
        ));
    }
    if path.contains('\0') || path.split('/').any(|s| s == "..") {
        return Err(format!(
            "mount guest path `{path}` must not contain `..` or NUL"
        ));
    }
    Ok(())
}

/// Checks across fields, once the block is read; resolves a SQLite DSN against
/// `base`. Returns the message; the caller knows where the block is.
pub(crate) fn finish(f: &mut Function, base: &Path) -> Result<(), String> {
    if f.permissions.db.is_some() && f.db_dsn.is_none() {
        return Err("`permissions { db … }` is granted but no `db_dsn` is set".to_owned());
    }
    if f.db_driver.is_some() && f.db_dsn.is_none() {
        return Err("`db_driver` is set but no `db_dsn` is set".to_owned());
    }
    if let Some(dsn) = &f.db_dsn {
        if dsn.is_empty() {
            return Err("db_dsn is empty".to_owned());
        }
        // Configuring the DSN on a route is the operator's grant: Gojinn let
        // any route with a `db_dsn` query it. `permissions { db read }` narrows it.
        f.permissions.db.get_or_insert(DbAccess::Write);
        if f.db_driver.unwrap_or(DbDriver::Sqlite) == DbDriver::Sqlite && dsn != ":memory:" {
            let resolved: PathBuf = paths::resolve(base, Path::new(dsn));
            f.db_dsn = Some(resolved.to_string_lossy().into_owned());
        }
    }
    let mut guests: Vec<&str> = Vec::new();
    for m in &f.mounts {
        if guests.contains(&m.guest.as_str()) {
            return Err(format!("guest path `{}` is mounted twice", m.guest));
        }
        guests.push(&m.guest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_patterns() {
        assert!(kv_pattern("kv_read", "*").is_ok());
        assert!(kv_pattern("kv_read", "users:*").is_ok());
        assert!(kv_pattern("kv_read", "users:alice").is_ok());
        assert!(kv_pattern("kv_read", "us*ers").is_err());
        assert!(kv_pattern("kv_read", "**").is_err());
        assert!(kv_pattern("kv_read", "").is_err());
        // A multi-byte last character (the fuzzer's crash: U+FEFF).
        assert!(kv_pattern("kv_write", "st\u{feff}").is_ok());
        assert!(kv_pattern("kv_write", "é").is_ok());
        assert!(kv_pattern("kv_write", "s*é").is_err());
        assert!(kv_pattern("kv_write", "sé*").is_ok());
    }

    #[test]
    fn http_targets() {
        assert!(http_target("api.example.com:443").is_ok());
        assert!(http_target("*.internal.example:8443").is_ok());
        assert!(http_target("127.0.0.1:8080").is_ok());
        assert!(http_target("[::1]:80").is_ok());
        assert!(http_target("api.example.com").is_err());
        assert!(http_target("https://api.example.com:443").is_err());
        assert!(http_target("a.*.example:1").is_err());
        assert!(http_target("x:0").is_err());
        assert!(http_target("x:70000").is_err());
    }

    #[test]
    fn mounts() {
        assert!(mount_host("./assets").is_ok());
        assert!(mount_host("../assets").is_err());
        assert!(mount_host("a/../../b").is_err());
        assert!(mount_guest("/assets").is_ok());
        assert!(mount_guest("assets").is_err());
        assert!(mount_guest("/a/../b").is_err());
    }
}
