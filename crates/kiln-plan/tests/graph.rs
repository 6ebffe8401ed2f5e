//! Stage graphs of real multi-stage Dockerfiles: dependencies, needed stages, waves, outline JSON.

use std::collections::BTreeMap;

use kiln_dockerfile::stages::{StageOptions, stages};
use kiln_plan::{Outline, StageGraph};

fn dockerfile(src: &str) -> kiln_dockerfile::stages::Dockerfile {
    let ast = kiln_dockerfile::parser::parse(src).expect("parse");
    stages(&ast, src, &BTreeMap::new(), &StageOptions::default()).expect("stages")
}

const PARALLEL: &str = "FROM lab/busybox:1 AS left
RUN sleep 3 && echo left > /left.txt

FROM lab/busybox:1 AS right
RUN sleep 3 && echo right > /right.txt

FROM lab/busybox:1
COPY --from=left /left.txt /out/
COPY --from=right /right.txt /out/
COPY main.txt /out/
";

#[test]
fn independent_stages_share_a_wave() {
    let graph = StageGraph::new(&dockerfile(PARALLEL)).unwrap();
    assert_eq!(graph.needed(2).unwrap(), vec![0, 1, 2]);
    assert_eq!(graph.waves(2).unwrap(), vec![vec![0, 1], vec![2]]);
    let images: Vec<_> = graph.nodes[2].images.iter().cloned().collect();
    assert_eq!(images, vec!["lab/busybox:1".to_owned()]);
}

#[test]
fn unused_stage_is_not_needed() {
    let src = "FROM lab/busybox:1 AS unused
RUN sleep 5
FROM lab/busybox:1 AS used
RUN echo used > /m
FROM lab/busybox:1
COPY --from=used /m /
";
    let graph = StageGraph::new(&dockerfile(src)).unwrap();
    assert_eq!(graph.needed(2).unwrap(), vec![1, 2]);
    assert_eq!(graph.waves(2).unwrap(), vec![vec![1], vec![2]]);
}

#[test]
fn target_in_the_middle_needs_only_its_chain() {
    let src = "FROM lab/busybox:1 AS base
FROM base AS test
RUN true
FROM base AS release
RUN true
";
    let df = dockerfile(src);
    let target = df.target(Some("TEST")).unwrap();
    assert_eq!(target, 1);
    let graph = StageGraph::new(&df).unwrap();
    assert_eq!(graph.needed(target).unwrap(), vec![0, 1]);
    assert!(graph.nodes[1].images.is_empty());
}

#[test]
fn mount_from_and_index_from_are_edges() {
    let src = "FROM scratch AS files
FROM lab/busybox:1 AS tools
FROM lab/busybox:1
COPY --from=0 / /files
RUN --mount=type=bind,from=tools,target=/t true
COPY --from=other/image:2 /x /x
";
    let graph = StageGraph::new(&dockerfile(src)).unwrap();
    let deps: Vec<_> = graph.nodes[2].depends_on.iter().copied().collect();
    assert_eq!(deps, vec![0, 1]);
    assert!(graph.nodes[2].images.contains("other/image:2"));
    assert!(graph.nodes[0].images.is_empty(), "scratch is not an image");
}

#[test]
fn out_of_range_target_is_an_error() {
    let graph = StageGraph::new(&dockerfile(PARALLEL)).unwrap();
    assert!(graph.needed(7).is_err());
}

#[test]
fn outline_json_has_the_documented_fields() {
    let src = "ARG BASE=lab/busybox:1
FROM ${BASE} AS deps
ARG VERSION=1.0
FROM deps AS build
RUN true
FROM lab/busybox:1
COPY --from=build /a /a
";
    let df = dockerfile(src);
    let args = BTreeMap::from([("VERSION".to_owned(), "2.0".to_owned())]);
    let outline = Outline::new(&df, 2, &args).unwrap();
    let json = serde_json::to_value(&outline).unwrap();
    assert_eq!(json["target"], 2);
    assert_eq!(json["needed"], serde_json::json!([0, 1, 2]));
    assert_eq!(json["stages"][0]["base"], "lab/busybox:1");
    assert_eq!(json["stages"][0]["name"], "deps");
    assert_eq!(json["stages"][1]["base"], "deps");
    assert_eq!(json["stages"][1]["base_stage"], 0);
    assert_eq!(json["stages"][1]["depends_on"], serde_json::json!([0]));
    assert_eq!(json["stages"][2]["name"], serde_json::Value::Null);
    let version = outline.args.iter().find(|a| a.name == "VERSION").unwrap();
    assert_eq!(version.value.as_deref(), Some("2.0"));
    assert_eq!(version.default.as_deref(), Some("1.0"));
    assert_eq!(version.stage, Some(0));
    let base = outline.args.iter().find(|a| a.name == "BASE").unwrap();
    assert_eq!(base.stage, None);
}
