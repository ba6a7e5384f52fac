//! Server logging: `tracing` events as JSON lines (or console text), on stderr
//! or wherever the `log` global option's `output` says (through `gojinn-log`).
//!
//! Every function request logs at least one line (the access line, and a line per
//! line of guest stderr), so the cost of a line is part of the cost of a request.
//! Two pieces keep it small; profiled on the 2-core bench machine under load, they
//! cut logging from 18.6 % to about 7 % of the server's CPU (see bench/RESULTS.md):
//!
//! - [`JsonLines`] writes the JSON itself: fields are escaped straight into the
//!   line buffer and the timestamp's date and time of day are formatted once per
//!   second per thread. The line has the shape `tracing-subscriber`'s JSON format
//!   gives (`timestamp`, `level`, `fields`, `target`), which was profiled at about
//!   5 µs a line here, mostly in its serde adapter and date formatting.
//! - `gojinn_log::Sink` hands lines to one writer thread through a shared buffer,
//!   which wakes about a thousand times a busy second instead of once per line.

use gojinn_log::{write_json_str, write_timestamp, Escaped, LineWriter, Outputs};
use std::fmt::{self, Write as _};
use std::time::SystemTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The engine's log targets, kept at `warn` unless a filter asks for them.
/// wasmtime-wasi wraps every WASI call in an info-level span; enabled, those spans
/// cost about a fifth of a hello request's throughput (`GOJINN_LOG=info` before this
/// rule: 28–30k req/s against 32–38k with the engine quiet), so they are only on at
/// `debug` or when named.
const QUIET_ENGINE: &str = "wasmtime_wasi=warn,wasmtime=warn,cranelift_codegen=warn";

/// Starts logging to the `log` global option's output (stderr by default), in
/// its format and at its level (`GOJINN_LOG`, a `tracing` filter, overrides the
/// level). The output is opened through `outputs`; the returned guard closes
/// them all (writing out what is queued) when dropped, so keep it until exit.
/// Fails when the output file cannot be opened.
pub(crate) fn init(
    config: &gojinn_config::Config,
    outputs: &Outputs,
) -> Result<CloseOutputs, String> {
    use gojinn_config::{LogFormat, LogLevel};
    use tracing_subscriber::EnvFilter;
    let default_filter = match config.log.level {
        Some(LogLevel::Debug) => "debug".to_owned(),
        Some(level) => format!("{},{QUIET_ENGINE}", level.as_str()),
        None if config.debug => "debug".to_owned(),
        None => format!("info,{QUIET_ENGINE}"),
    };
    let filter = match std::env::var("GOJINN_LOG") {
        Ok(given) if !given.trim().is_empty() => EnvFilter::try_new(env_filter_text(&given))
            .unwrap_or_else(|e| {
                eprintln!(
                    "warning: GOJINN_LOG `{given}` is not a valid filter ({e}); \
                     using the config's level"
                );
                EnvFilter::new(&default_filter)
            }),
        _ => EnvFilter::new(default_filter),
    };
    let (writer, _) = outputs.open(&config.log.output)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Lines(writer));
    match config.log.format {
        LogFormat::Json => builder.event_format(JsonLines).init(),
        LogFormat::Console => builder.with_ansi(false).init(),
    }
    Ok(CloseOutputs(outputs.clone()))
}

/// Closes the process's log outputs when dropped (see [`init`]).
pub(crate) struct CloseOutputs(Outputs);

