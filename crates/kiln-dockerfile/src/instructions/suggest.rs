//! "did you mean" hints for misspelled flag names and option values, as BuildKit adds them.

/// Appends ` (did you mean X?)` to `message` when one of `options` is a close spelling of `value`.
pub fn did_you_mean(message: String, value: &str, options: &[&str]) -> String {
    match closest(value, options) {
        Some(best) => format!("{message} (did you mean {best}?)"),
        None => message,
    }
}

/// The option nearest to `value` within an edit distance of 2, if any.
fn closest<'a>(value: &str, options: &[&'a str]) -> Option<&'a str> {
    let limit = 2.min(value.chars().count().saturating_sub(1));
    options
        .iter()
        .map(|o| (levenshtein(value, o), *o))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(levenshtein("form", "from"), 2);
        assert_eq!(levenshtein("chmodd", "chmod"), 1);
        assert_eq!(levenshtein("", "ab"), 2);
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            did_you_mean("x".into(), "chmodd", &["chown", "chmod"]),
            "x (did you mean chmod?)"
        );
        assert_eq!(did_you_mean("x".into(), "platform", &["from", "link"]), "x");
        assert_eq!(did_you_mean("x".into(), "a", &["b"]), "x");
    }
}
