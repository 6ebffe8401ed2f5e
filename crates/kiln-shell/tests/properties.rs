//! Properties that hold for every input.

use kiln_shell::Lexer;
use proptest::prelude::*;

fn env() -> Vec<(String, String)> {
    [
        ("A", "a b*c"),
        ("EMPTY", ""),
        ("P", "/x/y.z"),
        ("S", "\\*?["),
    ]
    .iter()
    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn lexer(flags: u8) -> Lexer {
    let escape = if flags & 1 == 0 { '\\' } else { '`' };
    Lexer::new(escape)
        .raw_quotes(flags & 2 != 0)
        .raw_escapes(flags & 4 != 0)
        .skip_unset_env(flags & 8 != 0)
}

/// Words dense in the characters the grammar cares about.
fn tricky_word() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("$"),
        Just("${"),
        Just("}"),
        Just("{"),
        Just(":"),
        Just("-"),
        Just("+"),
        Just("?"),
        Just("#"),
        Just("%"),
        Just("/"),
        Just("\\"),
        Just("`"),
        Just("'"),
        Just("\""),
        Just("*"),
        Just("["),
        Just(" "),
        Just("\n"),
        Just("A"),
        Just("EMPTY"),
        Just("P"),
        Just("S"),
        Just("0"),
        Just("x"),
        Just("한"),
        Just("\u{FEFF}"),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn plain_words_expand_to_themselves(
        word in "[^$'\"\\\\`\u{FEFF}]*",
        flags in any::<u8>(),
    ) {
        let lexer = lexer(flags);
        let expansion = lexer.process_word(&word, &env()).unwrap();
        prop_assert_eq!(&expansion.value, &word);
        prop_assert!(expansion.matched.is_empty() && expansion.unmatched.is_empty());
        let words: Vec<&str> = word.split(char::is_whitespace).filter(|w| !w.is_empty()).collect();
        prop_assert_eq!(lexer.process_words(&word, &env()).unwrap(), words);
    }

    #[test]
    fn arbitrary_strings_never_panic(word in any::<String>(), flags in any::<u8>()) {
        let lexer = lexer(flags);
        let _ = lexer.process_word(&word, &env());
        let _ = lexer.process_words(&word, &env());
    }

    #[test]
    fn tricky_words_never_panic_and_errors_point_inside(word in tricky_word(), flags in any::<u8>()) {
        let lexer = lexer(flags);
        let single = lexer.process_word(&word, &env());
        if let Err(e) = &single {
            prop_assert!(e.offset <= word.len() && word.is_char_boundary(e.offset), "{:?}", e);
        }
        // Both entry points agree on whether the word is valid.
        prop_assert_eq!(single.is_ok(), lexer.process_words(&word, &env()).is_ok());
    }

    #[test]
    fn quoting_makes_one_word(text in "[a-z \t]{0,20}") {
        let words = Lexer::new('\\').process_words(&format!("'{text}'x"), &env()).unwrap();
        prop_assert_eq!(words, vec![format!("{text}x")]);
    }
}
