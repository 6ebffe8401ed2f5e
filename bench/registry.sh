#!/usr/bin/env bash
# bench/registry.sh — `kiln push` / `kiln pull` vs `skopeo copy` and `docker push` / `docker pull` of a ~500 MB
# image against a local docker-registry (distribution 2.8) on 127.0.0.1.
#
#   bench/registry.sh
#   N=3 REG_ENGINES="kiln skopeo docker20" SCALE=0.1 bench/registry.sh
#
# The image: the same deterministic docker-archive load-save.sh uses (bench/mkimage.py, seed 42, ~516 MB),
# loaded once (untimed) into a kiln store; docker20 loads (untimed, before each run) kiln's docker-archive of it
# named REGISTRY/bench/big:1 only, so the daemon's bench/big:1 (load-save.sh's) is never touched.
# Per run and engine (engines interleaved, order rotating), each against a FRESH registry (new storage, so no
# blob is already there), two timed operations:
#   push  kiln: `kiln push REG/bench/big:1`; skopeo: `skopeo copy oci-archive:(kiln save --format oci)
#         docker://REG/bench/big:1`; docker: `docker push REG/bench/big:1` (after `docker tag`)
#   pull  kiln: `kiln pull` into an empty store; skopeo: `skopeo copy docker://... oci:EMPTY_DIR`;
#         docker: `docker pull` after `docker rmi` of the image (so its layers are really gone)
# Every pull fetches the image as kiln pushed it (kiln pushes it over the other engines' push, untimed).
# `sync` runs (untimed) before each operation. Reports medians and kiln/reference ratios (below 1.00x = kiln is
# faster). No fixed target.
source "$(dirname "$0")/lib.sh"
need_root; ensure_tools

ENGINES=(${REG_ENGINES:-kiln skopeo docker20})
SCALE=${SCALE:-1.0}
REF=bench/big:1
IMG=$BENCH_WORK/big-image.tar; [ "$SCALE" = 1.0 ] || IMG=$BENCH_WORK/big-image-x$SCALE.tar
W=$BENCH_WORK/registry
KSRC=$W/kiln-src
OCI=$W/big-oci.tar
DTAR=$W/big-docker.tar
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_WORK/results; mkdir -p "$RES" "$W"; CSV=$RES/registry-$STAMP.csv
echo "op,engine,run,seconds,status" >"$CSV"

for tool in docker-registry skopeo; do command -v $tool >/dev/null || die "$tool is missing: apt-get install $tool"; done
kiln_has push || die "$(kiln_missing_reason push)"
if [ ! -f "$IMG" ]; then
  log "making $IMG (deterministic, seed 42, scale $SCALE)"
  python3 "$BENCH_HOME/mkimage.py" "$IMG" --ref "$REF" --seed 42 --scale "$SCALE"
fi
IMG_MB=$(( $(stat -c %s "$IMG") / 1000000 ))

# ---------------------------------------------------------------- the registry
REG_PID=""
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
stop_registry() { [ -z "$REG_PID" ] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; REG_PID=""; }; }
# fresh_registry : restarts the registry on $PORT with empty storage
fresh_registry() {
  stop_registry; rm -rf "$W/storage"
  cat >"$W/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/storage
http:
  addr: $REG
  secret: kiln-bench
EOF
  docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
  REG_PID=$!
  local i; for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0; sleep 0.1; done
  die "docker-registry did not start (log: $W/registry.log)"
}
trap stop_registry EXIT

# ---------------------------------------------------------------- engines
TARGET=$REG/$REF
# push_ENGINE / pull_ENGINE: the timed commands; the registry holds the image before each pull
push_kiln()   { "$KILN" --root "$KSRC" push "$TARGET"; }
pull_kiln()   { rm -rf "$W/kiln-dst"; sync; timed "$1" "$KILN" --root "$W/kiln-dst" pull "$TARGET"; }
push_skopeo() { skopeo copy -q --dest-tls-verify=false "oci-archive:$OCI" "docker://$TARGET"; }
pull_skopeo() { rm -rf "$W/skopeo-dst"; sync; timed "$1" skopeo copy -q --src-tls-verify=false "docker://$TARGET" "oci:$W/skopeo-dst"; }
push_docker20() { "$DOCKER" push "$TARGET"; }
pull_docker20() { "$DOCKER" rmi -f "$TARGET" >/dev/null 2>&1 || true; sync; timed "$1" "$DOCKER" pull "$TARGET"; }

log "preparing: kiln load, kiln save (oci for skopeo, docker-archive named $TARGET for docker)"
rm -rf "$KSRC"; "$KILN" --root "$KSRC" load -q -i "$IMG" >/dev/null
"$KILN" --root "$KSRC" tag "$REF" "$TARGET"
"$KILN" --root "$KSRC" save --format oci -o "$OCI" "$TARGET"
"$KILN" --root "$KSRC" save -o "$DTAR" "$TARGET"
if [[ " ${ENGINES[*]} " == *" docker20 "* ]]; then ensure_host_docker || die "the host dockerd did not start"; fi

declare -A SAMPLES=()
# one_run ENGINE RUN : fresh registry, timed push, timed pull
one_run() {
  local e=$1 r=$2 lf
  fresh_registry
  [ "$e" != docker20 ] || "$DOCKER" load -q -i "$DTAR" >/dev/null
  lf=$LOGS/reg-push-$e-$r.log; sync
  if timed "$lf" "push_$e"; then SAMPLES[push|$e]+=" $T"; echo "push,$e,$r,$T,ok" >>"$CSV"
  else show_failure "push $e run $r" "$lf"; echo "push,$e,$r,$T,fail" >>"$CSV"; return 0; fi
  [ "$e" = kiln ] || "$KILN" --root "$KSRC" push "$TARGET" >/dev/null 2>&1 || true
  lf=$LOGS/reg-pull-$e-$r.log
  if "pull_$e" "$lf"; then SAMPLES[pull|$e]+=" $T"; echo "pull,$e,$r,$T,ok" >>"$CSV"
  else show_failure "pull $e run $r" "$lf"; echo "pull,$e,$r,$T,fail" >>"$CSV"; fi
  [ "$e" != docker20 ] || "$DOCKER" rmi -f "$TARGET" >/dev/null 2>&1 || true
}

for ((r = 1; r <= N; r++)); do
  for e in $(rotate $((r - 1)) "${ENGINES[@]}"); do log "run $r/$N: $e"; one_run "$e" "$r"; done
done
stop_registry

machine_header
echo "# image: $IMG ($IMG_MB MB), registry: docker-registry on $REG (fresh storage per run)"
printf '%-6s %-10s %10s %12s\n' op engine median_s kiln/engine
for op in push pull; do
  k=$(median ${SAMPLES[$op|kiln]:-})
  for e in "${ENGINES[@]}"; do
    m=$(median ${SAMPLES[$op|$e]:-})
    printf '%-6s %-10s %10s %12s\n' "$op" "$e" "$m" "$(x "$(ratio "$k" "$m")")"
  done
done
echo "# raw: $CSV"
