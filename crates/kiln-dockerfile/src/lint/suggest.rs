//! BuildKit's "did you mean" search (`util/suggest`): the first option within edit distance 2,
//! nearer ones replacing it; an exact match means there is nothing to suggest.

/// The closest of `options` to `value`, compared case-sensitively.
pub fn closest<'a, I>(value: &str, options: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<&str> = None;
    let mut min = 3;
    for option in options {
        if option == value {
            return None;
        }
        let distance = levenshtein(value, option);
        if distance < min {
            min = distance;
            best = Some(option);
        }
    }
    best.map(str::to_owned)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let next = (above.saturating_add(1))
                .min(left.saturating_add(1))
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
            if let Some(slot) = row.get_mut(j + 1) {
                *slot = next;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let opts = ["DIR_BINARIES", "DIR_ASSETS", "PATH"];
        assert_eq!(closest("DIR_ASSET", opts), Some("DIR_ASSETS".into()));
        assert_eq!(closest("PAHT", opts), Some("PATH".into()));
        assert_eq!(closest("HOME", opts), None);
        assert_eq!(closest("PATH", opts), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
