//! Expansion must never panic, whatever the word and lexer options.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(word) = std::str::from_utf8(rest) else {
        return;
    };
    let escape = if flags & 1 == 0 { '\\' } else { '`' };
    let lexer = kiln_shell::Lexer::new(escape)
        .raw_quotes(flags & 2 != 0)
        .raw_escapes(flags & 4 != 0)
        .skip_unset_env(flags & 8 != 0);
    let env: Vec<(String, String)> = [
        ("A", "a b*c"),
        ("EMPTY", ""),
        ("P", "/x/y.z"),
        ("S", "\\*?["),
    ]
    .iter()
    .map(|&(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let _ = lexer.process_word(word, &env);
    let _ = lexer.process_words(word, &env);
});
