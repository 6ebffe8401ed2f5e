//! Test-only printer of the parser AST in BuildKit's `result` format (its `Node.Dump`).

use kiln_dockerfile::ast::{Ast, Node};

/// One line per instruction, `(keyword ["flags"] "args"...)`, with a final newline.
pub fn dump(ast: &Ast) -> String {
    let mut out = String::new();
    for node in &ast.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    out
}

fn dump_node(node: &Node) -> String {
    let mut out = node.keyword.to_lowercase();
    if !node.flags.is_empty() {
        let flags: Vec<String> = node.flags.iter().map(|f| go_quote(&f.text)).collect();
        out.push_str(&format!(" [{}]", flags.join(" ")));
    }
    if let Some(trigger) = &node.next {
        out.push_str(&format!(" ({})", dump_node(trigger)));
    }
    for arg in &node.args {
        out.push(' ');
        out.push_str(&go_quote(&arg.value));
    }
    out.trim().to_owned()
}

/// Go's `strconv.Quote` (printability approximated with Rust's char classes).
pub fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    let format_char =
        matches!(c as u32, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff);
    c == ' ' || !(c.is_control() || c.is_whitespace() || format_char)
}
