//! Duration text used in the config file: one or more `NUMBER UNIT` terms such as `"10ms"`,
//! `"1.5s"`, `"2m"`, `"1m30s"` or `"0s"`. Units: `ms`, `s`, `m`, `h`. A bare number has no unit
//! and is refused, because "1" could mean seconds, centiseconds or milliseconds.
//! Arithmetic is exact (integer nanoseconds), so `"0.01s"` is exactly 10 ms.

use std::time::Duration;

/// The upper limit of most duration keys (hook and resource timeouts, delays).
pub(crate) const HOUR: Duration = Duration::from_secs(3600);

/// Largest duration the parser accepts; every config key has a much smaller limit of its own.
const MAX_NANOS: u128 = 100 * 365 * 24 * 3600 * 1_000_000_000;

/// Nanoseconds per unit, longest unit name first so `ms` is not read as `m` + `s`.
const UNITS: &[(&str, u128)] = &[
    ("ms", 1_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];

/// The hint appended to every duration error.
pub const DURATION_HINT: &str =
    "write a string with a unit, e.g. \"1s\", \"100ms\", \"1.5s\", \"2m\"";

/// Parses duration text such as `"1.5s"` or `"1m30s"`.
///
/// The error text says what is wrong, without the key name (the caller adds it).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {DURATION_HINT}"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(format!("invalid duration \"{text}\"; {DURATION_HINT}"));
        }
        let Some(&(unit, scale)) = UNITS.iter().find(|(unit, _)| after.starts_with(unit)) else {
            return Err(if after.is_empty() {
                format!("duration \"{text}\" has no unit; {DURATION_HINT}")
            } else {
                format!("invalid duration \"{text}\": unknown unit; units are ms, s, m, h")
            });
        };
        let nanos = scaled(number, scale)
            .ok_or_else(|| format!("invalid duration \"{text}\"; {DURATION_HINT}"))?;
        total = total.saturating_add(nanos);
        if total > MAX_NANOS {
            return Err(format!("duration \"{text}\" is too large"));
        }
        rest = &after[unit.len()..];
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| format!("duration \"{text}\" is too large"))?;
    // The remainder is below 10^9 and always fits.
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one `.`) times `scale` nanoseconds, exactly; `None` if the
/// number is malformed, overflows, or has more precision than a nanosecond.
fn scaled(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || whole.len() > 20 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        if place % 10 != 0 {
            return None;
        }
        place /= 10;
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

/// Formats a duration the way the config file writes it: `"1s"`, `"1.5s"`, `"10ms"`, `"2m"`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos % 3_600_000_000_000 == 0 {
        return format!("{}h", nanos / 3_600_000_000_000);
    }
    if nanos % 60_000_000_000 == 0 {
        return format!("{}m", nanos / 60_000_000_000);
    }
    if nanos % 1_000_000 != 0 {
        return format!("{duration:?}");
    }
    let millis = nanos / 1_000_000;
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let fraction = format!("{:03}", millis % 1000);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{}s", millis / 1000)
    } else {
        format!("{}.{fraction}s", millis / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("10ms"), Ok(ms(10)));
        assert_eq!(parse_duration("1s"), Ok(ms(1000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn parses_fractions_exactly() {
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("0.01s"), Ok(ms(10)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("40.95s"), Ok(ms(40_950)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.s"), Ok(ms(1000)));
    }

    #[test]
    fn parses_compound_terms_and_whitespace_around() {
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        assert_eq!(parse_duration("1h1m1s1ms"), Ok(ms(3_661_001)));
        assert_eq!(parse_duration(" 1s "), Ok(ms(1000)));
    }

    #[test]
    fn refuses_bare_numbers_with_a_hint() {
        let err = parse_duration("1").unwrap_err();
        assert!(err.contains("has no unit"), "{err}");
        assert!(err.contains("\"1s\""), "{err}");
        let err = parse_duration("1s5").unwrap_err();
        assert!(err.contains("no unit"), "{err}");
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "", " ", "s", "ms", "-1s", "1.2.3s", "1 s", "1sec", "1d", "1us", ".s", "1e3s", "1,5s",
            "١s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        let err = parse_duration("5d").unwrap_err();
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn refuses_sub_nanosecond_precision_and_overflow() {
        assert!(parse_duration("0.0000000001s").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert!(parse_duration("101000000h").is_err());
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn formats_like_the_config_file() {
        for (millis, text) in [
            (0, "0s"),
            (10, "10ms"),
            (1000, "1s"),
            (1500, "1.5s"),
            (40_950, "40.95s"),
        ] {
            assert_eq!(format_duration(ms(millis)), text);
        }
        assert_eq!(format_duration(ms(120_000)), "2m");
        assert_eq!(format_duration(ms(7_200_000)), "2h");
        assert_eq!(format_duration(ms(90_000)), "90s");
        assert_eq!(format_duration(Duration::from_micros(500)), "500µs");
    }

    #[test]
    fn format_then_parse_round_trips() {
        for millis in [1, 10, 999, 1000, 1001, 1500, 59_999, 60_000, 3_600_000] {
            let text = format_duration(ms(millis));
            assert_eq!(parse_duration(&text), Ok(ms(millis)), "{text}");
        }
    }
}
