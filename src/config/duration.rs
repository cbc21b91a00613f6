//! Human durations in the config: `"250ms"`, `"5s"`, `"2m"`, `"1h"`. Integers only, one unit.

use std::time::Duration;

const TOO_LONG: &str = "is too long";

/// Errors are static phrases: they never quote the text, which may be a misplaced secret.
pub fn parse(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("has no unit; write it like \"5s\", \"250ms\", \"2m\" or \"1h\"")?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().map_err(|_| "does not start with a whole number; write it like \"5s\"")?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or(TOO_LONG),
        "h" => n.checked_mul(3600).map(Duration::from_secs).ok_or(TOO_LONG),
        _ => Err("has an unknown unit; use ms, s, m or h"),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn errors_say_how_to_fix() {
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("5d").unwrap_err().contains("unknown unit"));
        assert!(parse("s").unwrap_err().contains("number"));
    }
}
