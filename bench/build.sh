#!/usr/bin/env bash
# bench/build.sh — cold builds of the conformance cases: kiln vs BuildKit 26 vs buildah, as ratios.
#
#   bench/build.sh [CASE...]            (default: every case in $CASES)
#   N=5 ENGINES="kiln bk26 buildah" KILN_COLD=nocache|fresh bench/build.sh
#
# Each run is a cold build: `--no-cache` for every engine, and cache mounts wiped before each run (untimed).
# KILN_COLD=nocache (default) keeps one kiln store with the bases (like the daemons keep their image stores);
# KILN_COLD=fresh copies a bases-only store before every kiln run. One untimed warm-up build per engine and case
# comes first (it checks the case builds and lets every engine unpack its bases). Engines are interleaved run by
# run, and the order rotates, so machine noise hits them alike. Medians of wall-clock seconds; kiln's peak RSS
# (GNU time %M) is the maximum over its runs.
# Targets: geometric mean of kiln/BK26 <= 0.6 and no case slower than BK26; `parallel` <= 3.15 s; peak RSS < 150 MB.
source "$(dirname "$0")/lib.sh"
need_root; ensure_tools

ENGINES=(${ENGINES:-kiln bk26 buildah})
CASE_LIST=("$@"); [ ${#CASE_LIST[@]} -gt 0 ] || mapfile -t CASE_LIST < <(list_cases)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_WORK/results; mkdir -p "$RES"; CSV=$RES/build-$STAMP.csv
echo "case,engine,run,seconds,peak_rss_kb,status" >"$CSV"

for e in "${ENGINES[@]}"; do engine_setup "$e"; done
ACTIVE=()
for e in "${ENGINES[@]}"; do
  if [ -n "${ENGINE_SKIP[$e]:-}" ]; then log "SKIP $e: ${ENGINE_SKIP[$e]}"; else ACTIVE+=("$e"); fi
done
[ ${#ACTIVE[@]} -gt 0 ] || die "no engine can run"

declare -A SAMPLES=() RSS=() FAILED=()
for c in "${CASE_LIST[@]}"; do
  [ -f "$CASES/$c/context/Dockerfile" ] || die "no case $c in $CASES"
  ctx=$BENCH_WORK/ctx/build/$c; rm -rf "$ctx"; mkdir -p "$(dirname "$ctx")"; cp -a "$CASES/$c/context" "$ctx"
  log "== $c: warm-up build per engine (untimed)"
  for e in "${ACTIVE[@]}"; do
    engine_cold_prep "$e" "$c"
    lf=$LOGS/build-$c-$e-warmup.log
    if ! engine_build "$e" "$c" "$ctx" 1 "$lf"; then show_failure "$e warm-up build of $c" "$lf"; FAILED[$c|$e]=1; fi
  done
  for ((r = 1; r <= N; r++)); do
    line="   run $r:"
    for e in $(rotate "$r" "${ACTIVE[@]}"); do
      [ -n "${FAILED[$c|$e]:-}" ] && continue
      engine_cold_prep "$e" "$c"
      lf=$LOGS/build-$c-$e-$r.log
      if engine_build "$e" "$c" "$ctx" 1 "$lf"; then
        SAMPLES[$c|$e]+="$T "; [ "$e" = kiln ] && RSS[$c]+="$RSS_KB "
        echo "$c,$e,$r,$T,$RSS_KB,ok" >>"$CSV"; line+=" $e ${T}s"
      else
        show_failure "$e build of $c (run $r)" "$lf"; FAILED[$c|$e]=1
        echo "$c,$e,$r,$T,$RSS_KB,failed" >>"$CSV"
      fi
      [ "${KEEP_LOGS:-0}" = 1 ] || rm -f "$lf" "$lf.rss"
    done
    log "$line"
  done
done

# ---------------------------------------------------------------- report
has() { local x; for x in "${ACTIVE[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
med() { if [ -n "${FAILED[$1|$2]:-}" ]; then echo FAIL; else median ${SAMPLES[$1|$2]:-}; fi; }
num() { case $1 in FAIL|-) echo -;; *) echo "$1";; esac; }

echo
echo "## kiln build.sh — cold builds (--no-cache), seconds (median of $N)"
machine_header
[ ${#ENGINE_SKIP[@]} -gt 0 ] && for e in "${!ENGINE_SKIP[@]}"; do echo "#   SKIPPED $e: ${ENGINE_SKIP[$e]}"; done
hdr=$(printf '%-18s' case); for e in "${ENGINES[@]}"; do hdr+=$(printf ' %9s' "$(engine_label "$e")"); done
for e in "${ENGINES[@]}"; do [ "$e" = kiln ] || hdr+=$(printf ' %13s' "kiln/$(engine_label "$e")"); done
hdr+=$(printf ' %10s  %s' "kiln RSS" "kiln<=BK26")
echo "$hdr"
ratios_bk=(); slower=(); peak=(); par_time=-
for c in "${CASE_LIST[@]}"; do
  row=$(printf '%-18s' "$c")
  for e in "${ENGINES[@]}"; do
    if has "$e"; then row+=$(printf ' %9s' "$(med "$c" "$e")"); else row+=$(printf ' %9s' skipped); fi
  done
  k=$(num "$(has kiln && med "$c" kiln || echo -)")
  for e in "${ENGINES[@]}"; do
    [ "$e" = kiln ] && continue
    o=$(num "$(has "$e" && med "$c" "$e" || echo -)")
    row+=$(printf ' %13s' "$(x "$(ratio "$k" "$o")")")
    [ "$e" = bk26 ] && { rb=$(ratio "$k" "$o"); ratios_bk+=("$rb"); }
  done
  m=$(maxnum ${RSS[$c]:-}); peak+=("$m")
  row+=$(printf ' %7s MB' "$(kb_to_mb "$m")")
  rb=${rb:--}
  if [ "$rb" = - ]; then row+="  -"; elif le "$rb" 1.0; then row+="  PASS"; else row+="  FAIL"; slower+=("$c"); fi
  [ "$c" = parallel ] && par_time=$k
  echo "$row"; rb=-
done
echo
gm=$(geomean "${ratios_bk[@]}")
if has kiln && has bk26; then
  echo "geometric mean kiln/BK26: ${gm}x   target <= 0.60x: $(verdict le "$gm" 0.60)"
  n_meas=$(printf '%s\n' "${ratios_bk[@]}" | grep -vc '^-$' || true)
  if [ ${#slower[@]} -eq 0 ] && [ "$n_meas" = "${#CASE_LIST[@]}" ]; then echo "no case slower than BK26:       PASS"
  elif [ ${#slower[@]} -eq 0 ]; then echo "no case slower than BK26:       FAIL (only $n_meas of ${#CASE_LIST[@]} cases measured)"
  else echo "no case slower than BK26:       FAIL (${slower[*]})"; fi
else
  echo "geometric mean kiln/BK26: -   target <= 0.60x: NOT MEASURED (kiln or BK26 skipped)"
fi
if [[ " ${CASE_LIST[*]} " == *" parallel "* ]]; then
  if [ "$par_time" = - ]; then echo "parallel case: -   target <= 3.15 s: NOT MEASURED"
  else echo "parallel case: ${par_time} s   target <= 3.15 s: $(verdict le "$par_time" 3.15)"; fi
fi
pk=$(maxnum "${peak[@]}")
if [ "$pk" = - ]; then echo "kiln peak RSS: -   target < 150 MB: NOT MEASURED"
else echo "kiln peak RSS: $(kb_to_mb "$pk") MB   target < 150 MB: $(verdict lt "$pk" $((150 * 1024)))"; fi
echo "raw samples: $CSV"
