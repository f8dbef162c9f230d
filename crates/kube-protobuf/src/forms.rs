//! The JSON spellings of apimachinery's special messages: meta/v1 Time and MicroTime
//! (RFC 3339 strings) and Duration (Go `time.Duration` strings).

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a Timestamp the way `metav1.Time.MarshalJSON` does: UTC, whole seconds.
pub(crate) fn format_time(seconds: i64, nanos: i32, micro: bool) -> Option<String> {
    let nanos = u32::try_from(nanos).ok()?;
    let t = DateTime::<Utc>::from_timestamp(seconds, nanos)?;
    Some(if micro {
        // metav1.RFC3339Micro: always six fractional digits.
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

/// Parses an RFC 3339 string (any offset, optional fraction) into `(seconds, nanos)`.
pub(crate) fn parse_time(text: &str) -> Option<(i64, i32)> {
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    Some((
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).ok()?,
    ))
}

const NANOS_PER: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", with_fraction(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", with_fraction(u, 6));
    }
    let seconds_part = with_fraction(u % 60_000_000_000, 9);
    let minutes = u / 60_000_000_000;
    let mut out = sign.to_string();
    if minutes >= 60 {
        out.push_str(&format!("{}h{}m", minutes / 60, minutes % 60));
    } else if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&seconds_part);
    out.push('s');
    out
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare point) dropped.
fn with_fraction(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`: a signed sequence of decimal numbers with units.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = NANOS_PER
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| u128::from(*n))?;
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        let mut place = scale;
        for digit in frac.chars() {
            place /= 10;
            value = value.checked_add(u128::from(digit.to_digit(10)?) * place)?;
        }
        total = total.checked_add(value)?;
        rest = tail;
    }
    let total = i128::try_from(total).ok()?;
    i64::try_from(if negative { -total } else { total }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_duration(nanos), text);
            assert_eq!(parse_duration(text), Some(nanos), "{text}");
        }
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        for bad in ["", "1", "1x", "h", ".s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(
            format_time(1_767_323_045, 0, false).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        // Time drops sub-second precision, MicroTime keeps six digits.
        assert_eq!(
            format_time(1_767_323_045, 123_456_789, false).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            format_time(1_767_323_045, 123_456_789, true).as_deref(),
            Some("2026-01-02T03:04:05.123456Z")
        );
        assert_eq!(
            format_time(1_767_323_045, 0, true).as_deref(),
            Some("2026-01-02T03:04:05.000000Z")
        );
        assert_eq!(format_time(0, -1, false), None);
        assert_eq!(
            parse_time("2026-01-02T04:04:05+01:00"),
            Some((1_767_323_045, 0))
        );
        assert_eq!(
            parse_time("2026-01-02T03:04:05.5Z"),
            Some((1_767_323_045, 500_000_000))
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
