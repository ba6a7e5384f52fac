//! Background work of a `gojinn` block: `cron` triggers, how jobs are retried
//! and bounded (`retries`, `retry_backoff`, `queue_max`, `job_payload_max`),
//! crash records (`record_crashes`, `crash_path`), and the `queue` a site's
//! jobs live in (global option and site directive). The checks here are shared
//! by both loaders; running the jobs is the runtime's business.

use std::path::Path;

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::model::{CatchUp, Cron, Function, MAX_JOB_RETRIES, MAX_RETRY_BACKOFF_MS};
use crate::tree::Node;
use crate::{paths, units, validate};

/// The `gojinn` sub-directives read here.
pub(crate) const SUBDIRECTIVES: &[&str] = &[
    "cron",
    "retries",
    "retry_backoff",
    "queue_max",
    "job_payload_max",
    "record_crashes",
    "crash_path",
];

/// URL schemes of a shared `queue`.
const QUEUE_SCHEMES: &[&str] = &["redis://", "rediss://", "postgres://", "postgresql://"];

fn at(t: &Token) -> impl Fn(String) -> PosError + '_ {
    move |e| PosError::new(t.pos, e)
}

/// Reads one of [`SUBDIRECTIVES`] into `f`.
pub(crate) fn sub_directive(cx: &Ctx<'_>, f: &mut Function, node: &Node) -> PResult<()> {
    let (name, args) = split(node)?;
    match name.text.as_str() {
        "cron" => {
            let c = cron(cx, node)?;
            if f.crons.iter().any(|o| same_cron(o, &c)) {
                let module = args.get(1).map_or("", |m| m.text.as_str());
                return Err(PosError::new(
                    name.pos,
                    format!(
                        "`cron \"{}\" {module}` is given twice in this block: each would run",
                        c.spec
                    ),
                ));
            }
            f.crons.push(c);
        }
        "retries" => {
            let v = one_arg(node, "retries 3")?;
            let n = whole(v, "retries", "3")?;
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            retries(n, &v.text).map_err(at(v))?;
            f.jobs.retries = n;
        }
        "retry_backoff" => {
            let v = one_arg(node, "retry_backoff 2s")?;
            let ms = units::parse_duration_ms(&v.text).map_err(at(v))?;
            retry_backoff_ms(ms, &v.text).map_err(at(v))?;
            f.jobs.retry_backoff_ms = ms;
        }
        "queue_max" => {
            let v = one_arg(node, "queue_max 10000")?;
            let n = whole(v, "queue_max", "10000")?;
            queue_max(n, &v.text).map_err(at(v))?;
            f.jobs.queue_max = n;
        }
        "job_payload_max" => {
            let v = one_arg(node, "job_payload_max 1MiB")?;
            let n = units::parse_size(&v.text).map_err(at(v))?;
            payload_max(n, &v.text).map_err(at(v))?;
            f.jobs.payload_max = n;
        }
        "record_crashes" => {
            crate::directives::no_block(node, "record_crashes")?;
            f.record_crashes = match args {
                [] => true,
                [v] if v.text == "true" => true,
                [v] if v.text == "false" => false,
                [v] => {
                    return Err(PosError::new(
                        v.pos,
                        format!(
                            "invalid record_crashes value `{}`: use `true` or `false`, or nothing (`record_crashes` alone means `true`)",
                            v.text
                        ),
                    ))
                }
                [_, extra, ..] => {
                    return Err(unexpected(extra, "`record_crashes` takes at most `true` or `false`"))
                }
            };
        }
        "crash_path" => {
            let v = one_arg(node, "crash_path ./crashes")?;
            crash_path(&v.text).map_err(at(v))?;
            f.crash_path = Some(paths::resolve(&cx.base, Path::new(&v.text)));
        }
        // Only the names of SUBDIRECTIVES are passed here.
        _ => {}
    }
    Ok(())
}

/// Two triggers of one spec for one module (whatever their `catch_up`): both
/// would run at each tick.
pub(crate) fn same_cron(a: &Cron, b: &Cron) -> bool {
    a.spec == b.spec && a.module == b.module
}

/// `cron "<spec>" <module> [{ catch_up none|once }]`.
fn cron(cx: &Ctx<'_>, node: &Node) -> PResult<Cron> {
    const EXAMPLE: &str = "cron \"*/5 * * * *\" ./functions/cleanup.wasm";
    let (name, args) = split(node)?;
    let (spec, module) = match args {
        [s, m] => (s, m),
        [_, _, extra, ..] => {
            return Err(unexpected(
                extra,
                "`cron` takes a spec and a module; quote a spec that has spaces, e.g. `cron \"0 3 * * *\" ./nightly.wasm`",
            ))
        }
        [s] if crate::validate::module_path(Path::new(&s.text)).is_ok() => {
            return Err(PosError::new(
                s.pos,
                format!("`cron` needs a spec before the module `{}`, e.g. `{EXAMPLE}`", s.text),
            ))
        }
        [s] => {
            // `cron */5 * * * * ./x.wasm` unquoted would have more arguments;
            // one argument that is not a module is a spec without its module.
            return Err(PosError::new(
                s.pos,
                format!("`cron` needs a module after the spec `{}`, e.g. `{EXAMPLE}`", s.text),
            ))
        }
        [] => {
            return Err(PosError::new(
                name.pos,
                format!("`cron` needs a spec and a module, e.g. `{EXAMPLE}`"),
            ))
        }
    };
    crate::cron::cron_schedule(&spec.text).map_err(at(spec))?;
    let module = crate::gojinn::module(cx, module)?;
    let mut catch_up = CatchUp::None;
    if let Some(block) = &node.block {
        let mut seen: Vec<(&str, Pos)> = Vec::new();
        for line in &block.nodes {
            let (key, values) =
                crate::options::option(line, "cron", &["catch_up"], &[], &mut seen)?;
            let v = crate::directives::single(key, values, "catch_up once")?;
            catch_up = match v.text.as_str() {
                "none" => CatchUp::None,
                "once" => CatchUp::Once,
                other => {
                    return Err(PosError::new(
                        v.pos,
                        format!(
                            "invalid catch_up `{other}`: use `none` (skip missed runs, the default) or `once` (one run for all the missed ones)"
                        ),
                    ))
                }
            };
        }
    }
    Ok(Cron {
        spec: spec.text.clone(),
        module,
        catch_up,
    })
}

