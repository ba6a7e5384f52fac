//! Logs as Caddy configures them: the `log` global option (the server's own
//! log) and the `log` site directive (the site's access log), with their
//! `output`, `format` and `level` options, and the model types both resolve to.
//!
//! Caddy's `output file` rolls by size with lumberjack's rules, which gojinn's
//! roller (crate `gojinn-log`) follows: `roll_size` (100 MiB), `roll_keep` (10
//! files), `roll_keep_for` (90 days, rounded up to whole days), rolled files
//! gzip-compressed unless `roll_uncompressed`, `roll_disabled` to append
//! forever. One difference: gojinn rolls at the exact `roll_size`, where Caddy
//! rounds it up to whole mebibytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::caddyfile::{unexpected, Ctx};
use crate::directives::{each_once, one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::lexer::Token;
use crate::model::{LogConfig, LogFormat, LogLevel};
use crate::names::hint;
use crate::tree::Node;
use crate::{paths, units, validate};

/// Default `roll_size`: 100 MiB, as in Caddy.
pub const DEFAULT_ROLL_SIZE: u64 = 100 << 20;
/// Default `roll_keep`: rolled files kept, as in Caddy.
pub const DEFAULT_ROLL_KEEP: u32 = 10;
/// Default `roll_keep_for`, in days, as in Caddy (2160h).
pub const DEFAULT_ROLL_KEEP_DAYS: u32 = 90;
/// Default permissions of a log file Gojinn creates (Caddy's `mode` default).
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// Where log lines go: `output stderr|stdout|discard|file …`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LogOutput {
    /// Standard error (the default).
    #[default]
    Stderr,
    /// Standard output.
    Stdout,
    /// Nowhere.
    Discard,
    /// A file, rolled by size unless `roll_disabled`.
    File(FileOutput),
}

impl LogOutput {
    /// True for the default, standard error.
    pub fn is_stderr(&self) -> bool {
        *self == LogOutput::Stderr
    }
}

/// `output file PATH { … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    /// Absolute path of the log file.
    pub path: PathBuf,
    /// Roll the file by size (`roll_disabled` turns it off).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub roll: bool,
    /// Size in bytes past which the file is rolled.
    #[serde(
        default = "default_roll_size",
        skip_serializing_if = "is_default_roll_size"
    )]
    pub roll_size: u64,
    /// Rolled files kept; older ones are deleted.
    #[serde(
        default = "default_roll_keep",
        skip_serializing_if = "is_default_roll_keep"
    )]
    pub roll_keep: u32,
    /// Days a rolled file is kept.
    #[serde(
        default = "default_roll_keep_days",
        skip_serializing_if = "is_default_roll_keep_days"
    )]
    pub roll_keep_days: u32,
    /// Gzip rolled files (`roll_uncompressed` turns it off).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub roll_compress: bool,
    /// Unix permissions of the file when Gojinn creates it.
    #[serde(default = "default_file_mode", skip_serializing_if = "is_default_mode")]
    pub mode: u32,
}

impl FileOutput {
    /// A rolled file at `path` with Caddy's defaults.
    pub fn new(path: PathBuf) -> Self {
        FileOutput {
            path,
            roll: true,
            roll_size: DEFAULT_ROLL_SIZE,
            roll_keep: DEFAULT_ROLL_KEEP,
            roll_keep_days: DEFAULT_ROLL_KEEP_DAYS,
            roll_compress: true,
            mode: DEFAULT_FILE_MODE,
        }
    }
}

fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}
fn default_roll_size() -> u64 {
    DEFAULT_ROLL_SIZE
}
fn is_default_roll_size(v: &u64) -> bool {
    *v == DEFAULT_ROLL_SIZE
}
fn default_roll_keep() -> u32 {
    DEFAULT_ROLL_KEEP
}
fn is_default_roll_keep(v: &u32) -> bool {
    *v == DEFAULT_ROLL_KEEP
}
fn default_roll_keep_days() -> u32 {
    DEFAULT_ROLL_KEEP_DAYS
}
fn is_default_roll_keep_days(v: &u32) -> bool {
    *v == DEFAULT_ROLL_KEEP_DAYS
}
fn default_file_mode() -> u32 {
    DEFAULT_FILE_MODE
}
fn is_default_mode(v: &u32) -> bool {
    *v == DEFAULT_FILE_MODE
}

/// A site's `log` directive: its access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// The logger's name: lines say `"logger":"http.log.access.<name>"`. Caddy's
    /// default names, `log0`, `log1`…, number the sites with a `log` in file order.
    pub logger: String,
    /// Where the lines go.
    #[serde(default, skip_serializing_if = "LogOutput::is_stderr")]
    pub output: LogOutput,
    /// Line format.
    #[serde(default)]
    pub format: LogFormat,
    /// Least severe level written: requests answered 5xx are `error`, the
    /// others `info`. `None` writes both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    /// Where the directive was written (`file:line:col`), for errors about its
    /// output; not part of the JSON form.
    #[serde(skip)]
    pub origin: Option<String>,
}

const GLOBAL_OPTIONS: &[&str] = &["output", "format", "level"];
const GLOBAL_UNSUPPORTED: &[&str] = &["include", "exclude", "sampling", "writer", "encoder"];
const SITE_OPTIONS: &[&str] = &["output", "format", "level"];
const SITE_UNSUPPORTED: &[&str] = &["hostnames", "no_hostname", "sampling"];
const OUTPUTS: &[&str] = &["stderr", "stdout", "discard", "file"];
const OUTPUTS_UNSUPPORTED: &[&str] = &["net"];
const FILE_OPTIONS: &[&str] = &[
    "mode",
    "roll_disabled",
    "roll_size",
    "roll_uncompressed",
    "roll_keep",
    "roll_keep_for",
];
const FILE_UNSUPPORTED: &[&str] = &["dir_mode", "roll_local_time", "roll_interval", "roll_at"];
const FORMATS_UNSUPPORTED: &[&str] = &["filter", "append", "transform"];

/// The `log [default] { output …; format …; level … }` global option.
pub(crate) fn global(cx: &Ctx<'_>, node: &Node) -> PResult<LogConfig> {
    let (name, args) = split(node)?;
    match args {
        [] => {}
        [n] if n.text == "default" => {}
        [n, ..] => {
            return Err(unexpected(
                n,
                "gojinn has one server log: the global `log` takes no name but `default`, \
                 e.g. `log { format console }`",
            ))
        }
    }
    let Some(block) = &node.block else {
        return Err(PosError::new(
            name.pos,
            "`log` needs a block, e.g. `log { format console; level debug }`",
        ));
    };
    let mut out = LogConfig::default();
    for sub in each_once(block, "log")? {
        let (key, _) = split(sub)?;
        match key.text.as_str() {
            "output" => out.output = output(cx, sub)?,
            "format" => out.format = format(sub)?,
            "level" => out.level = Some(level(sub)?),
            k => return Err(unknown(key, "log", k, GLOBAL_OPTIONS, GLOBAL_UNSUPPORTED)),
        }
    }
    Ok(out)
}

