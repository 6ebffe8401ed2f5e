#!/usr/bin/env bash
# bench/rebuild.sh — rebuilds with the engines' caches on: kiln vs BuildKit 26 vs buildah, as ratios.
#
#   bench/rebuild.sh [CASE...]          (default: every case in $CASES, then big-context)
#   N=5 ENGINES="kiln bk26 buildah" MODES="warm incr" bench/rebuild.sh
#   N=1 ENGINES=kiln bench/rebuild.sh big-context
#
# Each engine builds from its own copy of the case's context (under $BENCH_WORK/ctx/rebuild/CASE/ENGINE).
# One untimed build first fills the engine's cache. Then, per mode, N timed builds interleaved engine by engine:
#   warm  nothing changed since the previous build;
#   incr  one file changed: before each timed build a line is appended to the file named by INCR= in the case's
#         case.env (a comment in .c/.js/.sh files), with new content every run, so each timed build sees exactly
#         one file changed since the build before it.
# No --no-cache anywhere: this measures each engine's cache. kiln's peak RSS (GNU time %M) is reported too.
# big-context is generated (untimed, once) under $BENCH_WORK/generated: 20,000 small files and three 50 MB files,
# COPYed by two steps, so rebuilds measure how fast an engine finds a big context unchanged (warm) or one small
# file changed (incr).
# Targets: geometric mean of kiln/BK26 over the conformance cases <= 0.25 (warm) and <= 0.5 (one file changed);
# big-context warm kiln/BK26 <= 0.3.
source "$(dirname "$0")/lib.sh"
need_root; ensure_tools

ENGINES=(${ENGINES:-kiln bk26 buildah})
MODE_LIST=(${MODES:-warm incr})
BIG=big-context
CASE_LIST=("$@"); [ ${#CASE_LIST[@]} -gt 0 ] || { mapfile -t CASE_LIST < <(list_cases); CASE_LIST+=("$BIG"); }

# gen_big_context : writes the big-context case once (20,000 files of 100-300 bytes in 100 directories, three
# 50 MB files of seeded pseudo-random bytes: the same content every time); a finished case has a .complete mark.
gen_big_context() {
  local dir=$GENERATED/$BIG
  [ -f "$dir/.complete" ] && return 0
  log "== generating $BIG in $dir (untimed)"
  rm -rf "$dir"; mkdir -p "$dir/context"
  python3 - "$dir/context" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(20000)
for i in range(20000):
    d = os.path.join(root, "src", f"m{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.js"), "w") as f:
        f.write(f"// module {i}\n" + "x" * rng.randrange(100, 300) + "\n")
with open(os.path.join(root, "src", "app.js"), "w") as f:
    f.write("console.log('big-context');\n")
os.makedirs(os.path.join(root, "assets"))
for n in range(3):
    r = random.Random(n)
    with open(os.path.join(root, "assets", f"blob{n}.bin"), "wb") as f:
        for _ in range(50):
            f.write(r.randbytes(1 << 20))
PY
  printf '%s\n' 'FROM lab/busybox:1' 'WORKDIR /app' 'COPY assets/ ./assets/' 'COPY src/ ./src/' \
    'RUN find src -type f | wc -l > /app/files' >"$dir/context/Dockerfile"
  echo "INCR=src/app.js" >"$dir/case.env"
  touch "$dir/.complete"
}
for c in "${CASE_LIST[@]}"; do if [ "$c" = "$BIG" ]; then gen_big_context; fi; done
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
  [ -f "$(case_dir "$c")/context/Dockerfile" ] || die "no case $c in $CASES (nor a generated one)"
  incr=$(case_var "$c" INCR)
  log "== $c: first build per engine (untimed, fills the cache)"
  for e in "${ACTIVE[@]}"; do
    ctx=$BENCH_WORK/ctx/rebuild/$c/$e; rm -rf "$ctx"; mkdir -p "$(dirname "$ctx")"; cp -a "$(case_dir "$c")/context" "$ctx"
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
  ratios_bk=() big_bk=
  for c in "${CASE_LIST[@]}"; do
    [ "$m" = incr ] && [ -z "$(case_var "$c" INCR)" ] && continue
    row=$(printf '%-18s' "$c"); [ "$c" = "$BIG" ] && big_bk=-
    for e in "${ENGINES[@]}"; do
      if has "$e"; then row+=$(printf ' %9s' "$(med "$m" "$c" "$e")"); else row+=$(printf ' %9s' skipped); fi
    done
    k=$(num "$(has kiln && med "$m" "$c" kiln || echo -)")
    for e in "${ENGINES[@]}"; do
      [ "$e" = kiln ] && continue
      o=$(num "$(has "$e" && med "$m" "$c" "$e" || echo -)")
      rt=$(ratio "$k" "$o"); row+=$(printf ' %13s' "$(x "$rt")")
      if [ "$e" = bk26 ]; then if [ "$c" = "$BIG" ]; then big_bk=$rt; else ratios_bk+=("$rt"); fi; fi
    done
    pk=$(maxnum ${RSS[$m|$c]:-}); allpeak+=("$pk")
    row+=$(printf ' %7s MB' "$(kb_to_mb "$pk")")
    echo "$row"
  done
  gm=$(geomean "${ratios_bk[@]}")
  if [ "$gm" = - ]; then echo "geometric mean kiln/BK26 (conformance cases): -   target <= ${target}x: NOT MEASURED"
  else echo "geometric mean kiln/BK26 (conformance cases): ${gm}x   target <= ${target}x: $(verdict le "$gm" "$target")"; fi
  if [ "$m" = warm ] && [ -n "$big_bk" ]; then
    if [ "$big_bk" = - ]; then echo "$BIG kiln/BK26: -   target <= 0.3x: NOT MEASURED"
    else echo "$BIG kiln/BK26: ${big_bk}x   target <= 0.3x: $(verdict le "$big_bk" 0.3)"; fi
  fi
done
echo
pk=$(maxnum "${allpeak[@]}")
if [ "$pk" = - ]; then echo "kiln peak RSS: -"; else echo "kiln peak RSS: $(kb_to_mb "$pk") MB (target < 150 MB: $(verdict lt "$pk" $((150 * 1024))))"; fi
echo "raw samples: $CSV"
