//! Schedules of `cron` triggers, in the syntax of robfig/cron (what Gojinn
//! read): five fields (`minute hour day-of-month month day-of-week`), six with
//! seconds first, the descriptors `@yearly`, `@annually`, `@monthly`,
//! `@weekly`, `@daily`, `@midnight`, `@hourly`, and `@every <duration>`.
//!
//! Patterns are evaluated in UTC, so that every node of a cluster computes the
//! same tick times whatever its local time zone (robfig/cron used the local
//! zone; a `CRON_TZ=` prefix is refused rather than half-honoured). `croner`
//! parses and steps the patterns; `@every` is handled here, aligned on the Unix
//! epoch for the same reason.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

/// The shortest `@every` interval (robfig/cron's floor too).
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// What a spec names, ready to be stepped.
// `Pattern` is much larger than `Every`; there is one schedule per trigger,
// built at load, so boxing it would save nothing worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronSchedule {
    /// `@every <duration>`: a whole number of seconds, at least [`MIN_EVERY`].
    Every(Duration),
    /// A pattern (descriptors are expanded to their pattern).
    Pattern(croner::Cron),
}

impl CronSchedule {
    /// The first tick strictly after `after`; `None` when there is none (a
    /// pattern that never matches again before the year 5000, or a time past
    /// what `chrono` can represent).
    ///
    /// An `@every` schedule ticks at the multiples of its interval since the
    /// Unix epoch, so that all nodes agree on the tick times.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use gojinn_config::cron_schedule;
    ///
    /// let t = Utc.with_ymd_and_hms(2025, 3, 4, 10, 7, 30).unwrap();
    /// let every = cron_schedule("@every 5m").unwrap();
    /// assert_eq!(every.next_after(t), Some(Utc.with_ymd_and_hms(2025, 3, 4, 10, 10, 0).unwrap()));
    /// let daily = cron_schedule("30 2 * * *").unwrap();
    /// assert_eq!(daily.next_after(t), Some(Utc.with_ymd_and_hms(2025, 3, 5, 2, 30, 0).unwrap()));
    /// ```
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            CronSchedule::Every(interval) => {
                let step = i128::try_from(interval.as_nanos())
                    .ok()
                    .filter(|s| *s > 0)?;
                let now = i128::from(after.timestamp()) * 1_000_000_000
                    + i128::from(after.timestamp_subsec_nanos());
                let next = (now.div_euclid(step) + 1).checked_mul(step)?;
                let secs = i64::try_from(next.div_euclid(1_000_000_000)).ok()?;
                let nanos = u32::try_from(next.rem_euclid(1_000_000_000)).ok()?;
                DateTime::from_timestamp(secs, nanos)
            }
            CronSchedule::Pattern(cron) => cron.find_next_occurrence(&after, false).ok(),
        }
    }
}

/// The descriptors and the patterns they stand for.
const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// What a spec may be, for error messages.
const FORMS: &str = "five fields (`minute hour day-of-month month day-of-week`), six with seconds first, a descriptor such as `@daily`, or `@every 5m`";