/// The `log [<logger_name>] [{ … }]` site directive. Only the site block itself
/// may hold it (`site_level`), once. The logger gets Caddy's default name later,
/// when the site's place among the logged sites is known (`logger` is empty).
pub(crate) fn site(cx: &mut Ctx<'_>, node: &Node, site_level: bool) -> PResult<()> {
    let (name, args) = split(node)?;
    if !site_level {
        return Err(PosError::new(
            name.pos,
            "`log` applies to a whole site: put it directly in the site block, not inside `handle` or `route`",
        ));
    }
    if let Some((_, first)) = &cx.log {
        return Err(PosError::new(
            name.pos,
            format!(
                "`log` is given twice in this site (first at line {}, column {}); gojinn has one access log per site",
                first.line, first.col
            ),
        ));
    }
    let logger = match args {
        [] => String::new(),
        [n] => {
            if n.text.is_empty()
                || !n
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            {
                return Err(PosError::new(
                    n.pos,
                    format!(
                        "invalid logger name `{}`: use letters, digits, `_`, `-` and `.`",
                        n.text
                    ),
                ));
            }
            n.text.clone()
        }
        [_, extra, ..] => return Err(unexpected(extra, "`log` takes at most a logger name")),
    };
    let mut out = AccessLog {
        logger,
        output: LogOutput::Stderr,
        format: LogFormat::Json,
        level: None,
        origin: Some(cx.sources.place(name.pos)),
    };
    for sub in node
        .block
        .as_ref()
        .map(|b| each_once(b, "log"))
        .transpose()?
        .unwrap_or(&[])
    {
        let (key, _) = split(sub)?;
        match key.text.as_str() {
            "output" => out.output = output(cx, sub)?,
            "format" => out.format = format(sub)?,
            "level" => out.level = Some(level(sub)?),
            k => return Err(unknown(key, "log", k, SITE_OPTIONS, SITE_UNSUPPORTED)),
        }
    }
    cx.log = Some((out, name.pos));
    Ok(())
}

