//! `kiln history`: the config's history, newest first, with the size of each step's layer.

use std::process::ExitCode;

use anyhow::Context;
use kiln_store::ImageRecord;
use serde_json::Value;

use super::{human, table};
use crate::cli::{GlobalArgs, HistoryArgs};

/// Longest CREATED BY shown without `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;
const MISSING: &str = "<missing>";

/// One history entry and the layer it made.
struct Step {
    created: Option<String>,
    created_by: String,
    comment: String,
    size: u64,
}

pub fn run(global: &GlobalArgs, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = super::store::open(global)?;
    let img = store.resolve(&args.image)?;
    let config = super::inspect::config(&store, &img)?;
    // Like `docker history`: the layer's content size, not its blob's.
    let sizes: Vec<u64> = store
        .layer_content_sizes(&img.id)
        .with_context(|| format!("listing the layers of {}", args.image))?;
    let steps = steps(&config, &sizes);
    let ids = (0..steps.len()).map(|i| match i {
        0 if args.no_trunc => img.id.to_string(),
        0 => img.short_id(),
        _ => MISSING.to_owned(),
    });
    if args.quiet {
        ids.for_each(|id| println!("{id}"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = vec!["IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT".to_owned()];
    lines.extend(
        steps
            .iter()
            .zip(ids)
            .map(|(s, id)| line(&img, s, &id, args.no_trunc)),
    );
    print!("{}", table::render(&lines));
    Ok(ExitCode::SUCCESS)
}

fn line(img: &ImageRecord, step: &Step, id: &str, no_trunc: bool) -> String {
    let created_by = step.created_by.replace('\t', " ");
    let created_by = if no_trunc {
        created_by
    } else {
        human::ellipsis(&created_by, CREATED_BY_WIDTH)
    };
    let created = human::since(step.created.as_deref().or(img.created.as_deref()));
    format!(
        "{id}\t{created}\t{created_by}\t{}\t{}",
        human::size(step.size),
        step.comment
    )
}

/// History entries newest first; each non-empty one takes the next layer's size.
fn steps(config: &Value, layer_sizes: &[u64]) -> Vec<Step> {
    let history = config
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut sizes = layer_sizes.iter();
    let mut steps: Vec<Step> = history
        .iter()
        .map(|h| {
            let text = |k: &str| h.get(k).and_then(Value::as_str).map(str::to_owned);
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Step {
                created: text("created"),
                created_by: text("created_by").unwrap_or_default(),
                comment: text("comment").unwrap_or_default(),
                size: if empty {
                    0
                } else {
                    sizes.next().copied().unwrap_or(0)
                },
            }
        })
        .collect();
    steps.reverse();
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_layer_steps_take_no_layer() {
        let config = json!({"history": [
            {"created_by": "ADD rootfs /"},
            {"created_by": "CMD [\"sh\"]", "empty_layer": true},
            {"created_by": "RUN make", "comment": "buildkit.dockerfile.v0"},
        ]});
        let steps = steps(&config, &[10, 20]);
        let got: Vec<(&str, u64)> = steps
            .iter()
            .map(|s| (s.created_by.as_str(), s.size))
            .collect();
        assert_eq!(
            got,
            [("RUN make", 20), ("CMD [\"sh\"]", 0), ("ADD rootfs /", 10)]
        );
        assert_eq!(steps[0].comment, "buildkit.dockerfile.v0");
    }
}
