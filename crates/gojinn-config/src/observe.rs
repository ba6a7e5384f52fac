//! Options about seeing inside the server: the `log` global option, and the
//! redacted form of a config that the admin listener shows.

use crate::caddyfile::unexpected;
use crate::directives::{one_arg, split};
use crate::error::{PResult, Pos, PosError};
use crate::model::{Config, Handler, LogConfig, LogFormat, LogLevel, Route};
use crate::names::hint;
use crate::tree::Node;

/// What replaces a secret in [`Config::redacted`].
pub const REDACTED: &str = "[redacted]";

const LOG_SUBOPTIONS: &[&str] = &["format", "level"];

/// `log { format json|console; level error|warn|info|debug }`.
pub(crate) fn log(node: &Node) -> PResult<LogConfig> {
    let (name, args) = split(node)?;
    if let Some(extra) = args.first() {
        return Err(unexpected(
            extra,
            "gojinn has one server log: `log` takes no name, only a block such as `log { format console }`",
        ));
    }
    let Some(block) = &node.block else {
        return Err(PosError::new(
            name.pos,
            "`log` needs a block, e.g. `log { format console; level debug }`",
        ));
    };
    let mut out = LogConfig::default();
    let mut seen: Vec<(&str, Pos)> = Vec::new();
    for sub in &block.nodes {
        let (key, _) = split(sub)?;
        let k = key.text.as_str();
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == k) {
            return Err(PosError::new(
                key.pos,
                format!(
                    "duplicate `{k}` in `log` (first set at line {}, column {})",
                    first.line, first.col
                ),
            ));
        }
        match k {
            "format" => {
                let v = one_arg(sub, "format console")?;
                out.format = match v.text.as_str() {
                    "json" => LogFormat::Json,
                    "console" => LogFormat::Console,
                    other => {
                        return Err(PosError::new(
                            v.pos,
                            format!("invalid log format `{other}`: use `json` or `console`"),
                        ))
                    }
                };
            }
            "level" => {
                let v = one_arg(sub, "level debug")?;
                // Caddy writes levels in capitals (`DEBUG`); accept both.
                out.level = Some(match v.text.to_ascii_lowercase().as_str() {
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
                });
            }
            _ => {
                return Err(PosError::new(
                    key.pos,
                    format!("unknown `log` option `{k}`{}", hint(k, &[LOG_SUBOPTIONS])),
                ))
            }
        }
        seen.push((k, key.pos));
    }
    Ok(out)
}

impl Config {
    /// This config with its secrets (`env` values, `debug_secret`) replaced by
    /// [`REDACTED`], for showing to an operator.
    pub fn redacted(&self) -> Config {
        fn walk(routes: &mut [Route]) {
            for r in routes {
                match &mut r.handle {
                    Handler::Gojinn(f) => {
                        for e in &mut f.env {
                            e.value = REDACTED.to_owned();
                        }
                        if let Some(s) = &mut f.debug_secret {
                            *s = REDACTED.to_owned();
                        }
                    }
                    Handler::Subroute { routes, .. } => walk(routes),
                    _ => {}
                }
            }
        }
        let mut out = self.clone();
        for s in &mut out.sites {
            walk(&mut s.routes);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn redacted_hides_env_values_and_debug_secrets_only() {
        let src = "{\n  log {\n    format console\n    level DEBUG\n  }\n}\n:8080 {\n  handle /a {\n    gojinn ./a.wasm {\n      env TOKEN hunter2\n      debug_secret s3cret\n    }\n  }\n}\n";
        let loaded = crate::parse_caddyfile(src, Path::new("/srv/Caddyfile"), &|_| None)
            .expect("valid config");
        assert_eq!(loaded.config.log.format, crate::LogFormat::Console);
        assert_eq!(loaded.config.log.level, Some(crate::LogLevel::Debug));
        let shown = serde_json::to_string(&loaded.config.redacted()).expect("json");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("TOKEN"), "{shown}");
        let f = loaded.config.functions()[0];
        assert_eq!(f.env[0].value, "hunter2", "the original is untouched");
    }
}
