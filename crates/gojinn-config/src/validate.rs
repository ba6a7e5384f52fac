//! Semantic checks shared by the Caddyfile adapter and the JSON loader, and the
//! limits they enforce. Each check returns the user-facing message; the caller
//! knows where the value was written.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Pos, PosError};
use crate::model::Address;

/// Shortest accepted `timeout`: 1ms.
pub const MIN_TIMEOUT_MS: u64 = 1;
/// Longest accepted `timeout`: 1h. A request that needs longer is a batch job.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Smallest accepted `memory_limit`: 64 KiB, one WebAssembly page.
pub const MIN_MEMORY_LIMIT: u64 = 64 << 10;
/// Largest accepted `memory_limit`: 4 GiB, the whole 32-bit address space.
pub const MAX_MEMORY_LIMIT: u64 = 4 << 30;
/// Smallest accepted `pool_size`.
pub const MIN_POOL_SIZE: u32 = 1;
/// Largest accepted `pool_size`; the pooling allocator reserves address space
/// for every slot, so the bound keeps a typo from reserving terabytes.
pub const MAX_POOL_SIZE: u32 = 10_000;

/// Smallest accepted `max_header_size`: 8 KiB (hyper's smallest read buffer).
pub const MIN_MAX_HEADER_SIZE: u64 = 8 << 10;
/// Largest accepted `max_header_size`: 16 MiB.
pub const MAX_MAX_HEADER_SIZE: u64 = 16 << 20;
/// Largest accepted `max_headers`.
pub const MAX_MAX_HEADERS: u32 = 10_000;
/// Longest accepted idle timeout: 24h.
pub const MAX_IDLE_TIMEOUT_MS: u64 = 86_400_000;

/// `servers { max_header_size … }`, in bytes.
pub(crate) fn max_header_size(bytes: u64, shown: &str) -> Result<(), String> {
    if (MIN_MAX_HEADER_SIZE..=MAX_MAX_HEADER_SIZE).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "max_header_size `{shown}` is out of range: it must be between 8KiB and 16MiB"
        ))
    }
}

/// `servers { max_headers … }`.
pub(crate) fn max_headers(n: u32, shown: &str) -> Result<(), String> {
    if (1..=MAX_MAX_HEADERS).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "max_headers `{shown}` is out of range: it must be between 1 and {MAX_MAX_HEADERS}"
        ))
    }
}

/// `servers { timeouts { idle … } }`, in milliseconds.
pub(crate) fn idle_timeout_ms(ms: u64, shown: &str) -> Result<(), String> {
    if (1..=MAX_IDLE_TIMEOUT_MS).contains(&ms) {
        Ok(())
    } else {
        Err(format!(
            "idle `{shown}` is out of range: it must be between 1ms and 24h"
        ))
    }
}

/// A port is served either over TLS or in cleartext: `L` locates an address;
/// on a conflict, returns the port, the TLS location and the cleartext one.
pub(crate) fn one_mode_per_port<L: Copy>(
    addresses: impl IntoIterator<Item = (u16, bool, L)>,
) -> Result<(), (u16, L, L)> {
    let mut seen: HashMap<u16, (bool, L)> = HashMap::new();
    for (port, tls, at) in addresses {
        match seen.get(&port) {
            Some(&(t, first)) if t != tls => {
                return Err(if tls {
                    (port, at, first)
                } else {
                    (port, first, at)
                })
            }
            Some(_) => {}
            None => {
                seen.insert(port, (tls, at));
            }
        }
    }
    Ok(())
}

/// The message of a port both TLS (at `tls`) and cleartext (at `clear`).
pub(crate) fn mixed_port(port: u16, tls: Pos, clear: Pos) -> String {
    format!(
        "port {port} is served over TLS by the site at line {}, column {} and in cleartext by the site at line {}, column {}; a port is either TLS or cleartext: give both sites `tls` or use another port",
        tls.line, tls.col, clear.line, clear.col
    )
}

/// HTTP status of `respond`.
pub(crate) fn status(code: u16, shown: &str) -> Result<(), String> {
    if (100..=599).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "status `{shown}` is out of range: it must be between 100 and 599"
        ))
    }
}

/// `timeout`, in milliseconds.
pub(crate) fn timeout_ms(ms: u64, what: &str, shown: &str) -> Result<(), String> {
    if (MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&ms) {
        Ok(())
    } else {
        Err(format!(
            "{what} `{shown}` is out of range: it must be between 1ms and 1h"
        ))
    }
}

