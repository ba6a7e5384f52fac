//! The JSON loader: the adapt output read back (`serde_json` with unknown fields
//! denied), relative paths resolved against the file's directory, then the same
//! semantic checks as the Caddyfile path. Semantic errors point at the offending
//! value, found again in the text by [`locate`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Loaded, Pos, PosError};
use crate::model::{Config, Function, Handler, Route};
use crate::{grants, matcher, paths, validate, ConfigError};

/// Loads JSON text.
pub(crate) fn load(src: &str, file: &Path) -> Result<Loaded, ConfigError> {
    let mut config: Config = serde_json::from_str(src).map_err(|e| syntax_error(src, file, &e))?;
    let checker = Checker {
        src,
        file,
        base: paths::base_dir(file),
        handles: index_handles(src),
    };
    checker
        .config(&mut config)
        .map_err(|e| e.into_config_error(file))?;
    Ok(Loaded {
        config,
        warnings: Vec::new(),
    })
}

fn syntax_error(src: &str, file: &Path, e: &serde_json::Error) -> ConfigError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    if matches!(
        e.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) {
        message = format!("invalid JSON: {message}");
    }
    let offset = byte_offset(src, e.line().max(1), e.column());
    let mut pos = pos_at(src, offset);
    // serde reports an unknown field after its key (or at the end of a tagged
    // object); point at the key itself.
    // An unknown variant is reported the same way; point at its value.
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
        .and_then(|m| m.split('`').next())
    {
        let needle = format!("\"{field}\"");
        let end = (offset + 1).min(src.len());
        if let Some(found) = src.get(..end).and_then(|s| s.rfind(&needle)) {
            pos = pos_at(src, found);
        }
    }
    ConfigError::Invalid(Diagnostic::at(file, pos, message))
}

/// Byte offset of 1-based `line` and byte column `col` (serde_json's columns
/// count bytes, 1-based, 0 right after a newline).
fn byte_offset(src: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match src.get(start..).and_then(|s| s.find('\n')) {
            Some(nl) => start += nl + 1,
            None => break,
        }
    }
    (start + col.saturating_sub(1)).min(src.len())
}

/// The position (character column) of byte `offset`.
fn pos_at(src: &str, offset: usize) -> Pos {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = src.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Pos { line, col, src: 0 }
}

/// One step of a path into the JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

struct Checker<'a> {
    src: &'a str,
    file: &'a Path,
    base: PathBuf,
    /// Offsets of every `"handle"` value, for `Function::origin`.
    handles: HashMap<Vec<Seg>, usize>,
}

