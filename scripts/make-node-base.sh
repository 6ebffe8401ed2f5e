#!/usr/bin/env bash
# Makes a Node.js base rootfs for kiln's seed tests (the tutorials' `FROM node:…` stages) without
# Docker Hub: the busybox base of ../shared/conformance/make-bases.sh plus this machine's own node and
# npm, the shared libraries node links, and the host's CA bundle (HTTPS here passes a re-signing proxy).
#   make-node-base.sh OUTDIR      writes OUTDIR/node.tar (needs OUTDIR/busybox.tar; skips if node.tar exists)
# Import it as the tests do:
#   kiln import node.tar lab/node:20 --change 'CMD ["node"]' \
#     --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
#     --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
set -euo pipefail
OUT=${1:?usage: make-node-base.sh OUTDIR}
[ -f "$OUT/node.tar" ] && exit 0
[ -f "$OUT/busybox.tar" ] || { echo "make-node-base: $OUT/busybox.tar is missing" >&2; exit 1; }
node=$(readlink -f "$(command -v node)") || { echo "make-node-base: node is not installed" >&2; exit 1; }
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
[ -f "$npm_dir/bin/npm-cli.js" ] || { echo "make-node-base: npm not found beside node" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
R=$work/rootfs; mkdir -p "$R"
tar -C "$R" -xf "$OUT/busybox.tar"
mkdir -p "$R/usr/lib/node_modules" "$R/etc/ssl/certs"
cp "$node" "$R/usr/bin/node"
cp -a "$npm_dir" "$R/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/bin/npx"
# The libraries node needs, at the paths its loader looks in.
for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
cat /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/*.crt > "$R/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true
[ -s "$R/etc/ssl/certs/ca-certificates.crt" ] || { echo "make-node-base: no CA certificates on this host" >&2; exit 1; }
tar --numeric-owner --mtime='2024-01-01 00:00:00' --sort=name -C "$R" -cf "$work/node.tar" .
mv "$work/node.tar" "$OUT/node.tar"
