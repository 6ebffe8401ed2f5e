#!/usr/bin/env bash
# README's first command: builds kiln, makes the busybox base image offline, builds the two-stage
# example (examples/hello), shows the images, runs the result with docker, then prunes the builder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh busybox
cargo build --release -p kiln
export KILN_ROOT=${KILN_ROOT:-/var/lib/kiln-demo}
kiln() { target/release/kiln "$@"; }
BASES=${KILN_TEST_BASES:-/var/cache/kiln-test/bases}

if ! kiln inspect lab/busybox:1 >/dev/null 2>&1; then
  kiln import "$BASES/busybox.tar" lab/busybox:1 \
    --change 'CMD ["sh"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
fi
kiln outline examples/hello
kiln build -t hello:demo --build-arg GREETING=hello examples/hello
kiln images -a

archive=$(mktemp --suffix=.tar); trap 'rm -f "$archive"' EXIT
kiln save -o "$archive" hello:demo
docker load -i "$archive" >/dev/null
docker run --rm hello:demo
docker rmi hello:demo >/dev/null
kiln image prune -f --filter label=stage=builder
