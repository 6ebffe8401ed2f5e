#!/usr/bin/env bash
# bench/rebuild.sh — rebuilds with the engines' caches on: kiln vs BuildKit 26 vs buildah, as ratios.
#
#   bench/rebuild.sh [CASE...]          (default: every case in $CASES)
#   N=5 ENGINES="kiln bk26 buildah" MODES="warm incr" bench/rebuild.sh
#
# Each engine builds from its own copy of the case's context (under $BENCH_WORK/ctx/rebuild/CASE/ENGINE).
# One untimed build first fills the engine's cache. Then, per mode, N timed builds interleaved engine by engine:
#   warm  nothing changed since the previous build;
#   incr  one file changed: before each timed build a line is appended to the file named by INCR= in the case's
#         case.env (a comment in .c/.js/.sh files), with new content every run, so each timed build sees exactly
#         one file changed since the build before it.
# No --no-cache anywhere: this measures each engine's cache. kiln's peak RSS (GNU time %M) is reported too.
# Targets: geometric mean of kiln/BK26 <= 0.25 (warm) and <= 0.5 (one file changed).
source "$(dirname "$0")/lib.sh"
need_root; ensure_tools

ENGINES=(${ENGINES:-kiln bk26 buildah})
MODE_LIST=(${MODES:-warm incr})
CASE_LIST=("$@"); [ ${#CASE_LIST[@]} -gt 0 ] || mapfile -t CASE_LIST < <(list_cases)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RES=$BENCH_WORK/results; mkdir -p "$RES"; CSV=$RES/rebuild-$STAMP.csv
echo "mode,case,engine,run,seconds,peak_rss_kb,status" >"$CSV"

for e in "${ENGINES[@]}"; do engine_setup "$e"; done
ACTIVE=()
for e in "${ENGINES[@]}"; do
  if [ -n "${ENGINE_SKIP[$e]:-}" ]; then log "SKIP $e: ${ENGINE_SKIP[$e]}"; else ACTIVE+=("$e"); fi
done
[ ${#ACTIVE[@]} -gt 0 ] || die "no engine can run"

# edit_incr FILE RUN : appends a line that changes the file's content and keeps it valid for its language
edit_incr() {
  local f=$1 r=$2 stamp="kiln-bench edit $r $$ $EPOCHREALTIME"
  case $f in
  *.c|*.h|*.js|*.ts|*.go|*.rs|*.java) echo "// $stamp" >>"$f" ;;
  *.json) die "cannot append to JSON file $f" ;;
  *) echo "# $stamp" >>"$f" ;;
  esac
}

declare -A SAMPLES=() RSS=() FAILED=()
for c in "${CASE_LIST[@]}"; do
  [ -f "$CASES/$c/context/Dockerfile" ] || die "no case $c in $CASES"
  incr=$(case_var "$c" INCR)
  log "== $c: first build per engine (untimed, fills the cache)"
  for e in "${ACTIVE[@]}"; do
    ctx=$BENCH_WORK/ctx/rebuild/$c/$e; rm -rf "$ctx"; mkdir -p "$(dirname "$ctx")"; cp -a "$CASES/$c/context" "$ctx"
    lf=$LOGS/rebuild-$c-$e-first.log
    if ! engine_build "$e" "$c" "$ctx" 0 "$lf"; then
      show_failure "$e first build of $c" "$lf"; for m in "${MODE_LIST[@]}"; do FAILED[$m|$c|$e]=1; done
    fi
  done
  for m in "${MODE_LIST[@]}"; do
    if [ "$m" = incr ] && [ -z "$incr" ]; then log "   $c has no INCR= in case.env: no one-file-changed runs"; continue; fi
    for ((r = 1; r <= N; r++)); do
      line="   $m run $r:"
      for e in $(rotate "$r" "${ACTIVE[@]}"); do
        [ -n "${FAILED[$m|$c|$e]:-}" ] && continue
        ctx=$BENCH_WORK/ctx/rebuild/$c/$e
        [ "$m" = incr ] && edit_incr "$ctx/$incr" "$r"
        sync
        lf=$LOGS/rebuild-$m-$c-$e-$r.log
        if engine_build "$e" "$c" "$ctx" 0 "$lf"; then
          SAMPLES[$m|$c|$e]+="$T "; [ "$e" = kiln ] && RSS[$m|$c]+="$RSS_KB "
          echo "$m,$c,$e,$r,$T,$RSS_KB,ok" >>"$CSV"; line+=" $e ${T}s"
        else
          show_failure "$e $m rebuild of $c (run $r)" "$lf"; FAILED[$m|$c|$e]=1
          echo "$m,$c,$e,$r,$T,$RSS_KB,failed" >>"$CSV"
        fi
        [ "${KEEP_LOGS:-0}" = 1 ] || rm -f "$lf" "$lf.rss"
      done
      log "$line"
    done
  done
done

# ---------------------------------------------------------------- report
has() { local y; for y in "${ACTIVE[@]}"; do [ "$y" = "$1" ] && return 0; done; return 1; }
med() { if [ -n "${FAILED[$1|$2|$3]:-}" ]; then echo FAIL; else median ${SAMPLES[$1|$2|$3]:-}; fi; }
num() { case $1 in FAIL|-) echo -;; *) echo "$1";; esac; }