impl Drop for CloseOutputs {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A [`LineWriter`] as `tracing-subscriber` wants its writers: each event's
/// text arrives in one `write` call, a whole line.
#[derive(Clone)]
struct Lines(LineWriter);

impl std::io::Write for Lines {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

/// `GOJINN_LOG` as given, plus [`QUIET_ENGINE`] unless the filter names an engine
/// target or asks for `debug` or `trace` detail somewhere.
fn env_filter_text(given: &str) -> String {
    let lower = given.to_ascii_lowercase();
    if ["wasmtime", "cranelift", "debug", "trace"]
        .iter()
        .any(|w| lower.contains(w))
    {
        given.to_owned()
    } else {
        format!("{given},{QUIET_ENGINE}")
    }
}

/// One JSON object per event:
/// `{"timestamp":"…Z","level":"INFO","fields":{"message":"…",…},"target":"…"}`.
///
/// Fields recorded as text (`%value`, `?value`, the message) become JSON strings,
/// integers and booleans stay JSON numbers and booleans. Spans are not written:
/// the server opens none of its own.
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut w, SystemTime::now())?;
        w.write_str("\",\"level\":\"")?;
        w.write_str(meta.level().as_str())?;
        w.write_str("\",\"fields\":{")?;
        let mut fields = JsonFields {
            w: &mut w,
            first: true,
            log_target: None,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        // Events forwarded from the `log` crate carry their real target as a field.
        let target = fields.log_target.take();
        w.write_str("},\"target\":")?;
        write_json_str(&mut w, target.as_deref().unwrap_or(meta.target()))?;
        w.write_str("}\n")
    }
}

/// Writes an event's fields as JSON members.
struct JsonFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    log_target: Option<String>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    /// Writes `"name":` (with the separating comma), then `value`.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { "," };
        self.first = false;
        self.result = self
            .w
            .write_str(sep)
            .and_then(|()| write_json_str(self.w, name))
            .and_then(|()| self.w.write_char(':'))
            .and_then(|()| value(self.w));
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.log_target = Some(value.to_owned());
        }
        self.member(field, |w| write_json_str(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        if value.is_finite() {
            self.member(field, |w| write!(w, "{value}"));
        } else {
            self.member(field, |w| w.write_str("null"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(&mut *w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Formats one event of every field kind with `format`, as a JSON value.
    fn formatted<F>(format: F) -> serde_json::Value
    where
        F: FnOnce(
            tracing_subscriber::fmt::SubscriberBuilder<
                tracing_subscriber::fmt::format::DefaultFields,
                tracing_subscriber::fmt::format::Format,
                tracing_subscriber::filter::LevelFilter,
                Capture,
            >,
        ) -> Box<dyn Subscriber + Send + Sync>,
    {
        let out = Capture::default();
        let builder = tracing_subscriber::fmt().with_writer(out.clone());
        tracing::subscriber::with_default(format(builder), || {
            let route = "/rust/*";
            let list = vec![1, 2];
            let quoted = "a \"quoted\"\nline";
            tracing::warn!(
                target: "gojinn::test",
                route = %route,
                status = 200_u16,
                delta = -3_i64,
                ok = true,
                ratio = 0.5_f64,
                text = quoted,
                debugged = ?list,
                "request {} é",
                7
            );
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    #[test]
    fn lines_have_the_shape_of_tracing_subscriber_json() {
        let mut ours = formatted(|b| Box::new(b.event_format(JsonLines).finish()));
        let mut theirs = formatted(|b| Box::new(b.json().with_current_span(false).finish()));
        let stamp = ours["timestamp"].take();
        theirs["timestamp"].take();
        assert_eq!(ours, theirs);
        assert_eq!(ours["fields"]["message"], "request 7 é");
        // 2026-11-24T23:41:18.113033Z
        let stamp = stamp.as_str().unwrap().as_bytes();
        assert_eq!(stamp.len(), 27, "{stamp:?}");
        assert_eq!((stamp[10], stamp[19], stamp[26]), (b'T', b'.', b'Z'));
    }

    #[test]
    fn gojinn_log_keeps_the_engine_quiet_unless_asked() {
        assert_eq!(env_filter_text("info"), format!("info,{QUIET_ENGINE}"));
        assert_eq!(
            env_filter_text("warn,gojinn::access=info"),
            format!("warn,gojinn::access=info,{QUIET_ENGINE}")
        );
        for asked in ["debug", "info,wasmtime_wasi=info", "gojinn=TRACE"] {
            assert_eq!(env_filter_text(asked), asked);
        }
        // The result must still parse as a filter.
        assert!(tracing_subscriber::EnvFilter::try_new(env_filter_text("info")).is_ok());
    }
}
