//! Shell-word expansion of Dockerfile arguments, as BuildKit's shell lexer does it.
