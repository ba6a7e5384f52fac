//! The Caddyfile adapter's top level: global options and site blocks. Site
//! addresses are in `address`, directives inside site blocks in `directives`
//! and `gojinn`, automatic HTTPS (run once every site is read) in `autohttps`.

use std::path::{Path, PathBuf};

use crate::address::{site_keys, split_host_port};
use crate::autohttps::{WrittenAddress, WrittenSite};
use crate::directives::{self, single, Mode};
use crate::error::{Loaded, PResult, Pos, PosError};
use crate::import::Sources;
use crate::lexer::{self, Token};
use crate::model::{Address, AutoHttpsOptions, Config, Security, Site, Tls, DEFAULT_ADMIN_ADDR};
use crate::names::{self, hint};
use crate::placeholders::{self, Env};
use crate::tree::{self, Block, Node};
use crate::{paths, units, validate, ConfigError};

/// State shared while adapting one file.
pub(crate) struct Ctx<'a> {
    /// The texts of the config (the file and what it imports), for
    /// `Function::origin`.
    pub(crate) sources: &'a Sources,
    /// Directory relative paths resolve against.
    pub(crate) base: PathBuf,
    /// Directive order (Caddy's, then `gojinn`), as changed by `order`.
    order: Vec<String>,
    /// Next mutual-exclusion group number.
    pub(crate) groups: usize,
    /// The file uses Caddy's single-site form (no braces around the site).
    pub(crate) single_site: bool,
    /// The global `security` block: the default of every `gojinn` block.
    pub(crate) security: Option<Security>,
    /// True while the directives of a site block itself (not a nested block)
    /// are read: only there is `tls` allowed.
    pub(crate) site_level: bool,
    /// The `tls` directive of the site being read, and where it was written.
    pub(crate) tls: Option<(Tls, Pos)>,
    /// The `handle_errors` blocks of the site being read.
    pub(crate) errors: Vec<crate::handlers::ErrorRoutes>,
    /// True while a `handle_errors` block is read.
    pub(crate) in_errors: bool,
    /// The named matchers in scope in the block being read.
    pub(crate) matchers: Vec<crate::named::Definition>,
    /// The `log` directive of the site being read, and where it was written.
    pub(crate) log: Option<(crate::AccessLog, Pos)>,
    /// The `queue` directive of the site being read, and where it was written.
    pub(crate) queue: Option<(String, Pos)>,
}

impl Ctx<'_> {
    /// Position of `directive` in the directive order; `handle_path` sorts as
    /// `handle` (as in Caddy), unknown names last.
    pub(crate) fn rank(&self, directive: &str) -> usize {
        let d = if directive == "handle_path" {
            "handle"
        } else {
            directive
        };
        self.order
            .iter()
            .position(|o| o == d)
            .unwrap_or(self.order.len())
    }
}

/// Adapts Caddyfile text.
pub(crate) fn adapt(src: &str, file: &Path, env: Env<'_>) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut sources = Sources::new(file);
    let config = build(src, file, &mut sources, env, &mut warnings)
        .map_err(|e| ConfigError::Invalid(sources.diagnostic(e.pos, e.message)))?;
    let warnings = warnings
        .into_iter()
        .map(|(pos, message)| sources.diagnostic(pos, message))
        .collect();
    Ok(Loaded { config, warnings })
}

