//! Lexical path cleaning with Go's `path.Clean` rules, which moby applies to
//! `.dockerignore` patterns and BuildKit to COPY sources.

/// Returns the shortest lexically equivalent slash path, exactly like Go's
/// `path.Clean`: repeated slashes collapse, `.` drops, `..` eats the previous
/// element (or is dropped at a rooted start), empty becomes `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn matches_go_path_clean() {
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def/", "abc/def"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("/../a", "/a"),
            ("../../a", "../../a"),
            ("a/../..", ".."),
            ("abc/./../def", "def"),
            ("/", "/"),
            ("//", "/"),
            ("/a/b/../../..", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }
}
