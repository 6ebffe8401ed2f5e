#!/usr/bin/env bash
# Regenerates the ground truth of kiln's own conformance cases (crates/kiln-build/tests/cases/<name>/expected.json)
# with BuildKit: each case's context is copied with the modes a git checkout gives (files 0644 or 0755, dirs 0755),
# built with `DOCKER_BUILDKIT=1 docker build` on lab/busybox:1 (imported as make-bases.sh's header says), saved with
# `docker save` and flattened by snapshot.py.
#   scripts/regen-cases.sh [CASE ...]        (default: every case)
# A case whose case.env says DOCKER=26 needs BuildKit 0.13 (heredocs, --link, supplementary groups): it is built
# by docker 26.1.5 from ../shared/reference/buildkit26.sh (started if not running); the others by the host's
# docker.io 20.10. Needs root, docker, python3 and the busybox base tarball (KILN_TEST_BASES).
set -euo pipefail
docker() { /usr/bin/docker "$@"; }   # Debian's client: BuildKit without buildx
REPO=$(cd "$(dirname "$0")/.." && pwd)
CASES=$REPO/crates/kiln-build/tests/cases
SNAPSHOT=$REPO/crates/kiln-build/tests/data/conformance/snapshot.py
BASES=${KILN_TEST_BASES:-/var/cache/kiln-test/bases}
BK26=${BK26:-$REPO/../shared/reference/buildkit26.sh}
[ -x "$BK26" ] || BK26=/work/shared/reference/buildkit26.sh
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# docker_for CASE_ENV -> prints the DOCKER_HOST to use (empty: the host daemon).
docker_for() {
  if grep -qx 'DOCKER=26' "$1" 2>/dev/null; then
    "$BK26" start >&2
    echo "unix:///var/tmp/lab/trixie/root/var/lib/docker-lab.sock"
  fi
}

ensure_base() {
  docker image inspect lab/busybox:1 >/dev/null 2>&1 && return
  docker import --change 'CMD ["sh"]' --change "$PATH_ENV" "$BASES/busybox.tar" lab/busybox:1 >/dev/null
}

regen() {
  local name=$1 dir=$CASES/$1 ctx=$work/$1
  rm -rf "$ctx"; cp -a "$dir/context" "$ctx"
  find "$ctx" -type d -exec chmod 0755 {} +
  find "$ctx" -type f ! -perm -u+x -exec chmod 0644 {} +
  find "$ctx" -type f -perm -u+x -exec chmod 0755 {} +
  local target; target=$(sed -n 's/^TARGET=//p' "$dir/case.env" 2>/dev/null || true)
  local host; host=$(docker_for "$dir/case.env")
  (
    [ -n "$host" ] && export DOCKER_HOST=$host
    ensure_base
    DOCKER_BUILDKIT=1 docker build --network=none -q ${target:+--target "$target"} -t "kiln-case/$name:latest" "$ctx" >/dev/null
    docker save -o "$work/$name.tar" "kiln-case/$name:latest"
    docker rmi "kiln-case/$name:latest" >/dev/null
  )
  python3 "$SNAPSHOT" "$work/$name.tar" --out "$dir/expected.json"
  echo "$name: $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["layers"], "layers,", s["file_count"], "paths")' "$dir/expected.json")"
}

if [ $# -eq 0 ]; then set -- $(ls "$CASES"); fi
for c in "$@"; do regen "$c"; done