/// Parses and checks a cron spec. The message names the spec; the caller adds
/// where it was written.
pub fn cron_schedule(spec: &str) -> Result<CronSchedule, String> {
    let bad = |why: &str| Err(format!("invalid cron spec `{spec}`: {why}"));
    let trimmed = spec.trim();
    if trimmed.is_empty() {
        return bad(&format!("it is empty; write {FORMS}"));
    }
    if let Some(rest) = trimmed.strip_prefix("@every") {
        return every(spec, rest);
    }
    let pattern = if trimmed.starts_with('@') {
        match DESCRIPTORS.iter().find(|(d, _)| *d == trimmed) {
            Some((_, p)) => *p,
            None => {
                let names: Vec<&str> = DESCRIPTORS.iter().map(|(d, _)| *d).collect();
                return bad(&format!(
                    "unknown descriptor{}: use {}, or `@every 5m`",
                    crate::names::hint(trimmed, &[&names]),
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    } else {
        trimmed
    };
    if pattern.starts_with("TZ=") || pattern.starts_with("CRON_TZ=") {
        return bad(
            "time zones are not supported: schedules are in UTC, so write the times in UTC",
        );
    }
    let fields = pattern.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return bad(&format!("it has {fields} field(s); write {FORMS}"));
    }
    // Seconds optional (a sixth, leading field), no year field (robfig/cron
    // has none), `0/10` read as `0-59/10` as robfig/cron reads it.
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .build();
    let cron = parser.parse(pattern).map_err(|e| {
        format!(
            "invalid cron spec `{spec}`: {}",
            which_field(&parser, pattern, &e)
        )
    })?;
    let schedule = CronSchedule::Pattern(cron);
    // A pattern such as `0 0 30 2 *` (February 30) parses but never fires.
    let origin = DateTime::<Utc>::UNIX_EPOCH;
    if schedule.next_after(origin).is_none() {
        return bad("it never matches a date (is the day of the month past the end of the month?)");
    }
    Ok(schedule)
}

/// Names of the fields of a five-field pattern, with what each takes.
const FIELDS: &[(&str, &str)] = &[
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
];

/// Why `pattern` failed to parse, naming the field at fault: croner's own
/// messages (`Number out of bounds`) do not say which one.
fn which_field(parser: &CronParser, pattern: &str, e: &croner::errors::CronError) -> String {
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    let named: Vec<(&str, &str)> = if fields.len() == 6 {
        std::iter::once(("second", "0-59"))
            .chain(FIELDS.iter().copied())
            .collect()
    } else {
        FIELDS.to_vec()
    };
    // The first field that fails alone, every other field `*`.
    for (i, (field, (name, range))) in fields.iter().zip(&named).enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { *field } else { "*" })
            .collect();
        if parser.parse(&alone.join(" ")).is_err() {
            return format!("the {name} field `{field}` is not valid (it takes {range}, lists `a,b`, ranges `a-b` and steps `*/n`)");
        }
    }
    let why = e.to_string();
    let why = why.trim_end_matches('.');
    let mut chars = why.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `@every <duration>`, `rest` being what follows `@every`.
fn every(spec: &str, rest: &str) -> Result<CronSchedule, String> {
    let bad = |why: String| Err(format!("invalid cron spec `{spec}`: {why}"));
    let Some(text) = rest.strip_prefix(char::is_whitespace).map(str::trim) else {
        return bad("`@every` needs a duration after a space, e.g. `@every 5m`".to_owned());
    };
    if text.is_empty() {
        return bad("`@every` needs a duration, e.g. `@every 5m`".to_owned());
    }
    if text.contains(char::is_whitespace) {
        return bad("`@every` takes one duration, e.g. `@every 1h30m`".to_owned());
    }
    let ns = crate::units::parse_duration_ns(text)
        .map_err(|e| format!("invalid cron spec `{spec}`: {e}"))?;
    if ns < MIN_EVERY.as_nanos() {
        return bad(format!(
            "the interval `{text}` is shorter than 1s, the shortest `@every`"
        ));
    }
    // Ticks are whole seconds, as in robfig/cron (which silently drops the
    // fraction; a fraction here is refused rather than changed).
    if ns % 1_000_000_000 != 0 {
        return bad(format!(
            "the interval `{text}` is not a whole number of seconds"
        ));
    }
    let secs = u64::try_from(ns / 1_000_000_000)
        .map_err(|_| format!("invalid cron spec `{spec}`: the interval `{text}` is too large"))?;
    Ok(CronSchedule::Every(Duration::from_secs(secs)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(spec: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        cron_schedule(spec).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn five_fields_start_on_the_minute() {
        let t = at(2025, 1, 1, 12, 0, 0);
        assert_eq!(next("*/15 * * * *", t), at(2025, 1, 1, 12, 15, 0));
        assert_eq!(next("0 9 * * 1-5", t), at(2025, 1, 2, 9, 0, 0)); // Thursday
        assert_eq!(next("0 0 1 */3 *", t), at(2025, 4, 1, 0, 0, 0));
        assert_eq!(next("0 12 * * SUN", t), at(2025, 1, 5, 12, 0, 0));
        assert_eq!(next("0 0 1 JAN *", t), at(2026, 1, 1, 0, 0, 0));
        // `5/20` is robfig/cron's `5-59/20`.
        assert_eq!(next("5/20 * * * *", t), at(2025, 1, 1, 12, 5, 0));
    }

    #[test]
    fn six_fields_have_seconds_first() {
        let t = at(2025, 1, 1, 12, 0, 0);
        assert_eq!(next("*/10 * * * * *", t), at(2025, 1, 1, 12, 0, 10));
        assert_eq!(next("30 0 * * * *", t), at(2025, 1, 1, 12, 0, 30));
        // Strictly after: a tick at `after` itself is not the next one.
        assert_eq!(next("0 * * * * *", t), at(2025, 1, 1, 12, 1, 0));
        let half = t + chrono::Duration::milliseconds(500);
        assert_eq!(next("* * * * * *", half), at(2025, 1, 1, 12, 0, 1));
    }

    #[test]
    fn descriptors() {
        let t = at(2025, 5, 14, 8, 30, 0); // a Wednesday
        assert_eq!(next("@yearly", t), at(2026, 1, 1, 0, 0, 0));
        assert_eq!(next("@annually", t), at(2026, 1, 1, 0, 0, 0));
        assert_eq!(next("@monthly", t), at(2025, 6, 1, 0, 0, 0));
        assert_eq!(next("@weekly", t), at(2025, 5, 18, 0, 0, 0));
        assert_eq!(next("@daily", t), at(2025, 5, 15, 0, 0, 0));
        assert_eq!(next("@midnight", t), at(2025, 5, 15, 0, 0, 0));
        assert_eq!(next("@hourly", t), at(2025, 5, 14, 9, 0, 0));
    }

    #[test]
    fn every_is_aligned_on_the_epoch() {
        assert_eq!(
            cron_schedule("@every 1h30m").unwrap(),
            CronSchedule::Every(Duration::from_secs(5_400))
        );
        let t = at(2025, 1, 1, 0, 0, 0);
        // 2025-01-01 is a multiple of 5 minutes since the epoch: not itself.
        assert_eq!(next("@every 5m", t), at(2025, 1, 1, 0, 5, 0));
        assert_eq!(
            next("@every 5m", at(2025, 1, 1, 0, 4, 59)),
            at(2025, 1, 1, 0, 5, 0)
        );
        assert_eq!(next("@every 1s", t), at(2025, 1, 1, 0, 0, 1));
        // 7s does not divide a day: the ticks follow the epoch, not midnight.
        let secs = t.timestamp();
        let want = (secs / 7 + 1) * 7;
        assert_eq!(next("@every 7s", t).timestamp(), want);
        // Two nodes asking at different instants of one period agree.
        let a = next("@every 1h", at(2025, 1, 1, 10, 0, 1));
        let b = next("@every 1h", at(2025, 1, 1, 10, 59, 59));
        assert_eq!((a, b), (at(2025, 1, 1, 11, 0, 0), at(2025, 1, 1, 11, 0, 0)));
        // Before the epoch too.
        assert_eq!(
            next("@every 1m", at(1969, 12, 31, 23, 59, 30)),
            at(1970, 1, 1, 0, 0, 0)
        );
    }

    /// croner's extensions (`L`, `W`, `#`, `?`) and degenerate steps go
    /// through parse and stepping without a panic, whatever the answer.
    #[test]
    fn odd_specs_never_panic() {
        let t = at(2025, 2, 27, 23, 59, 59);
        for spec in [
            "* * L * *",
            "0 0 15W * *",
            "0 0 * * 5#3",
            "0 0 ? * MON",
            "0 0 * * 5L",
            "*/0 * * * *",
            "0/0 * * * *",
            "/5 * * * *",
            "1-60/2 * * * *",
            "59-1 * * * *",
            "0 0 29 2 *",
            "0 0 31 4 *",
            "@every 0s",
            "@every 999999999999h",
            "* * * * * é",
            "\u{0} * * * *",
            "@",
            "@every\t5m",
            "0 0 31 2 * *",
        ] {
            if let Ok(s) = cron_schedule(spec) {
                let _ = s.next_after(t);
            }
        }
    }

    #[test]
    fn bad_specs_name_themselves() {
        let err = |spec: &str| cron_schedule(spec).unwrap_err();
        assert_eq!(
            err("* * * *"),
            "invalid cron spec `* * * *`: it has 4 field(s); write five fields (`minute hour day-of-month month day-of-week`), six with seconds first, a descriptor such as `@daily`, or `@every 5m`"
        );
        assert!(err("0 0 * * * * 2030").contains("it has 7 field(s)"));
        assert!(err("").starts_with("invalid cron spec ``: it is empty"));
        assert_eq!(
            err("61 * * * *"),
            "invalid cron spec `61 * * * *`: the minute field `61` is not valid (it takes 0-59, lists `a,b`, ranges `a-b` and steps `*/n`)"
        );
        assert!(err("0 0 25 * * *").contains("the hour field `25`"));
        assert!(err("* * 0 * *").contains("the day-of-month field `0`"));
        assert!(err("* * * 13 *").contains("the month field `13`"));
        assert!(err("* * * * MONDAY").starts_with("invalid cron spec `* * * * MONDAY`: "));
        assert_eq!(
            err("@dayly"),
            "invalid cron spec `@dayly`: unknown descriptor (did you mean `@daily`?): use `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, or `@every 5m`"
        );
        assert_eq!(
            err("@every 500ms"),
            "invalid cron spec `@every 500ms`: the interval `500ms` is shorter than 1s, the shortest `@every`"
        );
        assert_eq!(
            err("@every 1500ms"),
            "invalid cron spec `@every 1500ms`: the interval `1500ms` is not a whole number of seconds"
        );
        assert_eq!(
            err("@every 5"),
            "invalid cron spec `@every 5`: invalid duration `5`: missing a unit (use ms, s, m or h, e.g. `30s`)"
        );
        assert!(err("@every").contains("needs a duration"));
        assert!(err("@everyday").contains("needs a duration after a space"));
        assert!(err("@every 1m 2m").contains("takes one duration"));
        assert!(err("CRON_TZ=Europe/Paris 0 9 * * *").contains("time zones are not supported"));
        assert_eq!(
            err("0 0 30 2 *"),
            "invalid cron spec `0 0 30 2 *`: it never matches a date (is the day of the month past the end of the month?)"
        );
    }
}