/// A whole number for `what`, with `example` in the message.
fn whole(v: &Token, what: &str, example: &str) -> PResult<u64> {
    if v.text.is_empty() || !v.text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PosError::new(
            v.pos,
            format!(
                "invalid {what} `{}`: expected a whole number, e.g. `{example}`",
                v.text
            ),
        ));
    }
    // All digits: the parse fails only past u64::MAX, which every check refuses.
    Ok(v.text.parse::<u64>().unwrap_or(u64::MAX))
}

/// `retries`: at most [`MAX_JOB_RETRIES`].
pub(crate) fn retries(n: u32, text: &str) -> Result<(), String> {
    if n > MAX_JOB_RETRIES {
        return Err(format!(
            "invalid retries `{text}`: at most {MAX_JOB_RETRIES}"
        ));
    }
    Ok(())
}

/// `retry_backoff`: at most [`MAX_RETRY_BACKOFF_MS`].
pub(crate) fn retry_backoff_ms(ms: u64, text: &str) -> Result<(), String> {
    if ms > MAX_RETRY_BACKOFF_MS {
        return Err(format!("invalid retry_backoff `{text}`: at most 24h"));
    }
    Ok(())
}

/// `queue_max`: at least 1.
pub(crate) fn queue_max(n: u64, text: &str) -> Result<(), String> {
    if n == 0 {
        return Err(format!(
            "invalid queue_max `{text}`: at least 1 job must be able to wait"
        ));
    }
    Ok(())
}

/// `job_payload_max`: at least 1 byte.
pub(crate) fn payload_max(n: u64, text: &str) -> Result<(), String> {
    if n == 0 {
        return Err(format!(
            "invalid job_payload_max `{text}`: it must be at least 1 byte"
        ));
    }
    Ok(())
}

/// A `crash_path` as written.
pub(crate) fn crash_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("crash_path is empty".to_owned());
    }
    validate::no_nul("crash_path", path)
}

/// Checks across the fields read here, once the block is read.
pub(crate) fn finish(f: &Function) -> Result<(), String> {
    if f.crash_path.is_some() && !f.record_crashes {
        return Err(
            "`crash_path` is set but crashes are not recorded: add `record_crashes`, or remove `crash_path`"
                .to_owned(),
        );
    }
    Ok(())
}

/// A shared queue's URL: `redis://…`, `rediss://…`, `postgres://…` or
/// `postgresql://…` naming a server.
pub(crate) fn queue_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    match QUEUE_SCHEMES.iter().find(|s| lower.starts_with(**s)) {
        Some(s) if lower.len() == s.len() || lower[s.len()..].starts_with('/') => {
            Err(format!("queue URL `{url}` names no server"))
        }
        Some(_) => Ok(()),
        None => Err(format!(
            "invalid queue `{url}`: use a `redis://`, `rediss://`, `postgres://` or `postgresql://` URL, or leave `queue` out for the embedded queue in `storage`"
        )),
    }
}

/// The `queue URL` directive of a site.
pub(crate) fn site_queue(cx: &mut Ctx<'_>, node: &Node, site_level: bool) -> PResult<()> {
    let (name, _) = split(node)?;
    if !site_level {
        return Err(PosError::new(
            name.pos,
            "`queue` applies to a whole site: put it directly in the site block, not inside `handle` or `route`",
        ));
    }
    if let Some((_, first)) = &cx.queue {
        return Err(PosError::new(
            name.pos,
            format!(
                "`queue` is given twice in this site (first at line {}, column {})",
                first.line, first.col
            ),
        ));
    }
    let v = one_arg(node, "queue redis://localhost:6379")?;
    queue_url(&v.text).map_err(at(v))?;
    cx.queue = Some((v.text.clone(), name.pos));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        for ok in [
            "redis://127.0.0.1:6379/0",
            "rediss://user:pw@cache.internal:6380",
            "postgres://app@db/app",
            "postgresql://db.internal/jobs",
            "REDIS://Host",
        ] {
            assert_eq!(queue_url(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            queue_url("amqp://mq").unwrap_err(),
            "invalid queue `amqp://mq`: use a `redis://`, `rediss://`, `postgres://` or `postgresql://` URL, or leave `queue` out for the embedded queue in `storage`"
        );
        assert!(queue_url("embedded").is_err());
        assert_eq!(
            queue_url("redis://").unwrap_err(),
            "queue URL `redis://` names no server"
        );
        assert!(queue_url("postgres:///db").is_err());
    }

    #[test]
    fn limits() {
        assert!(retries(MAX_JOB_RETRIES, "100").is_ok());
        assert!(retries(MAX_JOB_RETRIES + 1, "101").is_err());
        assert!(retry_backoff_ms(0, "0").is_ok());
        assert!(retry_backoff_ms(MAX_RETRY_BACKOFF_MS + 1, "25h").is_err());
        assert!(queue_max(0, "0").is_err());
        assert!(payload_max(0, "0").is_err());
        assert!(crash_path("").is_err());
        assert!(crash_path("a\0b").is_err());
    }
}
