//! Go's `unicode` character classes, which decide where names end and words split.

use unicode_general_category::{GeneralCategory as Gc, get_general_category};

/// Go's `unicode.IsLetter`: general category L (not Rust's wider `is_alphabetic`).
pub(crate) fn is_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::UppercaseLetter
            | Gc::LowercaseLetter
            | Gc::TitlecaseLetter
            | Gc::ModifierLetter
            | Gc::OtherLetter
    )
}

/// Go's `unicode.IsDigit`: general category Nd (not Rust's wider `is_numeric`).
pub(crate) fn is_digit(c: char) -> bool {
    get_general_category(c) == Gc::DecimalNumber
}

/// Go's `unicode.IsSpace`; both it and Rust use the Unicode White_Space property.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_go_not_rust() {
        // U+093F DEVANAGARI VOWEL SIGN I is Alphabetic but a mark, not a letter.
        assert!('\u{093F}'.is_alphabetic() && !is_letter('\u{093F}'));
        // U+00B2 SUPERSCRIPT TWO is numeric but not a decimal digit.
        assert!('²'.is_numeric() && !is_digit('²'));
        assert!(is_letter('한') && is_letter('µ') && is_digit('٣'));
        assert!(is_space('\u{85}') && is_space('\u{A0}') && !is_space('\u{200B}'));
    }
}
