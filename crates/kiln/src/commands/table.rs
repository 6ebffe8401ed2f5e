//! Column alignment as the docker CLI's tabwriter does it: cells padded by three spaces to at
//! least ten characters; the last cell of a line is not padded.

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns tab-separated `lines`; each ends with a newline.
pub fn render<S: AsRef<str>>(lines: &[S]) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.as_ref().split('\t').collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .filter(|r| r.len() > c + 1)
                .map(|r| r[c].chars().count() + PADDING)
                .max()
                .unwrap_or(0)
                .max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_like_docker() {
        let out = render(&["REPOSITORY\tTAG\tSIZE", "lab/busybox\t1\t2.07MB"]);
        assert_eq!(
            out,
            "REPOSITORY    TAG       SIZE\nlab/busybox   1         2.07MB\n"
        );
    }
}
