//! Linting never panics: Dockerfiles assembled from tricky fragments either lint or fail with
//! an error, and the findings always point inside the source.

use kiln_dockerfile::lint::{LintOptions, lint, render_json, render_text};
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "FROM scratch",
    "from alpine AS Build",
    "FROM --platform=$TARGETPLATFORM busybox:${TAG:-1} as b2",
    "FROM --platform=linux/amd64 b2",
    "ARG TAG",
    "ARG A=$B C",
    "ENV k v",
    "ENV PATH=$PAHT:/x",
    "LABEL a b",
    "WORKDIR rel/${X}",
    "EXPOSE 1:2:3/TCP $P",
    "COPY --from=$S a b",
    "COPY --chown=1 . .",
    "ADD https://x/y /z",
    "RUN --mount=type=cache,from=${F},target=/c chown -R a /z && chmod -R 7 .",
    "RUN <<EOF\nchown -R x /\nEOF",
    "CMD run",
    "CMD [\"a\"]",
    "ENTRYPOINT x",
    "HEALTHCHECK CMD true",
    "SHELL [\"/bin/sh\", \"-c\"]",
    "MAINTAINER me",
    "ONBUILD RUN x",
    "# check=error=true",
    "#check=skip=all;experimental=all",
    "COPY a \\\n\nb",
    "éÉ \u{feff} \t",
    "",
];

fn dockerfile() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 1..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fragments_never_panic(source in dockerfile()) {
        let opts = LintOptions { dockerignore: Some(vec!["a".into(), "!b".into()]), ..LintOptions::default() };
        if let Ok(report) = lint(&source, &opts) {
            for f in &report.findings {
                prop_assert!(f.span.start <= f.span.end && f.span.end <= source.len(), "{f:?}");
                prop_assert!(f.line >= 1 && f.end_line >= f.line);
            }
            let _ = render_text(&report, "Dockerfile", &source);
            let _ = render_json(&report, "Dockerfile");
        }
    }

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,200}") {
        let _ = lint(&source, &LintOptions::default());
    }
}
