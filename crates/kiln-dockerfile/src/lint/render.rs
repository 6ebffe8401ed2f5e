//! Printing findings the way `docker build --check` does: text with the source around each
//! finding, or the JSON of `--call=check,format=json`.

use serde_json::{Value, json};

use super::{Finding, Level, LintReport};

/// BuildKit-like text: for each finding a `WARNING: Rule - URL` header (`ERROR:` under
/// `error=true`), the message, and the lines around it with `>>>` on the finding's lines; a
/// build error comes last, as `ERROR: message` with its lines.
pub fn render_text(report: &LintReport, file: &str, source: &str) -> String {
    let mut blocks: Vec<String> = report
        .findings
        .iter()
        .map(|f| finding_text(f, file, source))
        .collect();
    if let Some(e) = &report.build_error {
        let (line, _) = e.line_col(source);
        blocks.push(format!(
            "ERROR: {}\n{}",
            e.message,
            excerpt(file, source, line, line)
        ));
    }
    blocks.join("\n")
}

fn finding_text(f: &Finding, file: &str, source: &str) -> String {
    let level = match f.level {
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    };
    let mut out = if f.url.is_empty() {
        format!("{level}: {}\n", f.rule)
    } else {
        format!("{level}: {} - {}\n", f.rule, f.url)
    };
    out.push_str(&f.message);
    out.push('\n');
    out.push_str(&excerpt(file, source, f.line, f.end_line));
    out
}

/// BuildKit's source excerpt: up to two lines of context around a one-line range, one around
/// a longer range.
fn excerpt(file: &str, source: &str, first: usize, last: usize) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let count = lines.len();
    if first < 1 || first > count {
        return String::new();
    }
    let (mut start, mut end) = (first, last.min(count));
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != count {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let rule = "--------------------";
    let mut out = format!("{file}:{first}\n{rule}\n");
    for (i, text) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = i + 1;
        let marker = if (first..=last).contains(&n) {
            ">>>"
        } else {
            "   "
        };
        out.push_str(&format!(" {n:>3} | {marker} {text}\n"));
    }
    out.push_str(rule);
    out.push('\n');
    out
}

/// The JSON `docker build --call=check,format=json` prints: one entry per finding with its
/// rule, description, URL, message and line range (1-based lines, 0-based characters),
/// the source file the ranges point into and, if the stages cannot be resolved, `buildError`.
pub fn render_json(report: &LintReport, file: &str) -> Value {
    let warnings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleName": f.rule,
                "description": f.description,
                "url": f.url,
                "detail": f.message,
                "location": {
                    "sourceIndex": 0,
                    "ranges": [{
                        "start": {"line": f.line, "character": f.col - 1},
                        "end": {"line": f.end_line, "character": 0},
                    }],
                },
            })
        })
        .collect();
    let mut out = json!({
        "warnings": warnings,
        "sources": [{"filename": file, "language": "Dockerfile"}],
    });
    if let (Some(e), Some(map)) = (&report.build_error, out.as_object_mut()) {
        map.insert("buildError".into(), json!({ "message": e.message }));
    }
    out
}
