//! The Dockerfile parser must never panic, and every error must render with a valid span.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match kiln_dockerfile::parser::parse(source) {
        Ok(ast) => {
            for node in &ast.nodes {
                assert!(node.span.start <= node.span.end && node.span.end <= source.len());
                assert!(source.is_char_boundary(node.span.start));
                for word in &node.args {
                    assert!(source.get(word.span.start..word.span.end).is_some());
                }
            }
        }
        Err(err) => {
            assert!(err.span.start <= err.span.end && err.span.end <= source.len());
            let _ = err.render("Dockerfile", source);
        }
    }
});