echo
echo "## kiln rebuild.sh — rebuilds with the cache on, seconds (median of $N)"
machine_header
[ ${#ENGINE_SKIP[@]} -gt 0 ] && for e in "${!ENGINE_SKIP[@]}"; do echo "#   SKIPPED $e: ${ENGINE_SKIP[$e]}"; done
allpeak=()
for m in "${MODE_LIST[@]}"; do
  case $m in warm) title="warm rebuild, nothing changed"; target=0.25;; incr) title="one file changed (INCR=)"; target=0.50;; *) die "unknown mode $m (warm, incr)";; esac
  echo
  echo "### $title"
  hdr=$(printf '%-18s' case); for e in "${ENGINES[@]}"; do hdr+=$(printf ' %9s' "$(engine_label "$e")"); done
  for e in "${ENGINES[@]}"; do [ "$e" = kiln ] || hdr+=$(printf ' %13s' "kiln/$(engine_label "$e")"); done
  hdr+=$(printf ' %10s' "kiln RSS"); echo "$hdr"
  ratios_bk=()
  for c in "${CASE_LIST[@]}"; do
    [ "$m" = incr ] && [ -z "$(case_var "$c" INCR)" ] && continue
    row=$(printf '%-18s' "$c")
    for e in "${ENGINES[@]}"; do
      if has "$e"; then row+=$(printf ' %9s' "$(med "$m" "$c" "$e")"); else row+=$(printf ' %9s' skipped); fi
    done
    k=$(num "$(has kiln && med "$m" "$c" kiln || echo -)")
    for e in "${ENGINES[@]}"; do
      [ "$e" = kiln ] && continue
      o=$(num "$(has "$e" && med "$m" "$c" "$e" || echo -)")
      rt=$(ratio "$k" "$o"); row+=$(printf ' %13s' "$(x "$rt")")
      [ "$e" = bk26 ] && ratios_bk+=("$rt")
    done
    pk=$(maxnum ${RSS[$m|$c]:-}); allpeak+=("$pk")
    row+=$(printf ' %7s MB' "$(kb_to_mb "$pk")")
    echo "$row"
  done
  gm=$(geomean "${ratios_bk[@]}")
  if [ "$gm" = - ]; then echo "geometric mean kiln/BK26: -   target <= ${target}x: NOT MEASURED"
  else echo "geometric mean kiln/BK26: ${gm}x   target <= ${target}x: $(verdict le "$gm" "$target")"; fi
done
echo
pk=$(maxnum "${allpeak[@]}")
if [ "$pk" = - ]; then echo "kiln peak RSS: -"; else echo "kiln peak RSS: $(kb_to_mb "$pk") MB (target < 150 MB: $(verdict lt "$pk" $((150 * 1024))))"; fi
echo "raw samples: $CSV"
