//! Go's `time.ParseDuration`, which HEALTHCHECK options are read with (`1m30s`, `1.5h`, `300ms`).

/// Nanoseconds in `text`, or Go's error message. Negative durations are allowed, as in Go.
pub fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body == "0" {
        return Ok(0);
    }
    if body.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let (nanos, next) = component(rest, text)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= i128::from(i64::MAX))
            .ok_or_else(invalid)?;
        rest = next;
    }
    Ok(if negative { -total } else { total })
}

/// One `<number><unit>` component: its nanoseconds and the text after it.
fn component<'a>(rest: &'a str, text: &str) -> Result<(i128, &'a str), String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let number = &rest[..num_end];
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let after = &rest[num_end..];
    let unit_end = after
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(after.len());
    let unit = &after[..unit_end];
    if unit.is_empty() {
        return Err(format!("time: missing unit in duration \"{text}\""));
    }
    let scale = unit_nanos(unit)
        .ok_or_else(|| format!("time: unknown unit \"{unit}\" in duration \"{text}\""))?;
    Ok((
        scaled(number, scale).ok_or_else(invalid)?,
        &after[unit_end..],
    ))
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// `number` (digits with an optional fraction) times `scale`, truncated like Go.
fn scaled(number: &str, scale: i128) -> Option<i128> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole_value: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole_value.checked_mul(scale)?;
    let mut unit = scale;
    for digit in frac.bytes().take(30) {
        unit /= 10;
        value += i128::from(digit - b'0') * unit;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_examples() {
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(parse_go_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
        assert_eq!(parse_go_duration("1\u{b5}s"), Ok(1_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
    }

    #[test]
    fn go_errors() {
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert_eq!(
            parse_go_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert!(parse_go_duration("99999999999h").is_err());
    }
}