impl Checker<'_> {
    fn at(&self, path: &[Seg], message: impl Into<String>) -> PosError {
        PosError::new(locate(self.src, path), message)
    }

    fn config(&self, config: &mut Config) -> Result<(), PosError> {
        validate::has_sites(config.sites.len()).map_err(|m| self.at(&[Seg::Key("sites")], m))?;
        if let Some(t) = &config.tracing {
            let here = Seg::Key("tracing");
            if let Some(url) = &t.endpoint {
                crate::observe::endpoint(url)
                    .map_err(|m| self.at(&[here, Seg::Key("endpoint")], m))?;
            }
            if let crate::model::TraceSampler::Traceidratio(r)
            | crate::model::TraceSampler::ParentbasedTraceidratio(r) = t.sampler
            {
                crate::observe::ratio(r, &r.to_string())
                    .map_err(|m| self.at(&[here, Seg::Key("sampler")], m))?;
            }
        }
        if let Some(dir) = &mut config.storage {
            *dir = paths::resolve(&self.base, dir);
        }
        if config.auto_https.http_port == config.auto_https.https_port {
            return Err(self.at(
                &[Seg::Key("auto_https"), Seg::Key("https_port")],
                format!(
                    "`http_port` and `https_port` are both {}: cleartext and HTTPS need different ports",
                    config.auto_https.http_port
                ),
            ));
        }
        if let Some(url) = &config.storage_url {
            crate::https_options::store_url(url)
                .map_err(|m| self.at(&[Seg::Key("storage_url")], m))?;
        }
        if let Some(url) = &config.queue {
            crate::jobs::queue_url(url).map_err(|m| self.at(&[Seg::Key("queue")], m))?;
        }
        if let Some(root) = &mut config.auto_https.acme_ca_root {
            let field = [Seg::Key("auto_https"), Seg::Key("acme_ca_root")];
            self.path(root, "acme_ca_root", &field)?;
        }
        if let crate::LogOutput::File(f) = &mut config.log.output {
            f.path = paths::resolve(&self.base, &f.path);
        }
        self.server(&config.server)?;
        let mut addresses = Vec::new();
        let mut modes = Vec::new();
        for (i, site) in config.sites.iter_mut().enumerate() {
            let here = [Seg::Key("sites"), Seg::Index(i)];
            if site.addresses.is_empty() {
                return Err(self.at(
                    &[here[0], here[1], Seg::Key("addresses")],
                    "site has no address",
                ));
            }
            for (j, a) in site.addresses.iter_mut().enumerate() {
                let path = [here[0], here[1], Seg::Key("addresses"), Seg::Index(j)];
                if let Some(host) = &mut a.host {
                    host.make_ascii_lowercase();
                    validate::site_host(host).map_err(|m| {
                        self.at(&[path[0], path[1], path[2], path[3], Seg::Key("host")], m)
                    })?;
                }
                addresses.push((a.clone(), (i, j)));
                modes.push((a.port, site.tls.is_some(), (i, j)));
            }
            let at = [here[0], here[1], Seg::Key("tls")];
            if let Some(crate::model::Tls::Managed(issuer)) = &site.tls {
                let acme = matches!(issuer, crate::model::Issuer::Acme(_));
                for (j, a) in site.addresses.iter().enumerate() {
                    let path = [here[0], here[1], Seg::Key("addresses"), Seg::Index(j)];
                    let shown = validate::display_address(a);
                    match a.host.as_deref() {
                        None => {
                            return Err(self.at(
                                &path,
                                format!(
                                    "address `{shown}` has a managed certificate but names no host, so there is no name to get a certificate for"
                                ),
                            ))
                        }
                        Some(h) if acme && h.starts_with("*.") => {
                            return Err(self.at(
                                &path,
                                format!(
                                    "address `{shown}` needs a wildcard certificate, which ACME issues only through the DNS challenge, and gojinn has no DNS provider: use the internal issuer or certificate files"
                                ),
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
            match &mut site.tls {
                Some(crate::model::Tls::Files(tls)) => {
                    for (name, path) in [("cert", &mut tls.cert), ("key", &mut tls.key)] {
                        let field = [at[0], at[1], at[2], Seg::Key(name)];
                        self.path(path, &format!("tls {name}"), &field)?;
                    }
                    let pos = locate(self.src, &at);
                    tls.origin = Some(format!("{}:{}:{}", self.file.display(), pos.line, pos.col));
                }
                Some(crate::model::Tls::Managed(crate::model::Issuer::Acme(acme))) => {
                    if let Some(root) = &mut acme.ca_root {
                        let field = [at[0], at[1], at[2], Seg::Key("ca_root")];
                        self.path(root, "tls ca_root", &field)?;
                    }
                }
                Some(crate::model::Tls::Managed(crate::model::Issuer::Internal)) | None => {}
            }
            if let Some(log) = &mut site.log {
                if let crate::LogOutput::File(f) = &mut log.output {
                    f.path = paths::resolve(&self.base, &f.path);
                }
                let pos = locate(self.src, &[here[0], here[1], Seg::Key("log")]);
                log.origin = Some(format!("{}:{}:{}", self.file.display(), pos.line, pos.col));
            }
            if let Some(url) = &site.queue {
                crate::jobs::queue_url(url)
                    .map_err(|m| self.at(&[here[0], here[1], Seg::Key("queue")], m))?;
            }
            self.routes(&mut site.routes, &[here[0], here[1], Seg::Key("routes")])?;
            for (e, errors) in site.errors.iter_mut().enumerate() {
                let at = [here[0], here[1], Seg::Key("errors"), Seg::Index(e)];
                for s in &errors.status {
                    crate::errors::check_status(s).map_err(|m| {
                        self.at(&[at[0], at[1], at[2], at[3], Seg::Key("status")], m)
                    })?;
                }
                if has_function(&errors.routes) {
                    return Err(self.at(&at, "a `gojinn` handler inside `errors` is not supported"));
                }
                self.routes(
                    &mut errors.routes,
                    &[at[0], at[1], at[2], at[3], Seg::Key("routes")],
                )?;
            }
        }
        let address_pos = |(i, j): (usize, usize)| {
            locate(
                self.src,
                &[
                    Seg::Key("sites"),
                    Seg::Index(i),
                    Seg::Key("addresses"),
                    Seg::Index(j),
                ],
            )
        };
        validate::unique_addresses(addresses.iter().map(|(a, at)| (a, *at))).map_err(
            |(a, at, first)| validate::duplicate_address(a, address_pos(at), address_pos(first)),
        )?;
        validate::one_mode_per_port(modes).map_err(|(port, tls, clear)| {
            let (tls, clear) = (address_pos(tls), address_pos(clear));
            PosError::new(tls.max(clear), validate::mixed_port(port, tls, clear))
        })
    }

    /// Checks a file path at `field` (shown as `what`) and resolves it
    /// against the file's directory.
    fn path(&self, path: &mut PathBuf, what: &str, field: &[Seg]) -> Result<(), PosError> {
        let shown = path.to_string_lossy().into_owned();
        if shown.is_empty() {
            return Err(self.at(field, format!("{what} path is empty")));
        }
        validate::no_nul(&format!("{what} path"), &shown).map_err(|m| self.at(field, m))?;
        *path = paths::resolve(&self.base, path);
        Ok(())
    }

    /// The `server` options: the same ranges as `servers { … }` in a Caddyfile.
    fn server(&self, o: &crate::model::ServerOptions) -> Result<(), PosError> {
        let at = |name: &'static str| [Seg::Key("server"), Seg::Key(name)];
        if !o.speaks(crate::model::Protocol::H1) {
            return Err(self.at(
                &at("protocols"),
                "`protocols` must include `h1`: gojinn always serves HTTP/1.1",
            ));
        }
        for (i, p) in o.protocols.iter().enumerate() {
            if o.protocols
                .get(..i)
                .is_some_and(|before| before.contains(p))
            {
                let path = [Seg::Key("server"), Seg::Key("protocols"), Seg::Index(i)];
                return Err(self.at(&path, "this protocol is already listed"));
            }
        }
        let ms = o.read_header_timeout_ms;
        validate::timeout_ms(ms, "read_header_timeout_ms", &ms.to_string())
            .map_err(|m| self.at(&at("read_header_timeout_ms"), m))?;
        let ms = o.idle_timeout_ms;
        validate::idle_timeout_ms(ms, &ms.to_string())
            .map_err(|m| self.at(&at("idle_timeout_ms"), m))?;
        validate::max_header_size(o.max_header_size, &o.max_header_size.to_string())
            .map_err(|m| self.at(&at("max_header_size"), m))?;
        validate::max_headers(o.max_headers, &o.max_headers.to_string())
            .map_err(|m| self.at(&at("max_headers"), m))
    }

    fn routes(&self, routes: &mut [Route], path: &[Seg]) -> Result<(), PosError> {
        for (k, route) in routes.iter_mut().enumerate() {
            let mut here = path.to_vec();
            here.push(Seg::Index(k));
            let field = |name: &'static str| {
                let mut p = here.clone();
                p.push(Seg::Key(name));
                p
            };
            let handle_field = |name: &'static str| {
                let mut p = field("handle");
                p.push(Seg::Key(name));
                p
            };
            if let Some(m) = &route.matcher {
                matcher::check_pattern(m).map_err(|e| self.at(&field("match"), e))?;
            }
            if let Some(set) = &route.conditions {
                crate::named::validate(set).map_err(|e| self.at(&field("conditions"), e))?;
            }
            match &mut route.handle {
                Handler::Subroute {
                    strip_prefix,
                    routes,
                } => {
                    if let Some(p) = strip_prefix.as_deref().filter(|p| !p.starts_with('/')) {
                        return Err(self.at(
                            &handle_field("strip_prefix"),
                            format!("strip_prefix `{p}` must start with `/`"),
                        ));
                    }
                    self.routes(routes, &handle_field("routes"))?;
                }
                Handler::StaticResponse { status, .. } => {
                    validate::status(*status, &status.to_string())
                        .map_err(|e| self.at(&handle_field("status"), e))?;
                }
                Handler::TryFiles { root, .. } => *root = paths::resolve(&self.base, root),
                Handler::FileServer { root, options } => {
                    *root = paths::resolve(&self.base, root);
                    crate::file_server::resolve_hide(options, &self.base);
                }
                Handler::Redirect(r) => {
                    let ok = if r.html {
                        r.status == 200
                    } else {
                        (300..=399).contains(&r.status)
                    };
                    if !ok || r.to.is_empty() {
                        return Err(self.at(
                            &handle_field("status"),
                            format!(
                                "invalid redirect: status `{}` (3xx, or 200 with `html`) to `{}`",
                                r.status, r.to
                            ),
                        ));
                    }
                }
                Handler::BasicAuth(a) => {
                    crate::basic_auth::validate(a)
                        .map_err(|e| self.at(&handle_field("accounts"), e))?;
                }
                Handler::Rewrite(r) => {
                    crate::rewrite::validate(r).map_err(|e| self.at(&field("handle"), e))?;
                }
                Handler::Headers(ops) | Handler::RequestHeaders(ops) => {
                    crate::headers::validate(ops).map_err(|e| self.at(&handle_field("ops"), e))?;
                }
                Handler::Encode(e) => {
                    if e.formats.is_empty() {
                        return Err(self.at(
                            &handle_field("formats"),
                            "`encode` needs at least one format: `gzip` or `zstd`",
                        ));
                    }
                }
                Handler::ReverseProxy(p) => {
                    crate::proxy::check(p).map_err(|(key, m)| {
                        let key = if self.src.contains(&format!("\"{key}\"")) {
                            key
                        } else {
                            "handler"
                        };
                        self.at(&handle_field(key), m)
                    })?;
                    for ca in &mut p.transport.tls_trusted_ca_certs {
                        *ca = paths::resolve(&self.base, ca);
                    }
                    let handle = field("handle");
                    let pos = self
                        .handles
                        .get(&handle)
                        .map_or_else(|| locate(self.src, &handle), |o| pos_at(self.src, *o));
                    p.origin = Some(format!("{}:{}:{}", self.file.display(), pos.line, pos.col));
                }
                Handler::Gojinn(f) => {
                    validate::module_path(&f.module)
                        .map_err(|e| self.at(&handle_field("module"), e))?;
                    f.module = paths::resolve(&self.base, &f.module);
                    validate::timeout_ms(f.timeout_ms, "timeout_ms", &f.timeout_ms.to_string())
                        .map_err(|e| self.at(&handle_field("timeout_ms"), e))?;
                    validate::memory_limit(f.memory_limit, &f.memory_limit.to_string())
                        .map_err(|e| self.at(&handle_field("memory_limit"), e))?;
                    validate::pool_size(f.pool_size, &f.pool_size.to_string())
                        .map_err(|e| self.at(&handle_field("pool_size"), e))?;
                    validate::queue_timeout_ms(
                        f.queue_timeout_ms,
                        &format!("{}ms", f.queue_timeout_ms),
                    )
                    .map_err(|e| self.at(&handle_field("queue_timeout_ms"), e))?;
                    if f.fuel_limit == Some(0) {
                        return Err(self.at(
                            &handle_field("fuel_limit"),
                            "invalid fuel_limit `0`: it must be at least 1; leave it out for no limit",
                        ));
                    }
                    for (e, var) in f.env.iter().enumerate() {
                        let mut p = handle_field("env");
                        p.push(Seg::Index(e));
                        validate::env_name(&var.name)
                            .and_then(|()| {
                                validate::no_nul(
                                    &format!("the value of env `{}`", var.name),
                                    &var.value,
                                )
                            })
                            .map_err(|m| self.at(&p, m))?;
                    }
                    for (a, arg) in f.args.iter().enumerate() {
                        let mut p = handle_field("args");
                        p.push(Seg::Index(a));
                        validate::no_nul(&format!("argument `{arg}`"), arg)
                            .map_err(|m| self.at(&p, m))?;
                    }
                    self.grants(f, &handle_field)?;
                    self.jobs(f, &handle_field)?;
                    if let Some(secret) = &f.debug_secret {
                        validate::debug_secret(secret)
                            .map_err(|e| self.at(&handle_field("debug_secret"), e))?;
                    }
                    if let Some(sec) = &mut f.security {
                        let mut p = handle_field("security");
                        validate::has_trusted_keys(sec.trusted_keys.len())
                            .map_err(|m| self.at(&p, m))?;
                        p.push(Seg::Key("trusted_keys"));
                        for (k, key) in sec.trusted_keys.iter_mut().enumerate() {
                            let mut p = p.clone();
                            p.push(Seg::Index(k));
                            validate::trusted_key(key).map_err(|m| self.at(&p, m))?;
                            key.make_ascii_lowercase();
                        }
                    }
                    let handle = field("handle");
                    let pos = self
                        .handles
                        .get(&handle)
                        .map_or_else(|| locate(self.src, &handle), |o| pos_at(self.src, *o));
                    f.origin = Some(format!("{}:{}:{}", self.file.display(), pos.line, pos.col));
                }
            }
        }
        Ok(())
    }
}

impl Checker<'_> {
    /// The host-capability fields of a function: the same checks as the Caddyfile's.
    fn grants(
        &self,
        f: &mut Function,
        handle_field: &dyn Fn(&'static str) -> Vec<Seg>,
    ) -> Result<(), PosError> {
        let perm = |name: &'static str, i: usize| {
            let mut p = handle_field("permissions");
            p.push(Seg::Key(name));
            p.push(Seg::Index(i));
            p
        };
        for (i, pat) in f.permissions.kv_read.iter().enumerate() {
            grants::kv_pattern("kv_read", pat).map_err(|e| self.at(&perm("kv_read", i), e))?;
        }
        for (i, pat) in f.permissions.kv_write.iter().enumerate() {
            grants::kv_pattern("kv_write", pat).map_err(|e| self.at(&perm("kv_write", i), e))?;
        }
        for (i, target) in f.permissions.http.iter_mut().enumerate() {
            grants::http_target(target).map_err(|e| self.at(&perm("http", i), e))?;
            target.make_ascii_lowercase();
        }
        for (i, m) in f.mounts.iter_mut().enumerate() {
            let mut p = handle_field("mounts");
            p.push(Seg::Index(i));
            let host = m.host.to_string_lossy().into_owned();
            grants::mount_host(&host).map_err(|e| {
                let mut p = p.clone();
                p.push(Seg::Key("host"));
                self.at(&p, e)
            })?;
            grants::mount_guest(&m.guest).map_err(|e| {
                let mut p = p.clone();
                p.push(Seg::Key("guest"));
                self.at(&p, e)
            })?;
            m.host = paths::resolve(&self.base, &m.host);
        }
        for (i, module) in f.permissions.enqueue.iter_mut().enumerate() {
            validate::module_path(module).map_err(|e| self.at(&perm("enqueue", i), e))?;
            *module = paths::resolve(&self.base, module);
        }
        if let Some(kv) = &f.kv {
            grants::kv_backend(kv).map_err(|e| self.at(&handle_field("kv"), e))?;
        }
        grants::finish(f, &self.base).map_err(|e| self.at(&handle_field("db_dsn"), e))
    }

    /// `crons`, `jobs`, `record_crashes` and `crash_path`: the same checks as
    /// the Caddyfile's.
    fn jobs(
        &self,
        f: &mut Function,
        handle_field: &dyn Fn(&'static str) -> Vec<Seg>,
    ) -> Result<(), PosError> {
        for i in 0..f.crons.len() {
            let field = |name: &'static str| {
                let mut p = handle_field("crons");
                p.push(Seg::Index(i));
                p.push(Seg::Key(name));
                p
            };
            let c = &mut f.crons[i];
            crate::cron::cron_schedule(&c.spec).map_err(|e| self.at(&field("spec"), e))?;
            validate::module_path(&c.module).map_err(|e| self.at(&field("module"), e))?;
            c.module = paths::resolve(&self.base, &c.module);
            if f.crons[..i]
                .iter()
                .any(|o| crate::jobs::same_cron(o, &f.crons[i]))
            {
                let mut p = handle_field("crons");
                p.push(Seg::Index(i));
                return Err(self.at(&p, "this cron is already listed: same spec, same module"));
            }
        }
        let j = &f.jobs;
        let jobs = |name: &'static str| {
            let mut p = handle_field("jobs");
            p.push(Seg::Key(name));
            p
        };
        crate::jobs::retries(j.retries, &j.retries.to_string())
            .map_err(|e| self.at(&jobs("retries"), e))?;
        crate::jobs::retry_backoff_ms(j.retry_backoff_ms, &format!("{}ms", j.retry_backoff_ms))
            .map_err(|e| self.at(&jobs("retry_backoff_ms"), e))?;
        crate::jobs::queue_max(j.queue_max, &j.queue_max.to_string())
            .map_err(|e| self.at(&jobs("queue_max"), e))?;
        crate::jobs::payload_max(j.payload_max, &j.payload_max.to_string())
            .map_err(|e| self.at(&jobs("payload_max"), e))?;
        if let Some(dir) = &mut f.crash_path {
            let shown = dir.to_string_lossy().into_owned();
            crate::jobs::crash_path(&shown).map_err(|e| self.at(&handle_field("crash_path"), e))?;
            *dir = paths::resolve(&self.base, dir);
        }
        crate::jobs::finish(f).map_err(|e| self.at(&handle_field("crash_path"), e))
    }
}

/// Whether `routes` hold a function, however deep.
fn has_function(routes: &[Route]) -> bool {
    routes.iter().any(|r| match &r.handle {
        Handler::Gojinn(_) => true,
        Handler::Subroute { routes, .. } => has_function(routes),
        _ => false,
    })
}

/// Where the value at `path` starts in the JSON text; the deepest part of the
/// path that can be found when the whole cannot (e.g. a defaulted field), and
/// 1:1 at worst.
fn locate(src: &str, path: &[Seg]) -> Pos {
    (0..=path.len())
        .rev()
        .find_map(|n| {
            let mut s = Scanner {
                b: src.as_bytes(),
                i: 0,
            };
            path.get(..n).and_then(|p| s.find(p, 0))
        })
        .map_or(Pos::START, |offset| pos_at(src, offset))
}

/// The offset of every `"handle"` value in one pass, keyed by path: finding
/// each function's origin with [`locate`] would be quadratic in big files.
fn index_handles(src: &str) -> HashMap<Vec<Seg>, usize> {
    let mut s = Scanner {
        b: src.as_bytes(),
        i: 0,
    };
    let mut out = HashMap::new();
    let mut path = Vec::new();
    // On malformed text the index is partial, and `locate` takes over.
    let _ = s.index(&mut path, &mut out, 0);
    out
}

/// A minimal JSON walker over text `serde_json` has already accepted; every
/// step is checked, so odd input yields `None`, never a panic.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Depth bound of the walker (serde_json itself stops at 128).
const MAX_DEPTH: usize = 256;

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string; returns its raw contents (escapes left as written).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        let b: &'a [u8] = self.b;
        let s = b.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.eat(b':')?;
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b']' | b'}') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Walks the value at the cursor (at `path`), recording `"handle"` values.
    fn index(
        &mut self,
        path: &mut Vec<Seg>,
        out: &mut HashMap<Vec<Seg>, usize>,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        if path.last() == Some(&Seg::Key("handle")) {
            out.insert(path.clone(), self.i);
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    let key = self.string()?;
                    self.eat(b':')?;
                    // Only the model's own keys matter; others are skipped.
                    let known = ["sites", "routes", "handle"]
                        .into_iter()
                        .find(|k| k.as_bytes() == key);
                    match known {
                        Some(k) => {
                            path.push(Seg::Key(k));
                            self.index(path, out, depth + 1)?;
                            path.pop();
                        }
                        None => self.skip_value(depth + 1)?,
                    }
                    if self.eat(b',').is_none() {
                        return self.eat(b'}');
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                for n in 0.. {
                    path.push(Seg::Index(n));
                    self.index(path, out, depth + 1)?;
                    path.pop();
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
                None
            }
            _ => self.skip_value(depth + 1),
        }
    }

    /// Offset of the value at `path`, starting from the value at the cursor.
    fn find(&mut self, path: &[Seg], depth: usize) -> Option<usize> {
        self.ws();
        let Some((first, rest)) = path.split_first() else {
            return Some(self.i);
        };
        if depth > MAX_DEPTH {
            return None;
        }
        match *first {
            Seg::Key(key) => {
                self.eat(b'{')?;
                loop {
                    let k = self.string()?;
                    self.eat(b':')?;
                    if k == key.as_bytes() {
                        return self.find(rest, depth + 1);
                    }
                    self.skip_value(depth + 1)?;
                    self.eat(b',')?;
                }
            }
            Seg::Index(n) => {
                self.eat(b'[')?;
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                    self.eat(b',')?;
                }
                self.find(rest, depth + 1)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn locates_values() {
        let src = "{\n  \"a\": [1, {\"x\\\"y\": {}, \"b\": \"s\"}],\n  \"c\": true\n}";
        let p = |path: &[Seg]| {
            let pos = locate(src, path);
            (pos.line, pos.col)
        };
        assert_eq!(p(&[]), (1, 1));
        assert_eq!(p(&[Seg::Key("a")]), (2, 8));
        assert_eq!(p(&[Seg::Key("a"), Seg::Index(1), Seg::Key("b")]), (2, 30));
        assert_eq!(p(&[Seg::Key("c")]), (3, 8));
        // Missing parts fall back to the deepest one found.
        assert_eq!(p(&[Seg::Key("a"), Seg::Index(7)]), (2, 8));
        assert_eq!(p(&[Seg::Key("zz")]), (1, 1));
    }

    #[test]
    fn indexes_handles() {
        let src =
            r#"{"sites": [{"routes": [{"match": "/", "handle": {"routes": [{"handle": 1}]}}]}]}"#;
        let idx = index_handles(src);
        let route = [
            Seg::Key("sites"),
            Seg::Index(0),
            Seg::Key("routes"),
            Seg::Index(0),
        ];
        let mut outer = route.to_vec();
        outer.push(Seg::Key("handle"));
        let mut inner = outer.clone();
        inner.extend([Seg::Key("routes"), Seg::Index(0), Seg::Key("handle")]);
        assert_eq!(idx.len(), 2);
        assert_eq!(
            idx.get(&outer).map(|o| pos_at(src, *o)),
            Some(locate(src, &outer))
        );
        assert_eq!(
            idx.get(&inner).map(|o| pos_at(src, *o)),
            Some(locate(src, &inner))
        );
    }

    #[test]
    fn scanner_never_panics_on_garbage() {
        for src in [
            "",
            "{",
            "[",
            "\"",
            "{\"a\":",
            "{\"a\" 1}",
            "[1,",
            "\\",
            "{\"a\":[[[[",
            "é",
        ] {
            let _ = locate(src, &[Seg::Key("a"), Seg::Index(3), Seg::Key("b")]);
            let _ = index_handles(src);
        }
    }

    #[test]
    fn offsets_and_positions() {
        let src = "ab\néc\nd";
        assert_eq!(byte_offset(src, 2, 3), 5);
        assert_eq!(pos_at(src, 5), Pos::at(2, 2));
        assert_eq!(pos_at(src, 4), Pos::at(2, 1), "inside a character");
        assert_eq!(byte_offset(src, 9, 1), 7, "past the last line: its start");
        assert_eq!(byte_offset(src, 3, 99), src.len());
    }
}
