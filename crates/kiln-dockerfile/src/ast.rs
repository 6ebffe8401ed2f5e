//! The parser's output: BuildKit's `parser.Node` tree, with byte spans kept from the start.
//!
//! This layer does no expansion and no validation of instruction semantics: it only splits the
//! file into instructions, flags and argument words according to each keyword's parse mode.

/// A byte range `[start, end)` in the original source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Parser directives read from the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    pub syntax: Option<String>,
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// Raw value of `# check=` (e.g. `skip=JSONArgsRecommended;error=true`).
    pub check: Option<String>,
}

/// A heredoc body attached to an instruction (`RUN <<EOF`, `COPY <<EOF /dst`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Delimiter word without quotes or `-`.
    pub name: String,
    /// The body lines as written, each with its line ending (`\r\n` kept), as BuildKit keeps it.
    pub content: String,
    /// False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no expansion in the body.
    pub expand: bool,
    /// True for `<<-EOF`: leading tabs were stripped from each body line.
    pub chomp: bool,
    /// The body lines and the terminator line.
    pub span: Span,
}

/// One argument word as the parser split it, with its span in the source (best effort for JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub value: String,
    pub span: Span,
}

/// A `--flag` or `--flag=value` written before the arguments (`--` terminator dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag as BuildKit reads it: quotes and backslash escapes removed, so
    /// `--mount="type=cache,target=/x"` gives `--mount=type=cache,target=/x`. `span` covers
    /// the text as written.
    pub text: String,
    pub span: Span,
}

/// One instruction (BuildKit's `parser.Node` for a line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword, lower-cased (`from`, `run`, ...).
    pub keyword: String,
    /// Span of the keyword as written (its original casing is `source[keyword_span]`).
    pub keyword_span: Span,
    pub flags: Vec<Flag>,
    /// Arguments per the keyword's parse mode (see the conformance README for the shapes).
    pub args: Vec<Word>,
    /// True when the arguments came from a valid JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies in order; for `ONBUILD RUN <<EOF` they sit on the `ONBUILD` node, as in
    /// BuildKit.
    pub heredocs: Vec<Heredoc>,
    /// The trigger of `ONBUILD <instruction>`.
    pub next: Option<Box<Node>>,
    /// The instruction's logical line with continuations joined, as BuildKit's `Original`.
    pub original: String,
    /// Comment lines above the instruction (BuildKit's `PrevComment`, used for stage and ARG
    /// descriptions): text after the line's first character, trimmed; a bare `#` clears the
    /// list, blank lines do not, parser directives are not included.
    pub comments: Vec<String>,
    /// Whole instruction including continuation lines and heredoc bodies.
    pub span: Span,
    /// 1-based first and last source line.
    pub start_line: usize,
    pub end_line: usize,
}

/// A warning the parser emits without failing (e.g. empty continuation lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// Lint rule name when the warning maps to a BuildKit check (e.g. `NoEmptyContinuation`).
    pub rule: Option<&'static str>,
    pub message: String,
    pub span: Span,
    pub line: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<ParseWarning>,
    /// 1-based lines spanned by the instructions (first instruction .. last instruction).
    pub start_line: usize,
    pub end_line: usize,
}
