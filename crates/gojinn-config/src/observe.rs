//! Options about seeing inside the server: the `tracing` global option, and the
//! redacted form of a config that the admin listener shows. (`log` is in `logs`.)

use crate::caddyfile::unexpected;
use crate::directives::{each_once, one_arg, split};
use crate::error::{PResult, PosError};
use crate::lexer::Token;
use crate::model::{Config, OtlpProtocol, TraceSampler, TracingConfig};
use crate::names::hint;
use crate::tree::Node;

/// What replaces a secret in [`Config::redacted`].
pub const REDACTED: &str = "[redacted]";

const TRACING_SUBOPTIONS: &[&str] = &["endpoint", "protocol", "sampler"];

/// `tracing { endpoint URL; protocol grpc|http/protobuf; sampler NAME [RATIO] }`.
pub(crate) fn tracing(node: &Node) -> PResult<TracingConfig> {
    let (_, args) = split(node)?;
    if let Some(extra) = args.first() {
        return Err(unexpected(
            extra,
            "`tracing` takes its options in a block, e.g. `tracing { endpoint http://localhost:4318 }`",
        ));
    }
    let mut out = TracingConfig::default();
    let Some(block) = &node.block else {
        // A bare `tracing` turns traces on with the OTEL_* environment's settings.
        return Ok(out);
    };
    for sub in each_once(block, "tracing")? {
        let (key, sub_args) = split(sub)?;
        let k = key.text.as_str();
        match k {
            "endpoint" => {
                let v = one_arg(sub, "endpoint http://localhost:4318")?;
                endpoint(&v.text).map_err(|e| PosError::new(v.pos, e))?;
                out.endpoint = Some(v.text.clone());
            }
            "protocol" => {
                let v = one_arg(sub, "protocol grpc")?;
                out.protocol = Some(match v.text.as_str() {
                    "grpc" => OtlpProtocol::Grpc,
                    "http/protobuf" => OtlpProtocol::HttpProtobuf,
                    other => {
                        return Err(PosError::new(
                            v.pos,
                            format!(
                                "invalid tracing protocol `{other}`: use `http/protobuf` or `grpc`"
                            ),
                        ))
                    }
                });
            }
            "sampler" => out.sampler = sampler(key, sub_args)?,
            _ => {
                return Err(PosError::new(
                    key.pos,
                    format!(
                        "unknown `tracing` option `{k}`{}",
                        hint(k, &[TRACING_SUBOPTIONS])
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// An OTLP endpoint: an `http://` or `https://` URL.
pub(crate) fn endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!(
            "invalid tracing endpoint `{url}`: use an `http://` or `https://` URL, e.g. `http://localhost:4318`"
        )),
    }
}

/// A sampling ratio: a number from 0 to 1.
pub(crate) fn ratio(r: f64, text: &str) -> Result<(), String> {
    if (0.0..=1.0).contains(&r) {
        Ok(())
    } else {
        Err(format!(
            "invalid sampling ratio `{text}`: use a number from 0 to 1, e.g. `0.25`"
        ))
    }
}

fn sampler(key: &Token, args: &[Token]) -> PResult<TraceSampler> {
    const NAMES: &str = "`always_on`, `always_off`, `parentbased_always_on`, `traceidratio R` or `parentbased_traceidratio R`";
    let Some((kind, rest)) = args.split_first() else {
        return Err(PosError::new(
            key.pos,
            format!("`sampler` needs a name: {NAMES}"),
        ));
    };
    let with_ratio = matches!(
        kind.text.as_str(),
        "traceidratio" | "parentbased_traceidratio"
    );
    let r = match (with_ratio, rest) {
        (false, []) => 0.0,
        (false, [extra, ..]) => {
            return Err(unexpected(
                extra,
                &format!("sampler `{}` takes no ratio", kind.text),
            ))
        }
        (true, [v]) => {
            let r: f64 = v.text.parse().map_err(|_| {
                PosError::new(v.pos, format!("invalid sampling ratio `{}`", v.text))
            })?;
            ratio(r, &v.text).map_err(|e| PosError::new(v.pos, e))?;
            r
        }
        (true, []) => {
            return Err(PosError::new(
                kind.pos,
                format!(
                    "sampler `{}` needs a ratio, e.g. `{} 0.25`",
                    kind.text, kind.text
                ),
            ))
        }
        (true, [_, extra, ..]) => return Err(unexpected(extra, "the sampler takes one ratio")),
    };
    Ok(match kind.text.as_str() {
        "always_on" => TraceSampler::AlwaysOn,
        "always_off" => TraceSampler::AlwaysOff,
        "parentbased_always_on" => TraceSampler::ParentbasedAlwaysOn,
        "traceidratio" => TraceSampler::Traceidratio(r),
        "parentbased_traceidratio" => TraceSampler::ParentbasedTraceidratio(r),
        other => {
            return Err(PosError::new(
                kind.pos,
                format!("unknown sampler `{other}`: use {NAMES}"),
            ))
        }
    })
}

impl Config {
    /// This config with its secrets (`env` values, `debug_secret`, EAB MAC
    /// keys, the credentials of `storage` and `queue` URLs) replaced by
    /// [`REDACTED`], for showing to an operator.
    pub fn redacted(&self) -> Config {
        let mut out = self.clone();
        if let Some(eab) = &mut out.auto_https.acme_eab {
            eab.mac_key = REDACTED.to_owned();
        }
        for site in &mut out.sites {
            if let Some(crate::Tls::Managed(crate::Issuer::Acme(a))) = &mut site.tls {
                if let Some(eab) = &mut a.eab {
                    eab.mac_key = REDACTED.to_owned();
                }
            }
        }
        for url in [&mut out.storage_url, &mut out.queue]
            .into_iter()
            .chain(out.sites.iter_mut().map(|s| &mut s.queue))
            .flatten()
        {
            redact_userinfo(url);
        }
        out.for_each_function_mut(|f| {
            for e in &mut f.env {
                e.value = REDACTED.to_owned();
            }
            if let Some(s) = &mut f.debug_secret {
                *s = REDACTED.to_owned();
            }
        });
        out
    }
}

/// `url` with its userinfo (`user:password@`), if any, replaced by [`REDACTED`].
pub fn redact_url(url: &str) -> String {
    let mut url = url.to_owned();
    redact_userinfo(&mut url);
    url
}

/// Replaces the userinfo (`user:password@`) of `url`, if any, by [`REDACTED`].
fn redact_userinfo(url: &mut String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return;
    };
    // The userinfo ends at the last `@` of the authority, which ends at the
    // first `/`, `?` or `#` (a password may hold `@` or `/` only escaped).
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..authority_end].rfind('@') {
        *url = format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn redacted_hides_store_and_queue_credentials() {
        let src = "{\n  storage redis://u:pw1@cache:6379\n  queue postgres://app:pw2@db/jobs\n}\n:8080 {\n  queue rediss://:pw3@q.internal:6380/2\n  respond ok\n}\n:8081 {\n  queue redis://q.internal/0?user=a@b\n  respond ok\n}\n";
        let loaded = crate::parse_caddyfile(src, Path::new("/srv/Caddyfile"), &|_| None)
            .expect("valid config");
        let r = loaded.config.redacted();
        assert_eq!(
            r.storage_url.as_deref(),
            Some("redis://[redacted]@cache:6379")
        );
        assert_eq!(r.queue.as_deref(), Some("postgres://[redacted]@db/jobs"));
        assert_eq!(
            r.sites[0].queue.as_deref(),
            Some("rediss://[redacted]@q.internal:6380/2")
        );
        // No userinfo: an `@` in the query is left alone.
        assert_eq!(
            r.sites[1].queue.as_deref(),
            Some("redis://q.internal/0?user=a@b")
        );
        assert_eq!(
            loaded.config.queue.as_deref(),
            Some("postgres://app:pw2@db/jobs"),
            "the original is untouched"
        );
    }

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