fn build(
    src: &str,
    file: &Path,
    sources: &mut Sources,
    env: Env<'_>,
    warnings: &mut Vec<(Pos, String)>,
) -> PResult<Config> {
    let mut tokens = lexer::lex_source(src, 0)?;
    placeholders::substitute(&mut tokens, env, warnings);
    let tokens = crate::import::expand(tokens, sources, env, warnings)?;
    let sources: &Sources = sources;
    let nodes = tree::parse(tokens)?;
    let mut order: Vec<String> = names::CADDY_ORDER.iter().map(|s| (*s).to_owned()).collect();
    // Caddy rejects a plugin directive that was not ordered; gojinn is lenient
    // and treats it as `order gojinn last`.
    order.push("gojinn".to_owned());
    let mut cx = Ctx {
        sources,
        base: paths::base_dir(file),
        order,
        groups: 0,
        single_site: false,
        security: None,
        site_level: false,
        tls: None,
        matchers: Vec::new(),
        errors: Vec::new(),
        in_errors: false,
        log: None,
        queue: None,
    };
    let mut config = Config {
        admin: Some(DEFAULT_ADMIN_ADDR.to_owned()),
        debug: false,
        storage: None,
        storage_url: None,
        queue: None,
        auto_https: AutoHttpsOptions::default(),
        log: Default::default(),
        tracing: None,
        server: Default::default(),
        sites: Vec::new(),
    };

    let mut rest = nodes.as_slice();
    if let Some((first, tail)) = rest.split_first() {
        if let (true, Some(block)) = (first.words.is_empty(), &first.block) {
            global_options(&mut cx, &mut config, block)?;
            rest = tail;
        }
    }

    let mut addresses: Vec<(Address, Pos)> = Vec::new();
    let mut written: Vec<WrittenSite> = Vec::new();
    // Address lines ending in `,` continue on the next line.
    let mut keys: Vec<&Token> = Vec::new();
    let mut i = 0;
    while let Some(node) = rest.get(i) {
        i += 1;
        if node.words.is_empty() {
            return Err(PosError::new(
                node.pos(),
                "unexpected block: a site block needs an address before its `{` (e.g. `:8080 {`), \
                 and the global options block must come first in the file",
            ));
        }
        keys.extend(node.words.iter());
        let directives = match &node.block {
            Some(block) => block.nodes.as_slice(),
            None if node.words.last().is_some_and(|w| w.text.ends_with(',')) => continue,
            // Caddy's single-site form: an address line, then the directives
            // of that one site until the end of the file.
            None if config.sites.is_empty() => {
                cx.single_site = true;
                let all = rest.get(i..).unwrap_or(&[]);
                i = rest.len();
                all
            }
            None => return Err(outside_site(node)),
        };
        let site_addresses = site_keys(&keys, &config.auto_https)?;
        keys.clear();
        let base = cx.base.clone();
        cx.site_level = true;
        let routes = directives::block(&mut cx, directives, &base, Mode::Sorted)?;
        let tls = cx.tls.take();
        let log = cx.log.take().map(|(mut log, _)| {
            // Caddy names the loggers of the sites that log `log0`, `log1`…
            if log.logger.is_empty() {
                log.logger = format!(
                    "log{}",
                    config.sites.iter().filter(|s| s.log.is_some()).count()
                );
            }
            log
        });
        addresses.extend(site_addresses.iter().map(|k| (k.address.clone(), k.pos)));
        written.push(WrittenSite {
            addresses: site_addresses
                .iter()
                .map(|k| WrittenAddress {
                    scheme: k.scheme,
                    pos: k.pos,
                    text: k.text.clone(),
                })
                .collect(),
            tls: tls.as_ref().map(|(_, p)| *p),
        });
        config.sites.push(Site {
            addresses: site_addresses.into_iter().map(|k| k.address).collect(),
            tls: tls.map(|(t, _)| t),
            log,
            queue: cx.queue.take().map(|(q, _)| q),
            routes,
            errors: std::mem::take(&mut cx.errors),
        });
    }
    if let Some(last) = keys.last() {
        return Err(PosError::new(
            last.pos,
            format!(
                "site address list ends with `{}` but no `{{` follows",
                last.text
            ),
        ));
    }
    validate::has_sites(config.sites.len()).map_err(|m| PosError::new(Pos::START, m))?;
    validate::unique_addresses(addresses.iter().map(|(a, p)| (a, *p)))
        .map_err(|(a, at, first)| validate::duplicate_address(a, at, first))?;
    crate::autohttps::resolve(&mut config, &written)?;
    Ok(config)
}

/// The error for a line without a block after the first site.
fn outside_site(node: &Node) -> PosError {
    let pos = node.pos();
    let word = node.words.first().map_or("", |w| w.text.as_str());
    if names::DIRECTIVES.contains(&word) || names::UNSUPPORTED_DIRECTIVES.contains(&word) {
        PosError::new(
            pos,
            format!("`{word}` is outside of any site block; put it inside a block such as `:8080 {{ … }}`"),
        )
    } else {
        PosError::new(
            pos,
            format!("site address `{word}` must be followed by `{{` on the same line"),
        )
    }
}