/// `queue_timeout`, in milliseconds: 0 (answer 503 at once when the pool is
/// full) up to the longest `timeout`.
pub(crate) fn queue_timeout_ms(ms: u64, shown: &str) -> Result<(), String> {
    if ms <= MAX_TIMEOUT_MS {
        Ok(())
    } else {
        Err(format!(
            "queue_timeout `{shown}` is out of range: it must be between 0s and 1h"
        ))
    }
}

/// `memory_limit`, in bytes.
pub(crate) fn memory_limit(bytes: u64, shown: &str) -> Result<(), String> {
    if (MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "memory_limit `{shown}` is out of range: it must be between 64KiB and 4GiB"
        ))
    }
}

/// `pool_size`.
pub(crate) fn pool_size(n: u32, shown: &str) -> Result<(), String> {
    if (MIN_POOL_SIZE..=MAX_POOL_SIZE).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "pool_size `{shown}` is out of range: it must be between {MIN_POOL_SIZE} and {MAX_POOL_SIZE}"
        ))
    }
}

/// The name of an `env` grant.
pub(crate) fn env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("env name is empty".to_owned())
    } else if name.contains('=') {
        Err(format!("env name `{name}` must not contain `=`"))
    } else {
        no_nul(&format!("env name `{name}`"), name)
    }
}

/// Text handed to the guest (env values, args) cannot hold a NUL byte: WASI
/// passes them as C strings.
pub(crate) fn no_nul(what: &str, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(format!("{what} must not contain a NUL byte"))
    } else {
        Ok(())
    }
}

/// A `debug_secret`: it is compared with a request header, so it must be
/// something a header can carry. The value is never quoted back: it is a secret.
pub(crate) fn debug_secret(value: &str) -> Result<(), String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        Err("debug_secret must be non-empty printable ASCII without spaces, as it is sent in the `X-Gojinn-Debug` header".to_owned())
    } else {
        Ok(())
    }
}

/// A function's module path (before resolution).
pub(crate) fn module_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("module path is empty".to_owned());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("wasm") || ext.eq_ignore_ascii_case("wat") {
        Ok(())
    } else {
        Err(format!(
            "module `{}` must be a `.wasm` or `.wat` file",
            path.display()
        ))
    }
}

/// A site host name (already lower-cased): a DNS name or IPv4 address, or an
/// IPv6 address in brackets.
pub(crate) fn host(host: &str) -> Result<(), String> {
    if host.contains('*') {
        return Err(format!(
            "wildcard host `{host}` is not supported here: a wildcard is `*.` before a name (`*.example.com`); use `:PORT` to answer for every host"
        ));
    }
    let ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid host `{host}` in site address"))
    }
}

/// A site address's host: a [`host`], or a wildcard over one label of a DNS
/// name (`*.example.com`).
pub(crate) fn site_host(host: &str) -> Result<(), String> {
    match host.strip_prefix("*.") {
        Some(rest) if !rest.contains('*') && !rest.starts_with('[') => host_name(rest, host),
        _ => self::host(host),
    }
}

/// `rest` of the wildcard `shown` is a DNS name.
fn host_name(rest: &str, shown: &str) -> Result<(), String> {
    let ok = !rest.is_empty()
        && rest.parse::<std::net::Ipv4Addr>().is_err()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid wildcard host `{shown}`: a wildcard stands for the first label of a name, e.g. `*.example.com`"
        ))
    }
}

/// An address as written in a Caddyfile: `host:port` or `:port`.
pub(crate) fn display_address(a: &Address) -> String {
    format!("{}:{}", a.host.as_deref().unwrap_or(""), a.port)
}

/// No host and port may be defined twice. The same port in several blocks is
/// fine when the hosts differ (and at most one block is hostless, which is the
/// same rule): as in Caddy, `:8080` and `localhost:8080` share one listener, the
/// host-specific block answering its host and the hostless one every other.
///
/// `L` locates an address in the source; on a duplicate, returns the
/// locations of the second and the first occurrence.
pub(crate) fn unique_addresses<'a, L: Copy>(
    addresses: impl IntoIterator<Item = (&'a Address, L)>,
) -> Result<(), (&'a Address, L, L)> {
    let mut seen: HashMap<(Option<&str>, u16), L> = HashMap::new();
    for (a, at) in addresses {
        if let Some(first) = seen.insert((a.host.as_deref(), a.port), at) {
            return Err((a, at, first));
        }
    }
    Ok(())
}

