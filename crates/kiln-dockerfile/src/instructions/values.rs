//! Checks of expanded values BuildKit validates when it applies them: STOPSIGNAL signals, EXPOSE
//! port specs and ADD checksums (`signal.ParseSignal`, `nat.ParsePortSpecs`, `digest.Parse`).

/// Linux signal names (without `SIG`) and numbers, as Docker's signal map has them.
const SIGNALS: &[(&str, u32)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("RTMIN", 34),
    ("RTMAX", 64),
];

/// The signal number of `SIGTERM`, `term`, `15` or `RTMIN+3`; Docker's message on failure.
pub fn parse_signal(raw: &str) -> Result<u32, String> {
    let invalid = || format!("invalid signal: {raw}");
    if let Ok(n) = raw.parse::<i64>() {
        return u32::try_from(n)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(invalid);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    realtime(name).ok_or_else(invalid)
}

/// `RTMIN+1`..`RTMIN+15` and `RTMAX-14`..`RTMAX-1`.
fn realtime(name: &str) -> Option<u32> {
    let offset = |s: &str| s.parse::<u32>().ok().filter(|n| (1..=15).contains(n));
    if let Some(n) = name.strip_prefix("RTMIN+").and_then(offset) {
        return Some(34 + n);
    }
    name.strip_prefix("RTMAX-")
        .and_then(offset)
        .filter(|n| *n <= 14)
        .map(|n| 64 - n)
}

/// The image-config keys (`80/tcp`) an EXPOSE word stands for; ranges give one key per port.
/// Messages are capitalised as docker 26 prints them.
pub fn parse_port_spec(raw: &str) -> Result<Vec<String>, String> {
    let (port, proto) = match raw.split_once('/') {
        Some((p, "")) => (p, "tcp"),
        Some((p, proto)) => (p, proto),
        None => (raw, "tcp"),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.to_ascii_lowercase().as_str()) {
        return Err(format!("Invalid proto: {proto}"));
    }
    // `[ip:[hostPort]:]containerPort`: only the container port is exposed.
    let container = port.rsplit(':').next().unwrap_or(port);
    let (start, end) =
        port_range(container).ok_or_else(|| format!("Invalid containerPort: {container}"))?;
    Ok((start..=end)
        .map(|p| format!("{p}/{}", proto.to_ascii_lowercase()))
        .collect())
}

fn port_range(text: &str) -> Option<(u16, u16)> {
    let (start, end) = text.split_once('-').unwrap_or((text, text));
    let start: u16 = start.parse().ok()?;
    let end: u16 = end.parse().ok()?;
    (start <= end).then_some((start, end))
}

/// Checks an `ADD --checksum` digest (`sha256:<64 hex>`, sha384, sha512), with go-digest's messages.
pub fn check_digest(text: &str) -> Result<(), String> {
    let invalid = || "invalid checksum digest format".to_owned();
    let (algorithm, encoded) = text
        .split_once(':')
        .filter(|(a, e)| !a.is_empty() && !e.is_empty())
        .ok_or_else(invalid)?;
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm".into()),
    };
    if encoded.len() != hex_len {
        return Err("invalid checksum digest length".into());
    }
    if !encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("quit"), Ok(3));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("0"), Err("invalid signal: 0".into()));
        assert_eq!(
            parse_signal("SIGNOPE"),
            Err("invalid signal: SIGNOPE".into())
        );
    }

    #[test]
    fn digests() {
        assert_eq!(check_digest(&format!("sha256:{}", "a".repeat(64))), Ok(()));
        assert_eq!(
            check_digest("sha256"),
            Err("invalid checksum digest format".into())
        );
        assert_eq!(
            check_digest("md5:abc"),
            Err("unsupported digest algorithm".into())
        );
        assert_eq!(
            check_digest("sha256:abc"),
            Err("invalid checksum digest length".into())
        );
        assert_eq!(
            check_digest(&format!("sha256:{}", "G".repeat(64))),
            Err("invalid checksum digest format".into())
        );
    }

    #[test]
    fn port_specs() {
        assert_eq!(parse_port_spec("80"), Ok(vec!["80/tcp".into()]));
        assert_eq!(parse_port_spec("53/UDP"), Ok(vec!["53/udp".into()]));
        assert_eq!(parse_port_spec("8000-8002/tcp").unwrap().len(), 3);
        assert_eq!(
            parse_port_spec("80/icmp"),
            Err("Invalid proto: icmp".into())
        );
        assert_eq!(
            parse_port_spec("http"),
            Err("Invalid containerPort: http".into())
        );
        assert_eq!(
            parse_port_spec("90-80"),
            Err("Invalid containerPort: 90-80".into())
        );
    }
}
