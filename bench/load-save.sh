#!/usr/bin/env bash
# bench/load-save.sh — `kiln load` / `kiln save` vs `docker load` / `docker save` on a ~500 MB image.
#
#   bench/load-save.sh
#   N=5 LS_ENGINES="kiln docker20 docker26" SCALE=1.0 bench/load-save.sh
#
# The image: bench/mkimage.py writes $BENCH_WORK/big-image.tar once (cached), a docker-archive of 4 layers of
# pseudo-random files (seed 42): 1 x 200 MiB, 64 x 2 MiB, 1024 x 100 KiB, 4096 x 16 KiB (~516 MB). SCALE
# shrinks it for a quick try (SCALE=0.1 -> ~52 MB).
# Per run and engine (engines interleaved, order rotating), untimed cleanup first, then two timed operations:
#   load  kiln: `kiln --root FRESH load -i big-image.tar` into an empty store;
#         docker: `docker load -i big-image.tar` after `docker rmi` of the image (so its layers are really gone);
#   save  `kiln save -o OUT bench/big:1` / `docker save -o OUT bench/big:1` (OUT removed first).
# `sync` runs (untimed) before each operation, so one engine's writeback is not charged to the next.
# docker20 = the host's docker 20.10 daemon; docker26 = buildkit26.sh's docker 26.1.5 (skipped if it won't start).
# Reports medians, kiln/docker ratios and kiln's peak RSS (GNU time %M). No fixed target: ratios and RSS are printed.
source "$(dirname "$0")/lib.sh"
need_root; ensure_tools

ENGINES=(${LS_ENGINES:-kiln docker20 docker26})
SCALE=${SCALE:-1.0}
REF=bench/big:1
IMG=$BENCH_WORK/big-image.tar; [ "$SCALE" = 1.0 ] || IMG=$BENCH_WORK/big-image-x$SCALE.tar
OUT=$BENCH_WORK/ls-out
KROOT=$BENCH_WORK/kiln-ls-store
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_WORK/results; mkdir -p "$RES" "$OUT"; CSV=$RES/load-save-$STAMP.csv
echo "op,engine,run,seconds,peak_rss_kb,status" >"$CSV"

if [ ! -f "$IMG" ]; then
  log "making $IMG (deterministic, seed 42, scale $SCALE)"
  python3 "$BENCH_HOME/mkimage.py" "$IMG" --ref "$REF" --seed 42 --scale "$SCALE"
fi
IMG_MB=$(( $(stat -c %s "$IMG") / 1000000 ))

declare -A SKIP=() HOSTOF=()
for e in "${ENGINES[@]}"; do
  case $e in
  kiln)
    kiln_has load || { SKIP[$e]=$(kiln_missing_reason load); continue; }
    kiln_has save || SKIP[$e]=$(kiln_missing_reason save) ;;
  docker20) if ensure_host_docker; then HOSTOF[$e]=$HOST_DOCKER; else SKIP[$e]="the host dockerd did not start"; fi ;;
  docker26) if ensure_bk26; then HOSTOF[$e]=$BK26_HOST; else SKIP[$e]="docker 26 did not start ($BK26_SCRIPT start)"; fi ;;
  *) die "unknown engine $e (kiln, docker20, docker26)" ;;
  esac
