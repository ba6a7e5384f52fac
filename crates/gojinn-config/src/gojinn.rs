//! The `gojinn` directive: `gojinn [<matcher>] <module> [{ sub-directives }]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{first_time, no_block, one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::{Kind, Token};
use crate::matcher::is_matcher_token;
use crate::model::{
    EnvVar, Function, Handler, Route, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_OUTPUT_SIZE,
    DEFAULT_MEMORY_LIMIT, DEFAULT_POOL_SIZE, DEFAULT_QUEUE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS,
};
use crate::named::{self, RouteMatch};
use crate::names::{self, hint};
use crate::tree::Node;
use crate::{grants, jobs, paths, units, validate};

/// Parses one `gojinn` directive into a route.
pub(crate) fn parse(cx: &Ctx<'_>, node: &Node) -> PResult<Route> {
    let (name, args) = split(node)?;
    // Gojinn also takes the module inside the block (`wasm_file` or `path`);
    // then the only argument, if any, is a matcher.
    let in_block = node.block.as_ref().is_some_and(|b| {
        b.nodes
            .iter()
            .any(|n| n.words.first().is_some_and(|w| is_module_sub(&w.text)))
    });
    let (matcher, module) = match args {
        [] if in_block => (RouteMatch::default(), None),
        [] => {
            return Err(PosError::new(
                name.pos,
                "`gojinn` needs a module path, e.g. `gojinn ./functions/hello.wasm`",
            ))
        }
        [m] if in_block && is_matcher_token(m) => (named::resolve(&cx.matchers, m)?, None),
        [m] if m.kind == Kind::Word && (m.text.contains('*') || m.text.starts_with('@')) => {
            return Err(PosError::new(
                m.pos,
                format!(
                    "`gojinn` needs a module path after the matcher `{0}`, e.g. `gojinn {0} ./functions/hello.wasm`",
                    m.text
                ),
            ))
        }
        // One argument is the module, even when it starts with `/`.
        [module] => (RouteMatch::default(), Some(module)),
        [m, module] if is_matcher_token(m) => (named::resolve(&cx.matchers, m)?, Some(module)),
        [_, extra] => return Err(after_module(extra)),
        [m, _, extra, ..] if is_matcher_token(m) => return Err(after_module(extra)),
        [_, extra, ..] => return Err(after_module(extra)),
    };

    let mut f = Function {
        module: PathBuf::new(),
        timeout_ms: DEFAULT_TIMEOUT_MS,
        memory_limit: DEFAULT_MEMORY_LIMIT,
        env: Vec::new(),
        args: Vec::new(),
        pool_size: DEFAULT_POOL_SIZE,
        queue_timeout_ms: DEFAULT_QUEUE_TIMEOUT_MS,
        fuel_limit: None,
        snapshot: false,
        max_body_size: DEFAULT_MAX_BODY_SIZE,
        max_output_size: DEFAULT_MAX_OUTPUT_SIZE,
        permissions: Default::default(),
        mounts: Vec::new(),
        kv: None,
        db_driver: None,
        db_dsn: None,
        debug_secret: None,
        crons: Vec::new(),
        jobs: Default::default(),
        record_crashes: false,
        crash_path: None,
        security: cx.security.clone(),
        origin: Some(cx.sources.place(name.pos)),
    };
    let mut module_at: Option<Pos> = None;
    if let Some(m) = module {
        set_module(cx, &mut f, m, &mut module_at)?;
    }
    if let Some(block) = &node.block {
        let mut seen: Vec<(&str, Pos)> = Vec::new();
        let mut env_seen: HashMap<&str, Pos> = HashMap::new();
        for sub in &block.nodes {
            sub_directive(cx, &mut f, sub, &mut seen, &mut env_seen, &mut module_at)?;
        }
    }
    grants::finish(&mut f, &cx.base).map_err(|e| PosError::new(name.pos, e))?;
    jobs::finish(&f).map_err(|e| {
        // The only check there is about `crash_path`: point at it.
        let at = node
            .block
            .iter()
            .flat_map(|b| &b.nodes)
            .filter_map(|n| n.words.first())
            .find(|w| w.text == "crash_path")
            .map_or(name.pos, |w| w.pos);
        PosError::new(at, e)
    })?;
    Ok(matcher.route(None, Handler::Gojinn(f)))
}

