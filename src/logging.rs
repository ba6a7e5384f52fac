//! Server logging: `tracing` events as JSON lines (or console text) on stderr.
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
//! - [`Sink`] hands lines to one writer thread through a shared buffer. A request
//!   thread wakes the writer only when it is idle, and the writer, after each write,
//!   waits [`LINGER`] before taking the next batch, so a busy second costs at most
//!   about a thousand wake-ups and write calls instead of one per line. A quiet
//!   line is written at once. Nothing is dropped: when [`MAX_PENDING_BYTES`] are
//!   queued, request threads wait for the writer (memory stays bounded).

use std::fmt::{self, Write as _};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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

/// How long the writer thread waits after a write before taking the next batch.
const LINGER: Duration = Duration::from_millis(1);

/// Queued log bytes at which request threads wait for the writer.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// Starts logging on stderr, in the format and at the level of the `log` global
/// option (`GOJINN_LOG`, a `tracing` filter, overrides the level). The returned
/// guard writes out what is queued when dropped, so keep it until exit.
pub(crate) fn init(config: &gojinn_config::Config) -> SinkGuard {
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
    let (sink, guard) = Sink::start(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    match config.log.format {
        LogFormat::Json => builder.event_format(JsonLines).init(),
        LogFormat::Console => builder.with_ansi(false).init(),
    }
    guard
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

/// Writes `s` as a JSON string, quotes included.
fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// A `fmt::Write` that escapes what passes through it for a JSON string body.
struct Escaped<W>(W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            // Every byte matched above is ASCII, so these slices end on characters.
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

thread_local! {
    /// The unix second last formatted on this thread and its text up to the seconds.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// Writes `now` as RFC 3339 UTC with microseconds: `2026-11-24T23:41:18.113033Z`.
fn write_timestamp(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let text = SECOND.with(|cached| {
        let (at, text) = cached.get();
        if at == secs {
            return text;
        }
        let text = date_time_text(secs);
        cached.set((secs, text));
        text
    });
    // `date_time_text` writes only ASCII digits and separators.
    w.write_str(std::str::from_utf8(&text).unwrap_or("1970-01-01T00:00:00"))?;
    write!(w, ".{:06}Z", since.subsec_micros())
}

/// `YYYY-MM-DDTHH:MM:SS` for a unix time in seconds (proleptic Gregorian, UTC).
fn date_time_text(secs: u64) -> [u8; 19] {
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = [0u8; 19];
    let mut put = |at: usize, value: u64, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    out[4] = b'-';
    out[7] = b'-';
    out[10] = b'T';
    out[13] = b':';
    out[16] = b':';
    out
}

/// Year, month (1–12) and day (1–31) of the day `days` after 1970-01-01.
///
/// Counts in 400-year eras starting on 0000-03-01, so that the leap day is the last
/// day of its year and each era has the same 146 097 days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Where log lines go: a buffer shared with one writer thread (see the module docs).
#[derive(Clone)]
pub(crate) struct Sink {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when lines arrive for an idle writer, or at close.
    work: Condvar,
    /// Signalled when the writer takes a batch, for threads waiting on a full buffer.
    room: Condvar,
}

struct State {
    pending: Vec<u8>,
    writer_idle: bool,
    closed: bool,
}

/// Stops the writer thread once everything queued is written.
pub(crate) struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the buffer whole; keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink {
    /// Starts the writer thread writing to `out`.
    fn start(out: impl std::io::Write + Send + 'static) -> (Sink, SinkGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                writer_idle: false,
                closed: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
        });
        let writer = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gojinn-log".into())
            .spawn(move || write_loop(&writer, out));
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Without a thread, lines would queue forever: write them inline.
                eprintln!("cannot start the logging thread ({e}); logging synchronously");
                shared.lock().closed = true;
                None
            }
        };
        (
            Sink {
                shared: shared.clone(),
            },
            SinkGuard { shared, thread },
        )
    }
}

fn write_loop(shared: &Shared, mut out: impl std::io::Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closed {
                state.writer_idle = true;
                state = shared
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.pending.is_empty() {
                return;
            }
            std::mem::swap(&mut batch, &mut state.pending);
            shared.room.notify_all();
        }
        // A failed write (stderr closed) loses these lines; there is nowhere else
        // to report that.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        std::thread::sleep(LINGER);
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.closed {
            drop(state);
            return std::io::stderr().write(line);
        }
        while !state.pending.is_empty() && state.pending.len() + line.len() > MAX_PENDING_BYTES {
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.pending.extend_from_slice(line);
        if state.writer_idle {
            state.writer_idle = false;
            self.shared.work.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_days() {
        let text = |secs| String::from_utf8(date_time_text(secs).to_vec()).unwrap();
        assert_eq!(text(0), "1970-01-01T00:00:00");
        // Leap days and century rules: 2000 is a leap year, 2100 is not.
        assert_eq!(text(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(text(4_107_542_399), "2100-02-28T23:59:59");
        assert_eq!(text(4_107_542_400), "2100-03-01T00:00:00");
        assert_eq!(text(1_795_563_678), "2026-11-24T23:41:18");
    }

    #[test]
    fn each_day_of_four_centuries_follows_the_one_before() {
        // An independent calendar: step one day at a time by month lengths.
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for day in 0..146_097_u64 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

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

    #[test]
    fn strings_are_escaped_for_json() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é\t").unwrap();
        assert_eq!(s, r#""a\"b\\c\nd\u0001é\t""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é\t");
    }

    #[test]
    fn lines_from_many_threads_all_arrive_in_order() {
        let out = Capture::default();
        let (sink, guard) = Sink::start(out.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        std::io::Write::write_all(&mut sink, format!("{t} {i}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                i.parse::<usize>().unwrap(),
                next[t],
                "thread {t} out of order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
    }
}
