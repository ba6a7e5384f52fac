//! Sizes (`128MB`, `64KiB`, `1.5GB`) and Go-style durations (`500ms`, `1m30s`).
//!
//! Size units are case-insensitive: `B`; decimal `K`/`KB`, `M`/`MB`, `G`/`GB`,
//! `T`/`TB` (powers of 1000, as Caddy's); binary `Ki`/`KiB`, `Mi`/`MiB`,
//! `Gi`/`GiB`, `Ti`/`TiB` (powers of 1024). No unit means bytes. A fraction is
//! accepted when it comes out as whole bytes (`1.5KiB` = 1536).
//!
//! Durations are Go's `time.ParseDuration` syntax plus Caddy's `d` (days): one or
//! more `<number><unit>` parts with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`,
//! `d`; `0` alone is zero. Gojinn keeps them in whole milliseconds.

const SIZE_UNITS: &[(&str, u128)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1_000),
    ("kb", 1_000),
    ("m", 1_000_000),
    ("mb", 1_000_000),
    ("g", 1_000_000_000),
    ("gb", 1_000_000_000),
    ("t", 1_000_000_000_000),
    ("tb", 1_000_000_000_000),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
];

const NANOS_PER_MS: u128 = 1_000_000;

const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", NANOS_PER_MS),
    ("s", 1_000 * NANOS_PER_MS),
    ("m", 60_000 * NANOS_PER_MS),
    ("h", 3_600_000 * NANOS_PER_MS),
    ("d", 86_400_000 * NANOS_PER_MS),
];

/// More fraction digits than this cannot change a whole number of bytes or
/// nanoseconds (the largest unit is below 10^15), and the bound keeps the
/// arithmetic far from overflowing.
const MAX_FRACTION_DIGITS: usize = 18;

/// A number split into its integer and fraction digits.
struct Decimal<'a> {
    int: &'a str,
    frac: &'a str,
}

/// Splits the leading `digits[.digits]` of `s`; `None` when `s` has no leading
/// digit.
fn leading_decimal(s: &str) -> Option<(Decimal<'_>, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(
            after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len()),
        ),
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((Decimal { int, frac }, rest))
}

/// `number × unit`, or `None` on overflow; the second value tells whether the
/// product had a fractional part that was dropped.
fn scale(num: &Decimal<'_>, unit: u128) -> Option<(u128, bool)> {
    let mut int: u128 = 0;
    for d in num.int.bytes() {
        int = int.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    let whole = int.checked_mul(unit)?;
    let frac_digits = num.frac.get(..MAX_FRACTION_DIGITS).unwrap_or(num.frac);
    let mut frac: u128 = 0;
    let mut denom: u128 = 1;
    for d in frac_digits.bytes() {
        frac = frac * 10 + u128::from(d - b'0');
        denom *= 10;
    }
    let frac_scaled = frac.checked_mul(unit)?;
    let ignored = num.frac.get(MAX_FRACTION_DIGITS..).unwrap_or("");
    let dropped = frac_scaled % denom != 0 || ignored.bytes().any(|d| d != b'0');
    Some((whole.checked_add(frac_scaled / denom)?, dropped))
}

/// Parses a size into bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("invalid size: the value is empty; expected a number with an optional unit, e.g. `128MB`".to_owned());
    }
    let example = "expected a number with an optional unit, e.g. `128MB`";
    let Some((num, unit)) = leading_decimal(text) else {
        return Err(format!("invalid size `{text}`: {example}"));
    };
    let lower = unit.to_ascii_lowercase();
    let Some(&(_, mult)) = SIZE_UNITS.iter().find(|(u, _)| *u == lower) else {
        return Err(format!(
            "invalid size `{text}`: unknown unit `{unit}` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
        ));
    };
    match scale(&num, mult) {
        Some((bytes, false)) => {
            u64::try_from(bytes).map_err(|_| format!("invalid size `{text}`: it is too large"))
        }
        Some((_, true)) => Err(format!(
            "invalid size `{text}`: it is not a whole number of bytes"
        )),
        None => Err(format!("invalid size `{text}`: it is too large")),
    }
}