done
ACTIVE=(); for e in "${ENGINES[@]}"; do [ -n "${SKIP[$e]:-}" ] && log "SKIP $e: ${SKIP[$e]}" || ACTIVE+=("$e"); done
[ ${#ACTIVE[@]} -gt 0 ] || die "no engine can run"

# one_run ENGINE RUN : untimed cleanup, timed load, timed save
declare -A SAMPLES=() RSS=() FAILED=()
one_run() {
  local e=$1 r=$2 lf op
  for op in load save; do
    [ -n "${FAILED[$op|$e]:-}" ] && continue
    [ "$op" = save ] && [ -n "${FAILED[load|$e]:-}" ] && continue
    lf=$LOGS/ls-$op-$e-$r.log
    rm -f "$OUT/$e.tar"
    if [ "$op" = load ]; then
      if [ "$e" = kiln ]; then rm -rf "$KROOT"; mkdir -p "$KROOT"
      else docker_at "${HOSTOF[$e]}" rmi -f "$REF" >/dev/null 2>&1 || true; fi
    fi
    sync
    local ok=0
    case $e:$op in
    kiln:load) timed_rss "$lf" "$KILN" --root "$KROOT" load -i "$IMG" && ok=1 ;;
    kiln:save) timed_rss "$lf" "$KILN" --root "$KROOT" save -o "$OUT/$e.tar" "$REF" && ok=1 ;;
    *:load)    RSS_KB=-; timed "$lf" docker_at "${HOSTOF[$e]}" load -i "$IMG" && ok=1 ;;
    *:save)    RSS_KB=-; timed "$lf" docker_at "${HOSTOF[$e]}" save -o "$OUT/$e.tar" "$REF" && ok=1 ;;
    esac
    if [ $ok = 1 ] && [ "$op" = save ] && [ ! -s "$OUT/$e.tar" ]; then echo "no output archive" >>"$lf"; ok=0; fi
    if [ $ok = 1 ]; then
      SAMPLES[$op|$e]+="$T "; [ "$e" = kiln ] && RSS[$op]+="$RSS_KB "
      echo "$op,$e,$r,$T,$RSS_KB,ok" >>"$CSV"; line+=" $e-$op ${T}s"
    else
      show_failure "$e $op (run $r)" "$lf"; FAILED[$op|$e]=1; echo "$op,$e,$r,$T,$RSS_KB,failed" >>"$CSV"
    fi
    [ "${KEEP_LOGS:-0}" = 1 ] || rm -f "$lf" "$lf.rss"
  done
}

# untimed warm-up: one load per engine (page cache holds the input archive for everyone alike)
cat "$IMG" >/dev/null
for ((r = 1; r <= N; r++)); do
  line="   run $r:"
  for e in $(rotate "$r" "${ACTIVE[@]}"); do one_run "$e" "$r"; done
  log "$line"
done

# check the last kiln save loads into docker (untimed): the archive kiln writes must be a real docker-archive
check=""
if [ -s "$OUT/kiln.tar" ] && [ -n "${HOSTOF[docker20]:-}" ]; then
  docker_at "$HOST_DOCKER" rmi -f "$REF" >/dev/null 2>&1 || true
  if docker_at "$HOST_DOCKER" load -i "$OUT/kiln.tar" >/dev/null 2>"$LOGS/ls-check.log"; then check="docker 20.10 loads kiln's saved archive: yes"
  else check="docker 20.10 loads kiln's saved archive: NO ($(tail -1 "$LOGS/ls-check.log"))"; fi
fi

med() { if [ -n "${FAILED[$1|$2]:-}" ]; then echo FAIL; elif [ -n "${SKIP[$2]:-}" ]; then echo skipped; else median ${SAMPLES[$1|$2]:-}; fi; }
num() { case $1 in FAIL|skipped|-) echo -;; *) echo "$1";; esac; }
echo
echo "## kiln load-save.sh — $IMG_MB MB docker-archive ($REF, 4 layers, 5185 files), seconds (median of $N)"
machine_header
for e in "${!SKIP[@]}"; do echo "#   SKIPPED $e: ${SKIP[$e]}"; done
hdr=$(printf '%-6s' op); for e in "${ENGINES[@]}"; do hdr+=$(printf ' %9s' "$e"); done
for e in "${ENGINES[@]}"; do [ "$e" = kiln ] || hdr+=$(printf ' %14s' "kiln/$e"); done
hdr+=$(printf ' %14s' "kiln peak RSS"); echo "$hdr"
for op in load save; do
  row=$(printf '%-6s' "$op"); for e in "${ENGINES[@]}"; do row+=$(printf ' %9s' "$(med "$op" "$e")"); done
  k=$(num "$(med "$op" kiln)")
  for e in "${ENGINES[@]}"; do [ "$e" = kiln ] || row+=$(printf ' %14s' "$(x "$(ratio "$k" "$(num "$(med "$op" "$e")")")")"); done
  row+=$(printf ' %11s MB' "$(kb_to_mb "$(maxnum ${RSS[$op]:-})")")
  echo "$row"
done
[ -n "$check" ] && echo "$check"
echo "(no fixed target for load/save: ratios below 1.00x mean kiln is faster)"
echo "raw samples: $CSV"
# leave the daemons as found: the benchmark image is removed from them
for e in "${ACTIVE[@]}"; do [ -n "${HOSTOF[$e]:-}" ] && docker_at "${HOSTOF[$e]}" rmi -f "$REF" >/dev/null 2>&1 || true; done
rm -rf "$OUT"
