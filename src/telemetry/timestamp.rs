//! The access line's timestamp: RFC 3339 UTC with milliseconds, written straight into the
//! line's buffer from the Unix clock (no date library, no allocation).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC with milliseconds, from the Unix clock by civil-date arithmetic.
pub(super) fn write(buf: &mut Vec<u8>) {
    at(buf, SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default());
}

/// The timestamp of `now` (since the Unix epoch).
fn at(buf: &mut Vec<u8>, now: Duration) {
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    digits(buf, y.clamp(0, 9999) as u32, 4);
    buf.push(b'-');
    digits(buf, m, 2);
    buf.push(b'-');
    digits(buf, d, 2);
    buf.push(b'T');
    digits(buf, (rem / 3600) as u32, 2);
    buf.push(b':');
    digits(buf, (rem % 3600 / 60) as u32, 2);
    buf.push(b':');
    digits(buf, (rem % 60) as u32, 2);
    buf.push(b'.');
    digits(buf, now.subsec_millis(), 3);
    buf.push(b'Z');
}

/// `n` in exactly `width` decimal digits, zero-padded (`n` is below 10^width).
fn digits(buf: &mut Vec<u8>, n: u32, width: u32) {
    for place in (0..width).rev() {
        buf.push(b'0' + (n / 10u32.pow(place) % 10) as u8);
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds() {
        let mut buf = Vec::new();
        at(&mut buf, Duration::from_millis(1_795_305_600_007));
        assert_eq!(buf, b"2026-11-22T00:00:00.007Z");
        buf.clear();
        at(&mut buf, Duration::from_millis(951_868_799_999));
        assert_eq!(buf, b"2000-02-29T23:59:59.999Z");
    }

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
