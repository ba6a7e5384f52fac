//! JSON text written by hand, for log lines: string escaping and RFC 3339
//! timestamps, cheap enough to run once per request (see `gojinn`'s
//! `logging.rs` for the measurements that led here).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes `s` as a JSON string, quotes included.
pub fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// A `fmt::Write` that escapes what passes through it for a JSON string body.
pub struct Escaped<W>(pub W);

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
pub fn write_timestamp(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
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
pub(crate) fn date_time_text(secs: u64) -> [u8; 19] {
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
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
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

/// Days from 1970-01-01 to the given civil date (the inverse of
/// [`civil_from_days`]); `None` before 1970.
pub(crate) fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let year_of_era = y % 400;
    let m = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * m + 2) / 5 + day.checked_sub(1)?;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
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

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for day in (0..200_000_u64).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), Some(day));
        }
        assert_eq!(days_from_civil(1969, 12, 31), None);
    }

    #[test]
    fn strings_are_escaped_for_json() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é\t").unwrap();
        assert_eq!(s, r#""a\"b\\c\nd\u0001é\t""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é\t");
    }
}
