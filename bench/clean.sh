#!/usr/bin/env bash
# bench/clean.sh — removes what the bench scripts left: the bench/* images in the host docker, docker 26 (if
# running) and buildah, and the scratch directory $BENCH_WORK (kiln stores, context copies, the big image,
# logs). Keeps $BENCH_WORK/results unless ALL=1. Never stops a daemon; never prunes anything but bench/* tags.
source "$(dirname "$0")/lib.sh"
need_root
for h in "$HOST_DOCKER" "unix:///var/tmp/lab/trixie/root/var/lib/docker-lab.sock"; do
  docker_up "$h" || continue
  imgs=$(docker_at "$h" images --format '{{.Repository}}:{{.Tag}}' | grep '^bench/' || true)
  [ -n "$imgs" ] && docker_at "$h" rmi -f $imgs >/dev/null && echo "removed $(wc -w <<<"$imgs") bench/* images from $h"
done
if command -v buildah >/dev/null; then
  imgs=$(buildah images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/bench/' || true)
  [ -n "$imgs" ] && buildah rmi -f $imgs >/dev/null && echo "removed $(wc -w <<<"$imgs") bench/* images from buildah"
fi
if [ "${ALL:-0}" = 1 ]; then rm -rf "$BENCH_WORK"; else find "$BENCH_WORK" -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +; fi
echo "cleaned $BENCH_WORK$([ "${ALL:-0}" = 1 ] || echo ' (results kept)')"