/// The error for an address defined again at `at`, the first time at `first`.
pub(crate) fn duplicate_address(a: &Address, at: Pos, first: Pos) -> PosError {
    PosError::new(
        at,
        format!(
            "address `{}` is defined twice (first at line {}, column {})",
            display_address(a),
            first.line,
            first.col
        ),
    )
}

/// At least one site.
pub(crate) fn has_sites(count: usize) -> Result<(), String> {
    if count == 0 {
        Err("no site is defined: add a site block such as `:8080 { … }`".to_owned())
    } else {
        Ok(())
    }
}

/// A trusted key: an Ed25519 public key as 64 hex digits.
pub(crate) fn trusted_key(key: &str) -> Result<(), String> {
    if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "invalid trusted_key `{key}`: expected an Ed25519 public key as 64 hex digits (the content of a `.pub` file from `gojinn keygen`)"
        ))
    }
}

/// A security policy needs at least one key to check signatures against.
pub(crate) fn has_trusted_keys(count: usize) -> Result<(), String> {
    if count == 0 {
        Err("`security` needs at least one `trusted_key <hex>`".to_owned())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn addr(host: Option<&str>, port: u16) -> Address {
        Address {
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn ranges() {
        assert!(status(100, "100").is_ok() && status(599, "599").is_ok());
        assert!(status(99, "99").is_err() && status(600, "600").is_err());
        assert!(
            timeout_ms(1, "timeout", "1ms").is_ok() && timeout_ms(3_600_000, "t", "1h").is_ok()
        );
        assert!(timeout_ms(0, "timeout", "0").is_err() && timeout_ms(3_600_001, "t", "x").is_err());
        assert!(memory_limit(65_536, "64KiB").is_ok() && memory_limit(4 << 30, "4GiB").is_ok());
        assert_eq!(
            memory_limit(65_535, "65535").unwrap_err(),
            "memory_limit `65535` is out of range: it must be between 64KiB and 4GiB"
        );
        assert!(memory_limit((4 << 30) + 1, "x").is_err());
        assert!(pool_size(1, "1").is_ok() && pool_size(10_000, "10000").is_ok());
        assert!(pool_size(0, "0").is_err() && pool_size(10_001, "10001").is_err());
    }

    #[test]
    fn env_names() {
        assert!(env_name("DB_HOST").is_ok());
        assert_eq!(env_name("").unwrap_err(), "env name is empty");
        assert_eq!(
            env_name("A=B").unwrap_err(),
            "env name `A=B` must not contain `=`"
        );
        assert!(env_name("A\0").is_err());
    }

    #[test]
    fn modules() {
        assert!(module_path(Path::new("./a.wasm")).is_ok());
        assert!(module_path(Path::new("/x/b.WAT")).is_ok());
        assert!(module_path(Path::new("a.so")).is_err());
        assert!(module_path(Path::new("wasm")).is_err());
        assert!(module_path(Path::new("")).is_err());
    }

    #[test]
    fn hosts() {
        for ok in [
            "localhost",
            "example.com",
            "127.0.0.1",
            "[::1]",
            "my_host-1",
        ] {
            assert!(host(ok).is_ok(), "{ok}");
        }
        for bad in ["", "[]", "a b", "{http.host}", "ex/ample", "[zz]"] {
            assert!(host(bad).is_err(), "{bad}");
        }
        assert!(host("*.example.com")
            .unwrap_err()
            .starts_with("wildcard host"));
    }

    #[test]
    fn address_collisions() {
        let p = |line| Pos::at(line, 1);
        let (a, b, c) = (
            addr(None, 8080),
            addr(Some("localhost"), 8080),
            addr(None, 9090),
        );
        assert!(unique_addresses([(&a, p(1)), (&b, p(2)), (&c, p(3))]).is_ok());
        let (dup, at, first) = unique_addresses([(&a, p(1)), (&b, p(2)), (&a, p(7))]).unwrap_err();
        assert_eq!((dup, at, first), (&a, p(7), p(1)));
        let e = duplicate_address(dup, at, first);
        assert_eq!(e.pos, p(7));
        assert_eq!(
            e.message,
            "address `:8080` is defined twice (first at line 1, column 1)"
        );
    }
}
