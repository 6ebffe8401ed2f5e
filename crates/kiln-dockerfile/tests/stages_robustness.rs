//! No input makes the typed-instruction or stage layers panic: Dockerfiles assembled from
//! instruction fragments (valid and broken) either resolve or return an error with a span
//! inside the source.

use std::collections::BTreeMap;

use kiln_dockerfile::parser;
use kiln_dockerfile::stages::{self, StageOptions};
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "FROM a",
    "FROM $B AS s1",
    "FROM --platform=$BUILDPLATFORM s1",
    "FROM scratch AS x",
    "ARG B=busybox C",
    "ARG =x",
    "ENV a=$B b=${a:-é} c",
    "LABEL k=\"v w\" ",
    "RUN --mount=type=cache,target=$T,mode=0$M,\"x echo",
    "RUN --mount=type=secret,id=s,required,from=$F --network=none true",
    "RUN --mount=from=1,src=/ x",
    "COPY --from=$F --chmod=$M a b",
    "COPY --from=s1 --chmod=u+x,g= a /b/",
    "COPY --from=9 a b",
    "ADD --checksum=$C https://x/y /y",
    "COPY <<EOF /x\nhi $B\nEOF",
    "WORKDIR ${W:?unset}",
    "USER $U:$G",
    "EXPOSE $P 80/udp 1-2",
    "VOLUME [\"$V\"]",
    "STOPSIGNAL $S",
    "HEALTHCHECK --interval=$I CMD x",
    "HEALTHCHECK --retries=99999999999 CMD x",
    "ONBUILD COPY --from=s1 a b",
    "SHELL [\"sh\"]",
    "CMD [\"a\"]",
    "BOGUS x",
    "\u{fe0f}\u{1f600} \\",
];

fn dockerfile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 1..10)
        .prop_map(|lines| lines.join("\n") + "\n")
}

fn args() -> impl Strategy<Value = BTreeMap<String, String>> {
    let names =
        prop::sample::select(&["B", "T", "M", "F", "C", "W", "P", "S", "I", "TARGETARCH"][..]);
    let values = prop::sample::select(&["", "1", "s1", "0", "x y", "$x", "linux/arm64", "-1"][..]);
    prop::collection::btree_map(
        names.prop_map(str::to_owned),
        values.prop_map(str::to_owned),
        0..5,
    )
}

proptest! {
    #[test]
    fn never_panics_and_errors_point_into_the_source(src in dockerfile(), build_args in args()) {
        if let Ok(ast) = parser::parse(&src) {
            if let Err(e) = stages::stages(&ast, &src, &build_args, &StageOptions::default()) {
                prop_assert!(e.span.start <= e.span.end && e.span.end <= src.len(), "{e:?} in {src:?}");
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

#[test]
fn most_fragments_reach_the_stage_layer() {
    let mut resolved = 0;
    for fragment in FRAGMENTS {
        let src = format!("FROM a AS s1\n{fragment}\n");
        if let Ok(ast) = parser::parse(&src) {
            let args = BTreeMap::from([("B".to_owned(), "busybox".to_owned())]);
            resolved +=
                usize::from(stages::stages(&ast, &src, &args, &StageOptions::default()).is_ok());
        }
    }
    // The fragments mix good and broken lines; the generator above must exercise both.
    assert!(resolved >= 10, "only {resolved} fragments resolved");
    assert!(resolved < FRAGMENTS.len(), "no fragment failed");
}