fn global_options(cx: &mut Ctx<'_>, config: &mut Config, block: &Block) -> PResult<()> {
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for node in &block.nodes {
        let Some((name, args)) = node.words.split_first() else {
            return Err(PosError::new(
                node.pos(),
                "unexpected block in the global options",
            ));
        };
        let opt = name.text.as_str();
        if names::GLOBAL_OPTIONS.contains(&opt) {
            if let Some(b) = node
                .block
                .as_ref()
                .filter(|_| !matches!(opt, "log" | "tracing" | "security" | "servers" | "acme_eab"))
            {
                return Err(PosError::new(
                    b.open,
                    format!("the `{opt}` global option does not take a block in gojinn"),
                ));
            }
            if opt != "order" {
                directives::first_time(&mut seen, opt, name.pos, |first| {
                    format!(
                        "global option `{opt}` is given twice (first at line {}, column {})",
                        first.line, first.col
                    )
                })?;
            }
        }
        match opt {
            "order" => order(cx, name, args)?,
            "debug" => {
                if let Some(extra) = args.first() {
                    return Err(unexpected(extra, "`debug` takes no arguments"));
                }
                config.debug = true;
            }
            "admin" => config.admin = admin(name, args)?,
            "log" => config.log = crate::logs::global(cx, node)?,
            "tracing" => config.tracing = Some(crate::observe::tracing(node)?),
            "storage" => crate::https_options::storage(cx, name, args, config)?,
            "queue" => {
                let v = single(name, args, "queue redis://localhost:6379")?;
                crate::jobs::queue_url(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                config.queue = Some(v.text.clone());
            }
            _ if crate::https_options::OPTIONS.contains(&opt) => {
                crate::https_options::parse(cx, node, config)?
            }
            "security" => cx.security = Some(crate::security::parse(node)?),
            "servers" => crate::servers::parse(node, &mut config.server)?,
            "grace_period" => {
                let v = single(name, args, "grace_period 10s")?;
                config.server.grace_period_ms = units::parse_duration_ms(&v.text)
                    .map_err(|e| PosError::new(v.pos, e))?;
            }
            _ if names::UNSUPPORTED_GLOBAL_OPTIONS.contains(&opt) => {
                return Err(PosError::new(
                    name.pos,
                    format!("global option `{opt}` is not supported by gojinn"),
                ))
            }
            _ if names::DIRECTIVES.contains(&opt) || names::UNSUPPORTED_DIRECTIVES.contains(&opt) => {
                return Err(PosError::new(
                    name.pos,
                    format!("`{opt}` is a directive, not a global option: put it in a site block such as `:8080 {{ … }}`"),
                ))
            }
            _ => {
                return Err(PosError::new(
                    name.pos,
                    format!(
                        "unknown global option `{opt}`{}",
                        hint(opt, &[names::GLOBAL_OPTIONS, names::UNSUPPORTED_GLOBAL_OPTIONS])
                    ),
                ))
            }
        }
    }
    let ports = &config.auto_https;
    if ports.http_port == ports.https_port {
        let at = seen
            .iter()
            .filter(|(o, _)| matches!(*o, "http_port" | "https_port"))
            .map(|(_, p)| *p)
            .max()
            .unwrap_or(block.open);
        return Err(PosError::new(
            at,
            format!(
                "`http_port` and `https_port` are both {}: cleartext and HTTPS need different ports",
                ports.http_port
            ),
        ));
    }
    Ok(())
}

/// `admin <address>` or `admin off`.
fn admin(name: &Token, args: &[Token]) -> PResult<Option<String>> {
    let addr = match args {
        [] => {
            return Err(PosError::new(
                name.pos,
                "`admin` needs an address or `off`, e.g. `admin localhost:2019`",
            ))
        }
        [a] => a,
        [_, extra, ..] => return Err(unexpected(extra, "`admin` takes one address")),
    };
    if addr.text == "off" {
        return Ok(None);
    }
    let valid = split_host_port(&addr.text)
        .ok()
        .and_then(|(host, port)| Some((host, port?)))
        .is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok()
                && (host.is_empty() || validate::host(&host.to_ascii_lowercase()).is_ok())
        });
    if !valid {
        return Err(PosError::new(
            addr.pos,
            format!(
                "invalid admin address `{}`: use `host:port` or `:port` (e.g. `localhost:2019`), or `off`",
                addr.text
            ),
        ));
    }
    Ok(Some(addr.text.clone()))
}

/// `order <directive> first|last|before <d>|after <d>`.
fn order(cx: &mut Ctx<'_>, name: &Token, args: &[Token]) -> PResult<()> {
    let (dir, position, target) = match args {
        [d, p] => (d, p, None),
        [d, p, t] => (d, p, Some(t)),
        [_, _, _, extra, ..] => {
            return Err(unexpected(
                extra,
                "`order` takes a directive and a position",
            ))
        }
        _ => {
            return Err(PosError::new(
                name.pos,
                "`order` needs a directive and a position, e.g. `order gojinn last`",
            ))
        }
    };
    known_directive(dir)?;
    cx.order.retain(|d| *d != dir.text);
    let index = match (position.text.as_str(), target) {
        ("first", None) => 0,
        ("last", None) => cx.order.len(),
        ("before" | "after", Some(t)) => {
            known_directive(t)?;
            if t.text == dir.text {
                return Err(PosError::new(
                    t.pos,
                    format!("cannot order `{}` relative to itself", dir.text),
                ));
            }
            let at = cx.order.iter().position(|d| *d == t.text).unwrap_or(cx.order.len());
            if position.text == "after" { at.saturating_add(1).min(cx.order.len()) } else { at }
        }
        ("first" | "last", Some(t)) => {
            return Err(unexpected(t, &format!("`order … {}` takes no directive after it", position.text)))
        }
        ("before" | "after", None) => {
            return Err(PosError::new(
                position.pos,
                format!("`order … {}` needs a directive after it", position.text),
            ))
        }
        (other, _) => {
            return Err(PosError::new(
                position.pos,
                format!("invalid order position `{other}`: use `first`, `last`, `before <directive>` or `after <directive>`"),
            ))
        }
    };
    cx.order.insert(index, dir.text.clone());
    Ok(())
}

fn known_directive(t: &Token) -> PResult<()> {
    let d = t.text.as_str();
    if names::DIRECTIVES.contains(&d) || names::UNSUPPORTED_DIRECTIVES.contains(&d) {
        Ok(())
    } else {
        Err(PosError::new(
            t.pos,
            format!(
                "unknown directive `{d}` in `order`{}",
                hint(d, &[names::DIRECTIVES, names::UNSUPPORTED_DIRECTIVES])
            ),
        ))
    }
}

/// "unexpected argument `x`: {why}" at `t`.
pub(crate) fn unexpected(t: &Token, why: &str) -> PosError {
    PosError::new(t.pos, format!("unexpected argument `{}`: {why}", t.text))
}
