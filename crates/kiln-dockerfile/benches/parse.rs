//! Parser throughput on a generated 5,000-line multi-stage Dockerfile.

use kiln_dockerfile::parser::parse;

fn main() {
    divan::main();
}

/// Repeats a realistic mix of instructions (continuations, JSON, ENV pairs, heredocs) until
/// the file has at least `lines` lines.
fn generated(lines: usize) -> String {
    let block = "\
# syntax comment
FROM alpine:3.19 AS stage
ARG VERSION=1.2.3 OTHER
ENV PATH=/usr/local/bin:$PATH LANG=C.UTF-8 \\
    HOME=/root
LABEL org.opencontainers.image.title=\"kiln\" maintainer=me
RUN --mount=type=cache,target=/var/cache/apk apk add --no-cache \\
    curl \\
    git \\
    make
COPY --from=builder --chown=1000:1000 [\"/src/out\", \"/app\"]
RUN <<EOF
set -eux
echo building $VERSION
EOF
WORKDIR /app
EXPOSE 80/tcp 443/tcp
HEALTHCHECK --interval=30s CMD [\"/app/health\", \"--quiet\"]
ENTRYPOINT [\"/app/run\"]
CMD --help

";
    let per_block = block.lines().count();
    block.repeat(lines.div_ceil(per_block))
}

#[divan::bench]
fn parse_5000_lines(bencher: divan::Bencher) {
    let source = generated(5_000);
    bencher
        .counter(divan::counter::BytesCount::of_str(&source))
        .bench(|| parse(divan::black_box(&source)).map(|ast| ast.nodes.len()));
}