/// `wasm_file` and `path`: Gojinn's ways to name the module inside the block.
fn is_module_sub(name: &str) -> bool {
    matches!(name, "wasm_file" | "path")
}

/// Sets the function's module from `token`, once: an argument and a
/// `wasm_file` (or two `wasm_file`s) naming modules is an error.
fn set_module(cx: &Ctx<'_>, f: &mut Function, token: &Token, at: &mut Option<Pos>) -> PResult<()> {
    if let Some(first) = at {
        return Err(PosError::new(
            token.pos,
            format!(
                "module `{}` is a second module for this route (the first is at line {}, column {}): keep one",
                token.text, first.line, first.col
            ),
        ));
    }
    f.module = module(cx, token)?;
    *at = Some(token.pos);
    Ok(())
}

/// The module `token` names, checked (a `.wasm` or `.wat` path) and resolved
/// as a route's module is: for `gojinn`, `cron` and `enqueue` alike.
pub(crate) fn module(cx: &Ctx<'_>, token: &Token) -> PResult<PathBuf> {
    let path = Path::new(&token.text);
    validate::module_path(path).map_err(|e| PosError::new(token.pos, e))?;
    let cwd = std::env::current_dir().ok();
    paths::module(&cx.base, cwd.as_deref(), path).map_err(|e| PosError::new(token.pos, e))
}

fn after_module(extra: &Token) -> PosError {
    unexpected(
        extra,
        "put the function's options in a block after the module, e.g. `gojinn ./fn.wasm { timeout 30s }`",
    )
}

fn at(t: &Token) -> impl Fn(String) -> PosError + '_ {
    move |e| PosError::new(t.pos, e)
}

