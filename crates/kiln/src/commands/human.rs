//! Sizes and ages the way the docker CLI prints them (go-units).

use std::fmt::Write as _;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `docker images` / `docker history`: three significant digits (`2.07MB`).
pub fn size(bytes: u64) -> String {
    size_with_precision(bytes, 3)
}

/// `docker system df` and prune totals: four significant digits (`2.066MB`).
pub fn size_long(bytes: u64) -> String {
    size_with_precision(bytes, 4)
}

fn size_with_precision(bytes: u64, precision: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < DECIMAL_UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision), DECIMAL_UNITS[unit])
}

/// Go's `%.{precision}g`: shortest of fixed and exponent form, trailing zeros dropped.
fn go_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let sci = format!("{:.*e}", precision.saturating_sub(1), value);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = i32::try_from(precision).unwrap_or(i32::MAX);
    if exp < -4 || exp >= digits {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs());
    }
    let decimals = usize::try_from(digits - 1 - exp).unwrap_or(0);
    trim_zeros(&format!("{value:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units `HumanDuration`: "Less than a second", "About a minute", "3 weeks".
pub fn duration(secs: i64) -> String {
    let hours = (secs as f64 / 3600.0).round() as i64;
    match secs {
        s if s < 1 => "Less than a second".to_owned(),
        1 => "1 second".to_owned(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".to_owned(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".to_owned(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// "2 minutes ago" for an RFC 3339 time, "N/A" when unknown.
pub fn since(created: Option<&str>) -> String {
    match created.and_then(parse_time) {
        Some(t) => format!("{} ago", duration((chrono::Utc::now() - t).num_seconds())),
        None => "N/A".to_owned(),
    }
}

/// Go's `time.Time.String()` layout, as `docker images --format '{{.CreatedAt}}'` shows it.
pub fn go_time(created: Option<&str>) -> String {
    created
        .and_then(parse_time)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?.to_utc();
    (t.timestamp() > 0).then_some(t)
}

/// Truncates to `max` characters, the last one an ellipsis (docker's `Ellipsis`).
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    let _ = write!(out, "…");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(512), "512B");
        assert_eq!(size(2_070_000), "2.07MB");
        assert_eq!(size(2_000_000), "2MB");
        assert_eq!(size(12_345), "12.3kB");
        assert_eq!(size(999_999), "1e+03kB");
        assert_eq!(size_long(2_066_123), "2.066MB");
        assert_eq!(size_long(1_082_000_000), "1.082GB");
    }

    #[test]
    fn durations_match_go_units() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(59), "59 seconds");
        assert_eq!(duration(61), "About a minute");
        assert_eq!(duration(150), "2 minutes");
        assert_eq!(duration(3600), "About an hour");
        assert_eq!(duration(5 * 3600), "5 hours");
        assert_eq!(duration(3 * 86_400), "3 days");
        assert_eq!(duration(20 * 86_400), "2 weeks");
        assert_eq!(duration(100 * 86_400), "3 months");
        assert_eq!(duration(800 * 86_400), "2 years");
    }

    #[test]
    fn ellipsis_keeps_short_strings() {
        assert_eq!(ellipsis("abc", 3), "abc");
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
