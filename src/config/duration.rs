//! Human durations in the config (`"250ms"`, `"5s"`, `"2m"`, `"1h"`; integers only, one unit)
//! and the one validator every duration field goes through. Every duration is at most
//! [`MAX`] (one day), so the arithmetic done on them later (doubling a timeout, adding a
//! cool-down to a clock) cannot overflow; zero is refused unless the field says what zero
//! means. Which fields accept zero is decided by their callers in `validate`, `timeouts` and
//! `limits`.

use std::time::Duration;

use super::error::Collector;
use super::raw::S;

/// The longest duration any field takes: longer timeouts, intervals or cool-downs are typos,
/// and this bound keeps every sum and product of durations far from overflow.
pub const MAX: Duration = Duration::from_secs(24 * 3600);

/// Whether a field may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// Zero means something (no grace period, no back-off).
    Allowed,
    /// Zero would fail every request or spin (a zero timeout, a zero health interval).
    Refused,
}

/// Parses one duration, refusing anything over [`MAX`]. Messages say how to fix the text and
/// do not repeat it (the error already points at it).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("has no unit; write it like \"5s\", \"250ms\", \"2m\" or \"1h\"")?;
    let (num, unit) = text.split_at(split);
    let too_long = || "is longer than a day, the most any duration may be; use at most \"24h\"".to_owned();
    let n: u64 = match num.parse() {
        Ok(n) => n,
        Err(_) if num.is_empty() => return Err("does not start with a number; write it like \"5s\"".into()),
        // All digits, so the only way to fail is overflow.
        Err(_) => return Err(too_long()),
    };
    let scaled = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => return Err("has an unknown unit; use ms, s, m or h".into()),
    };
    scaled.filter(|d| *d <= MAX).ok_or_else(too_long)
}

/// Validates the duration field `field`, if set; errors go to `c` and give None.
pub fn field(c: &mut Collector<'_>, s: Option<&S<String>>, field: &str, zero: Zero) -> Option<Duration> {
    let s = s?;
    match parse(s.get_ref()) {
        Ok(d) if d.is_zero() && zero == Zero::Refused => {
            c.push(s.span(), field, "must be above zero; use at least \"1ms\"");
            None
        }
        Ok(d) => Some(d),
        Err(msg) => {
            c.push(s.span(), field, msg);
            None
        }
    }
}

/// Like [`field`], with `default` when unset or invalid (the error is collected either way).
pub fn or(c: &mut Collector<'_>, s: Option<&S<String>>, name: &str, default: Duration, zero: Zero) -> Duration {
    field(c, s, name, zero).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO), "zero parses; each field decides whether it may be zero");
    }

    #[test]
    fn errors_say_how_to_fix() {
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("5d").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("number"));
    }

    #[test]
    fn a_day_is_the_most_any_duration_may_be() {
        assert_eq!(parse("24h"), Ok(MAX));
        assert_eq!(parse("86400000ms"), Ok(MAX));
        for text in ["25h", "1441m", "86401s", "86400001ms", "99999999999999999999h", "18446744073709551615h"] {
            let err = parse(text).expect_err(text);
            assert!(err.contains("at most \"24h\""), "{text}: {err}");
        }
    }
}
