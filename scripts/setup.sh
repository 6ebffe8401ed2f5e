#!/usr/bin/env bash
# Installs and starts what kiln's tests and demo need on a fresh Debian 12 machine (idempotent):
# system packages, a running dockerd (a real client of kiln's output), and the test base rootfs.
#   scripts/setup.sh [busybox|debian|gcc|node ...]   (default: all four bases)
set -euo pipefail
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=(busybox debian gcc node)
cd "$(dirname "$0")/.."

PACKAGES=(docker.io runc skopeo umoci busybox-static debootstrap docker-registry apache2-utils openssl python3 pkg-config iproute2)
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  mkdir -p /var/log/kiln-ci
  nohup /usr/sbin/dockerd >/var/log/kiln-ci/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/kiln-ci/dockerd.log; echo "setup: dockerd did not start" >&2; exit 1; }
fi

# Base rootfs tarballs, made offline by the conformance kit's script and cached across runs.
BASES=${KILN_TEST_BASES:-/var/cache/kiln-test/bases}
SHARED=${KILN_SHARED:-$(cd .. && pwd)/shared}
declare -A TARBALL=([busybox]=busybox.tar [debian]=debian-bookworm-minbase.tar [gcc]=gcc12.tar)
for base in "${WANT[@]}"; do
  if [ "$base" = node ]; then
    # Node.js for the tutorials' npm workflow: busybox plus this machine's node and npm.
    [ -f "$BASES/busybox.tar" ] || bash "$SHARED/conformance/make-bases.sh" "$BASES" busybox >/dev/null
    scripts/make-node-base.sh "$BASES"
  elif [ ! -f "$BASES/${TARBALL[$base]}" ]; then
    echo "setup: making the $base base rootfs into $BASES (debootstrap takes minutes, once)"
    bash "$SHARED/conformance/make-bases.sh" "$BASES" "$base" >/dev/null
  fi
done