/// "unknown `what` option" with a hint, or "not supported" for a known
/// Caddy option gojinn lacks.
fn unknown(
    key: &Token,
    what: &str,
    k: &str,
    known: &[&'static str],
    unsupported: &[&'static str],
) -> PosError {
    if unsupported.contains(&k) {
        PosError::new(
            key.pos,
            format!("`{what}` option `{k}` is not supported by gojinn"),
        )
    } else {
        PosError::new(
            key.pos,
            format!(
                "unknown `{what}` option `{k}`{}",
                hint(k, &[known, unsupported])
            ),
        )
    }
}

/// `format json|console`.
fn format(sub: &Node) -> PResult<LogFormat> {
    let (key, args) = split(sub)?;
    let Some(v) = args.first() else {
        return Err(PosError::new(
            key.pos,
            "`format` needs a value, e.g. `format console`",
        ));
    };
    let f = match v.text.as_str() {
        "json" => LogFormat::Json,
        "console" => LogFormat::Console,
        other if FORMATS_UNSUPPORTED.contains(&other) => {
            return Err(PosError::new(
                v.pos,
                format!("log format `{other}` is not supported by gojinn: use `json` or `console`"),
            ))
        }
        other => {
            return Err(PosError::new(
                v.pos,
                format!(
                    "invalid log format `{other}`: use `json` or `console`{}",
                    hint(other, &[&["json", "console"]])
                ),
            ))
        }
    };
    if let Some(extra) = args.get(1) {
        return Err(unexpected(extra, "`format` takes one value"));
    }
    if let Some(b) = &sub.block {
        return Err(PosError::new(
            b.open,
            format!(
                "options of the `{}` log format (time_format, message_key, …) are not supported by gojinn",
                v.text
            ),
        ));
    }
    Ok(f)
}

/// `level error|warn|info|debug` (Caddy writes them in capitals; both work).
fn level(sub: &Node) -> PResult<LogLevel> {
    let v = one_arg(sub, "level debug")?;
    Ok(match v.text.to_ascii_lowercase().as_str() {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        _ => {
            return Err(PosError::new(
                v.pos,
                format!(
                    "invalid log level `{}`: use `error`, `warn`, `info` or `debug`",
                    v.text
                ),
            ))
        }
    })
}

/// `output stderr|stdout|discard` or `output file PATH [{ … }]`.
fn output(cx: &Ctx<'_>, sub: &Node) -> PResult<LogOutput> {
    let (key, args) = split(sub)?;
    let Some((kind, rest)) = args.split_first() else {
        return Err(PosError::new(
            key.pos,
            "`output` needs a destination: `stderr`, `stdout`, `discard` or `file <path>`",
        ));
    };
    let simple = |o: LogOutput| -> PResult<LogOutput> {
        if let Some(extra) = rest.first() {
            return Err(unexpected(
                extra,
                &format!("`output {}` takes nothing more", kind.text),
            ));
        }
        if let Some(b) = &sub.block {
            return Err(PosError::new(
                b.open,
                format!("`output {}` does not take a block", kind.text),
            ));
        }
        Ok(o)
    };
    match kind.text.as_str() {
        "stderr" => simple(LogOutput::Stderr),
        "stdout" => simple(LogOutput::Stdout),
        "discard" => simple(LogOutput::Discard),
        "file" => file(cx, sub, kind, rest).map(LogOutput::File),
        k if OUTPUTS_UNSUPPORTED.contains(&k) => Err(PosError::new(
            kind.pos,
            format!("log output `{k}` is not supported by gojinn: use `stderr`, `stdout`, `discard` or `file <path>`"),
        )),
        k => Err(PosError::new(
            kind.pos,
            format!(
                "unknown log output `{k}`: use `stderr`, `stdout`, `discard` or `file <path>`{}",
                hint(k, &[OUTPUTS, OUTPUTS_UNSUPPORTED])
            ),
        )),
    }
}

/// `file PATH [{ mode …; roll_disabled; roll_size …; roll_uncompressed; roll_keep …; roll_keep_for … }]`.
fn file(cx: &Ctx<'_>, sub: &Node, kind: &Token, rest: &[Token]) -> PResult<FileOutput> {
    let path = match rest {
        [] => {
            return Err(PosError::new(
                kind.pos,
                "`output file` needs a path, e.g. `output file /var/log/caddy/access.log`",
            ))
        }
        [p] => p,
        [_, extra, ..] => {
            return Err(unexpected(
                extra,
                "`output file` takes one path; its options go in a block",
            ))
        }
    };
    if path.text.is_empty() {
        return Err(PosError::new(path.pos, "log file path is empty"));
    }
    validate::no_nul("log file path", &path.text).map_err(|e| PosError::new(path.pos, e))?;
    let mut out = FileOutput::new(paths::resolve(&cx.base, Path::new(&path.text)));
    let mut roll_at: Option<Pos> = None;
    let opts = sub
        .block
        .as_ref()
        .map(|b| each_once(b, "output file"))
        .transpose()?;
    for opt in opts.unwrap_or(&[]) {
        let (name, args) = split(opt)?;
        let n = name.text.as_str();
        let flag = || -> PResult<()> {
            crate::directives::no_block(opt, n)?;
            match args.first() {
                Some(extra) => Err(unexpected(extra, &format!("`{n}` takes no value"))),
                None => Ok(()),
            }
        };
        match n {
            "roll_disabled" => {
                flag()?;
                out.roll = false;
            }
            "roll_uncompressed" => {
                flag()?;
                out.roll_compress = false;
                roll_at.get_or_insert(name.pos);
            }
            "roll_size" => {
                let v = one_arg(opt, "roll_size 100MiB")?;
                out.roll_size = units::parse_size(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                if out.roll_size == 0 {
                    return Err(PosError::new(
                        v.pos,
                        "`roll_size` must be more than 0 bytes, e.g. `roll_size 100MiB`",
                    ));
                }
                roll_at.get_or_insert(name.pos);
            }
            "roll_keep" => {
                let v = one_arg(opt, "roll_keep 10")?;
                let keep: u32 = v.text.parse().map_err(|_| {
                    PosError::new(
                        v.pos,
                        format!(
                            "invalid `roll_keep` `{}`: expected a whole number of files, e.g. `10`",
                            v.text
                        ),
                    )
                })?;
                // As in Caddy, 0 means the default.
                out.roll_keep = if keep == 0 { DEFAULT_ROLL_KEEP } else { keep };
                roll_at.get_or_insert(name.pos);
            }
            "roll_keep_for" => {
                let v = one_arg(opt, "roll_keep_for 720h")?;
                let ns = units::parse_duration_ns(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                // Day resolution, rounded up, as in Caddy; 0 means the default.
                let day = 86_400 * 1_000_000_000_u128;
                let days = u32::try_from(ns.div_ceil(day)).map_err(|_| {
                    PosError::new(
                        v.pos,
                        format!("invalid `roll_keep_for` `{}`: it is too large", v.text),
                    )
                })?;
                out.roll_keep_days = if days == 0 {
                    DEFAULT_ROLL_KEEP_DAYS
                } else {
                    days
                };
                roll_at.get_or_insert(name.pos);
            }
            "mode" => {
                let v = one_arg(opt, "mode 0640")?;
                out.mode = (1..=4)
                    .contains(&v.text.len())
                    .then(|| u32::from_str_radix(&v.text, 8).ok())
                    .flatten()
                    .ok_or_else(|| {
                        PosError::new(
                            v.pos,
                            format!(
                                "invalid file mode `{}`: use 1 to 4 octal digits, e.g. `0640`",
                                v.text
                            ),
                        )
                    })?;
            }
            _ => {
                return Err(unknown(
                    name,
                    "output file",
                    n,
                    FILE_OPTIONS,
                    FILE_UNSUPPORTED,
                ))
            }
        }
    }
    if let (false, Some(at)) = (out.roll, roll_at) {
        return Err(PosError::new(
            at,
            "roll options are given with `roll_disabled`: remove one or the other",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    fn site_log(src: &str) -> Option<AccessLog> {
        let loaded = crate::parse_caddyfile(src, Path::new("/srv/Caddyfile"), &|_| None).unwrap();
        loaded.config.sites[0].log.clone()
    }

    #[test]
    fn the_deployment_guide_form_rolls_with_caddys_defaults() {
        let log = site_log(
            ":8080 {\n log {\n  output file /var/log/caddy/access.log\n }\n respond ok\n}\n",
        )
        .unwrap();
        assert_eq!(log.logger, "log0");
        assert_eq!(
            log.output,
            LogOutput::File(FileOutput::new("/var/log/caddy/access.log".into()))
        );
    }

    #[test]
    fn roll_options_resolve_to_bytes_files_and_whole_days() {
        let log = site_log(
            ":1 {\n log access {\n  output file logs/a.log {\n   roll_size 1.5MiB\n   roll_keep 3\n   roll_keep_for 36h\n   roll_uncompressed\n   mode 644\n  }\n  format console\n  level ERROR\n }\n}\n",
        )
        .unwrap();
        let LogOutput::File(f) = &log.output else {
            panic!("{log:?}");
        };
        assert_eq!(f.path, Path::new("/srv/logs/a.log"));
        assert_eq!(
            (f.roll_size, f.roll_keep, f.roll_keep_days),
            (1_572_864, 3, 2)
        );
        assert!(f.roll && !f.roll_compress);
        assert_eq!(f.mode, 0o644);
        assert_eq!(log.logger, "access");
        assert_eq!(
            (log.format, log.level),
            (LogFormat::Console, Some(LogLevel::Error))
        );
    }

    #[test]
    fn loggers_are_numbered_over_the_sites_that_log() {
        let loaded = crate::parse_caddyfile(
            ":1 {\n log\n}\n:2 {\n respond x\n}\n:3 {\n log\n}\n",
            Path::new("/srv/Caddyfile"),
            &|_| None,
        )
        .unwrap();
        let names: Vec<_> = loaded
            .config
            .sites
            .iter()
            .map(|s| s.log.as_ref().map(|l| l.logger.as_str()))
            .collect();
        assert_eq!(names, vec![Some("log0"), None, Some("log1")]);
    }
}