fn sub_directive<'n>(
    cx: &Ctx<'_>,
    f: &mut Function,
    node: &'n Node,
    seen: &mut Vec<(&'n str, Pos)>,
    env_seen: &mut HashMap<&'n str, Pos>,
    module_at: &mut Option<Pos>,
) -> PResult<()> {
    let (name, args) = split(node)?;
    let sub = name.text.as_str();
    if !names::GOJINN_SUBDIRECTIVES.contains(&sub) && !jobs::SUBDIRECTIVES.contains(&sub) {
        return Err(unknown(name));
    }
    if !matches!(
        sub,
        "env" | "args" | "mount" | "wasm_file" | "path" | "cron"
    ) {
        first_time(seen, sub, name.pos, |first| {
            format!(
                "duplicate `{sub}` (first set at line {}, column {})",
                first.line, first.col
            )
        })?;
    }
    match sub {
        "wasm_file" | "path" => {
            let v = one_arg(node, "wasm_file ./functions/hello.wasm")?;
            set_module(cx, f, v, module_at)?;
        }
        "timeout" => {
            let v = one_arg(node, "timeout 30s")?;
            let ms = units::parse_duration_ms(&v.text).map_err(at(v))?;
            validate::timeout_ms(ms, "timeout", &v.text).map_err(at(v))?;
            f.timeout_ms = ms;
        }
        "memory_limit" => {
            let v = one_arg(node, "memory_limit 128MB")?;
            let bytes = units::parse_size(&v.text).map_err(at(v))?;
            validate::memory_limit(bytes, &v.text).map_err(at(v))?;
            f.memory_limit = bytes;
        }
        "pool_size" => {
            let v = one_arg(node, "pool_size 16")?;
            if v.text.is_empty() || !v.text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PosError::new(
                    v.pos,
                    format!(
                        "invalid pool_size `{}`: expected a whole number, e.g. `16`",
                        v.text
                    ),
                ));
            }
            // All digits: the parse fails only past u32::MAX, which is out of range.
            let n = v.text.parse::<u32>().unwrap_or(u32::MAX);
            validate::pool_size(n, &v.text).map_err(at(v))?;
            f.pool_size = n;
        }
        "queue_timeout" => {
            let v = one_arg(node, "queue_timeout 1s")?;
            let ms = units::parse_duration_ms(&v.text).map_err(at(v))?;
            validate::queue_timeout_ms(ms, &v.text).map_err(at(v))?;
            f.queue_timeout_ms = ms;
        }
        "fuel_limit" => {
            let v = one_arg(node, "fuel_limit 1000000000")?;
            let n = v
                .text
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    PosError::new(
                        v.pos,
                        format!(
                            "invalid fuel_limit `{}`: expected a whole number of fuel units of at least 1, e.g. `1000000000`; remove `fuel_limit` for no limit",
                            v.text
                        ),
                    )
                })?;
            f.fuel_limit = Some(n);
        }
        "snapshot" => {
            no_block(node, sub)?;
            if let Some(extra) = args.first() {
                return Err(unexpected(extra, "`snapshot` takes no value"));
            }
            f.snapshot = true;
        }
        "max_body_size" => {
            let v = one_arg(node, "max_body_size 10MB")?;
            f.max_body_size = units::parse_size(&v.text).map_err(at(v))?;
        }
        "max_output_size" => {
            let v = one_arg(node, "max_output_size 10MB")?;
            f.max_output_size = units::parse_size(&v.text).map_err(at(v))?;
        }
        "debug_secret" => {
            let v = one_arg(node, "debug_secret {env.GOJINN_DEBUG_SECRET}")?;
            validate::debug_secret(&v.text).map_err(at(v))?;
            f.debug_secret = Some(v.text.clone());
        }
        "env" => {
            no_block(node, "env")?;
            let (key, value) = match args {
                [k, v] => (k, v),
                [_, _, extra, ..] => {
                    return Err(unexpected(
                        extra,
                        "`env` takes a name and one value; quote a value that has spaces",
                    ))
                }
                _ => {
                    return Err(PosError::new(
                        name.pos,
                        "`env` needs a name and a value, e.g. `env DB_HOST localhost`",
                    ))
                }
            };
            validate::env_name(&key.text).map_err(at(key))?;
            validate::no_nul(&format!("the value of env `{}`", key.text), &value.text)
                .map_err(at(value))?;
            if let Some(first) = env_seen.insert(key.text.as_str(), key.pos) {
                return Err(PosError::new(
                    key.pos,
                    format!(
                        "env `{}` is set twice (first at line {}, column {})",
                        key.text, first.line, first.col
                    ),
                ));
            }
            f.env.push(EnvVar {
                name: key.text.clone(),
                value: value.text.clone(),
                from_env: value.from_env,
            });
        }
        "security" => f.security = Some(crate::security::parse(node)?),
        "args" => {
            no_block(node, "args")?;
            if args.is_empty() {
                return Err(PosError::new(
                    name.pos,
                    "`args` needs at least one argument, e.g. `args --verbose`",
                ));
            }
            for a in args {
                validate::no_nul(&format!("argument `{}`", a.text), &a.text).map_err(at(a))?;
                f.args.push(a.text.clone());
            }
        }
        "permissions" => f.permissions = grants::permissions(cx, node)?,
        _ if jobs::SUBDIRECTIVES.contains(&sub) => jobs::sub_directive(cx, f, node)?,
        "mount" => f.mounts.push(grants::mount(&cx.base, node)?),
        "kv" => f.kv = Some(grants::kv(node)?),
        "db_driver" => f.db_driver = Some(grants::driver(node)?),
        "db_dsn" => {
            let v = one_arg(node, "db_dsn ./data/app.db")?;
            validate::no_nul("db_dsn", &v.text).map_err(at(v))?;
            f.db_dsn = Some(v.text.clone());
        }
        _ => return Err(unknown(name)),
    }
    Ok(())
}

fn unknown(name: &Token) -> PosError {
    let s = name.text.as_str();
    let message = if let Some(instead) = names::gojinn_only(s) {
        names::gojinn_only_message(s, instead)
    } else if names::DIRECTIVES.contains(&s) || names::UNSUPPORTED_DIRECTIVES.contains(&s) {
        format!("`{s}` is a directive, not a gojinn sub-directive: is a `}}` missing before it?")
    } else {
        format!(
            "unknown gojinn sub-directive `{s}`{}",
            hint(s, &[names::GOJINN_SUBDIRECTIVES, jobs::SUBDIRECTIVES])
        )
    };
    PosError::new(name.pos, message)
}