/// Parses a Go-style duration into nanoseconds.
pub(crate) fn parse_duration_ns(text: &str) -> Result<u128, String> {
    if text == "0" {
        return Ok(0);
    }
    if text.starts_with('-') {
        return Err(format!(
            "invalid duration `{text}`: it must not be negative"
        ));
    }
    if text.is_empty() {
        return Err(
            "invalid duration: the value is empty; expected a number with a unit, e.g. `30s`"
                .to_owned(),
        );
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(format!(
            "invalid duration `{text}`: expected a number with a unit, e.g. `30s`"
        ));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let Some((num, after)) = leading_decimal(rest) else {
            return Err(format!(
                "invalid duration `{text}`: expected a number with a unit, e.g. `30s`"
            ));
        };
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "invalid duration `{text}`: missing a unit (use ms, s, m or h, e.g. `30s`)"
            ));
        }
        let Some(&(_, mult)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{unit}` (use ns, us, ms, s, m, h or d)"
            ));
        };
        // Like Go, a fraction of a nanosecond is dropped.
        let part = scale(&num, mult).map(|(n, _)| n);
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("invalid duration `{text}`: it is too large"))?;
        rest = next;
    }
    Ok(total)
}

/// Parses a Go-style duration into whole milliseconds.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let ns = parse_duration_ns(text)?;
    if ns % NANOS_PER_MS != 0 {
        return Err(format!(
            "invalid duration `{text}`: gojinn durations have millisecond precision"
        ));
    }
    u64::try_from(ns / NANOS_PER_MS)
        .map_err(|_| format!("invalid duration `{text}`: it is too large"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failing test should panic
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let ok = [
            ("0", 0),
            ("1024", 1024),
            ("10B", 10),
            ("128MB", 128_000_000),
            ("64mb", 64_000_000),
            ("2k", 2_000),
            ("1GiB", 1 << 30),
            ("512KiB", 512 << 10),
            ("3mi", 3 << 20),
            ("1.5KiB", 1536),
            ("1.5GB", 1_500_000_000),
            ("2TB", 2_000_000_000_000),
            (".5kb", 500),
            ("1.000000000000000000000000KB", 1000),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn size_errors() {
        assert_eq!(
            parse_size("128XB").unwrap_err(),
            "invalid size `128XB`: unknown unit `XB` (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
        );
        assert_eq!(
            parse_size("MB").unwrap_err(),
            "invalid size `MB`: expected a number with an optional unit, e.g. `128MB`"
        );
        for bad in ["", "-1MB", "1 MB", "1.2.3MB", "1..2", "."] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("0.3B")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_size("1.0000000000000000001KB")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_size("99999999999999999999GB")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_size(&"9".repeat(200))
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn durations() {
        let ok = [
            ("0", 0),
            ("500ms", 500),
            ("2s", 2_000),
            ("1m", 60_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("1.5s", 1_500),
            ("1500000us", 1_500),
            ("2000000ns", 2),
            ("1d", 86_400_000),
            ("+3s", 3_000),
            ("1h0m0.5s", 3_600_500),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration_ms(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn duration_errors() {
        assert_eq!(
            parse_duration_ms("30").unwrap_err(),
            "invalid duration `30`: missing a unit (use ms, s, m or h, e.g. `30s`)"
        );
        assert_eq!(
            parse_duration_ms("2sec").unwrap_err(),
            "invalid duration `2sec`: unknown unit `sec` (use ns, us, ms, s, m, h or d)"
        );
        assert_eq!(
            parse_duration_ms("-1s").unwrap_err(),
            "invalid duration `-1s`: it must not be negative"
        );
        assert!(parse_duration_ms("1500us")
            .unwrap_err()
            .contains("millisecond precision"));
        for bad in ["", "+", "s", "1s2", "1.s.", "ms5", "1 s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert!(parse_duration_ms(&format!("{}h", "9".repeat(40)))
            .unwrap_err()
            .contains("too large"));
    }
}
