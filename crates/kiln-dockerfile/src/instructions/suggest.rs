//! "did you mean" hints for misspelled names, as BuildKit's `suggest.WrapError` adds them: the
//! first option within an edit distance of 2, none when the value is itself an option.

/// Appends ` (did you mean X?)` to `message` when an option is a close spelling of `value`.
pub fn did_you_mean(message: String, value: &str, options: &[&str]) -> String {
    match closest(value, options.iter().map(|o| (*o).to_owned())) {
        Some(best) => format!("{message} (did you mean {best}?)"),
        None => message,
    }
}

/// Like [`did_you_mean`] ignoring case; the hint takes the case `value` was written in.
pub fn did_you_mean_any_case(message: String, value: &str, options: &[&str]) -> String {
    let lower = value.to_lowercase();
    let Some(best) = closest(&lower, options.iter().map(|o| o.to_lowercase())) else {
        return message;
    };
    let best = if value == value.to_uppercase() {
        best.to_uppercase()
    } else {
        best
    };
    format!("{message} (did you mean {best}?)")
}

fn closest(value: &str, options: impl Iterator<Item = String>) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for option in options {
        if option == value {
            return None;
        }
        let d = levenshtein(value, &option);
        if d < 3 && best.as_ref().is_none_or(|(b, _)| d < *b) {
            best = Some((d, option));
        }
    }
    best.map(|(_, o)| o)
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
        let hint = |v: &str, o: &[&str]| did_you_mean("x".into(), v, o);
        assert_eq!(
            hint("chmodd", &["chown", "chmod"]),
            "x (did you mean chmod?)"
        );
        assert_eq!(hint("platform", &["from", "link"]), "x");
        assert_eq!(hint("a", &["b"]), "x (did you mean b?)");
        assert_eq!(hint("bind", &["bin", "bind"]), "x");
    }

    #[test]
    fn any_case_matches_the_written_case() {
        let hint = |v: &str| did_you_mean_any_case("x".into(), v, &["COPY", "FROM"]);
        assert_eq!(hint("COPPY"), "x (did you mean COPY?)");
        assert_eq!(hint("coppy"), "x (did you mean copy?)");
        assert_eq!(hint("Coppy"), "x (did you mean copy?)");
        assert_eq!(hint("healthz"), "x");
    }
}
