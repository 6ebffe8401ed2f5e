# bench/lib.sh — helpers shared by the bench scripts (source it; it does not run anything by itself).
#
# Settings (environment, all optional):
#   N            runs per engine and measurement (default 5); medians are reported
#   KILN         kiln binary (default: <repo>/target/release/kiln)
#   DOCKER       docker client (default /usr/bin/docker: Debian's 20.10 client. /usr/local/bin/docker is a
#                28.x client that needs the buildx plugin for BuildKit builds, so it is not used)
#   BENCH_WORK   scratch directory: kiln stores, context copies, archives, raw results (default /var/tmp/kiln-bench)
#   BASES        base rootfs tarballs (default /var/cache/kiln-test/bases)
#   CASES        conformance cases (default /work/shared/conformance/cases)
#   BK26_SCRIPT  starts docker 26.1.5 / BuildKit 0.13 (default /work/shared/reference/buildkit26.sh)
#   KEEP_LOGS=1  keep every run's log under $BENCH_WORK/logs (default: only failing ones are shown)

set -euo pipefail
export LC_ALL=C

BENCH_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_HOME/.." && pwd)
KILN=${KILN:-$REPO/target/release/kiln}
# KILN_BUILD_BIN: the binary whose `build` subcommand build.sh/rebuild.sh time (default: $KILN). Only for trying
# the build engine through a stand-in before `kiln build` exists; reports say which binary was used.
KILN_BUILD_BIN=${KILN_BUILD_BIN:-$KILN}
DOCKER=${DOCKER:-/usr/bin/docker}
BENCH_WORK=${BENCH_WORK:-/var/tmp/kiln-bench}
BASES=${BASES:-/var/cache/kiln-test/bases}
CASES=${CASES:-/work/shared/conformance/cases}
BK26_SCRIPT=${BK26_SCRIPT:-/work/shared/reference/buildkit26.sh}
N=${N:-5}
HOST_DOCKER=unix:///var/run/docker.sock
BK26_HOST=""          # set by ensure_bk26
LOGS=$BENCH_WORK/logs
mkdir -p "$BENCH_WORK" "$LOGS"

# ---------------------------------------------------------------- messages
log()  { printf '%s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root (docker, buildah and kiln's RUN steps need it)"; }

# Prints a header describing the machine, so pasted results say where they come from.
machine_header() {
  local cpu; cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname): $(nproc) cores ($cpu), $(free -g | awk '/^Mem:/{print $2}') GB RAM,"
  echo "#   $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ -x "$KILN" ]; then
    echo "#   kiln: $KILN ($("$KILN" --version 2>/dev/null || echo '?'), built $(date -u -r "$KILN" '+%Y-%m-%d %H:%M UTC'))"
  else
    echo "#   kiln: $KILN (missing)"
  fi
  [ "${KILN_BUILD_BIN:-$KILN}" = "$KILN" ] || echo "#   kiln build timed through a stand-in: $KILN_BUILD_BIN (kiln_build::build without the CLI)"
  echo "#   N=$N runs per engine, interleaved run by run; medians of wall-clock time"
}

# ---------------------------------------------------------------- numbers
# median NUM...  (mean of the two middle values when the count is even); prints "-" for no numbers
median() {
  [ $# -gt 0 ] || { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) printf "%.3f\n", a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'
}
# ratio A B -> A/B with 2 decimals, "-" when either is missing or B is 0
ratio() {
  awk -v a="${1:--}" -v b="${2:--}" 'BEGIN { if (a=="-" || b=="-" || b+0==0) print "-"; else printf "%.2f\n", a/b }'
}
# geomean NUM... ("-" entries are skipped; "-" when nothing is left)
geomean() {
  printf '%s\n' "$@" | awk '$1!="-" && $1!="" && $1>0 {s+=log($1); n++} END {if (n) printf "%.2f\n", exp(s/n); else print "-"}'
}
# max NUM...
maxnum() { printf '%s\n' "$@" | awk '$1!="-" && $1!="" {if (!n || $1+0>m+0) m=$1; n++} END {if (n) print m; else print "-"}'; }
# x RATIO -> "0.52x", or "-"
x() { if [ "${1:--}" = - ]; then echo -; else echo "${1}x"; fi; }
# le A B -> exit 0 when A <= B (both numbers)
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a!="-" && a+0 <= b+0) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a!="-" && a+0 <  b+0) }'; }
# verdict CONDITION_EXIT -> PASS/FAIL; usage: verdict le "$x" 0.6
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }
kb_to_mb() { awk -v k="${1:--}" 'BEGIN { if (k=="-") print "-"; else printf "%.1f\n", k/1024 }'; }

# rotate I WORD... -> the words rotated left by I (so each engine runs first, second, ... in turn)
rotate() {
  local i=$1; shift; local a=("$@") n=$# k
  for ((k = 0; k < n; k++)); do printf '%s ' "${a[$(((i + k) % n))]}"; done
}

# ---------------------------------------------------------------- timing
# timed LOGFILE CMD... : runs CMD (stdout+stderr to LOGFILE), sets T (seconds, wall clock) and returns its status.
T=0
timed() {
  local logf=$1; shift
  local t0 t1 rc=0
  t0=$EPOCHREALTIME
  "$@" >"$logf" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b-a }')
  return $rc
}
# timed_rss LOGFILE CMD... : like timed, also sets RSS_KB: the peak resident set of the largest process of the
# command's tree that was waited for (GNU time's %M, from getrusage(RUSAGE_CHILDREN)).
RSS_KB=-
timed_rss() {
  local logf=$1; shift
  local rssf=$logf.rss rc=0
  timed "$logf" /usr/bin/time -f %M -o "$rssf" "$@" || rc=$?
  RSS_KB=$(tail -1 "$rssf" 2>/dev/null | grep -E '^[0-9]+$' || echo -)
  return $rc
}
# show_failure WHAT LOGFILE : prints the tail of a failed run's log
show_failure() {
  log "FAILED: $1 (log: $2)"
  tail -n 15 "$2" | sed 's/^/    | /' >&2
}
ensure_tools() {
  [ -x /usr/bin/time ] || { apt-get install -y -qq time >/dev/null 2>&1 || die "GNU time missing: apt-get install time"; }
}

# ---------------------------------------------------------------- kiln
# kiln_has SUBCOMMAND : exit 0 when the kiln binary exists and has that subcommand
kiln_has() { [ -x "$KILN" ] && "$KILN" "$1" --help >/dev/null 2>&1; }
kiln_missing_reason() {
  if [ ! -x "$KILN" ]; then echo "no kiln binary at $KILN (cargo build --release -p kiln)"
  else echo "'kiln $1' is not available in $KILN ($("$KILN" --version 2>/dev/null)): see 'kiln --help'"; fi
}

# ---------------------------------------------------------------- bases
# Each base: reference, tarball name, CMD (as docker import --change lines in conformance/make-bases.sh).
BASE_REFS=(lab/busybox:1 lab/debian:bookworm lab/gcc:12)
BASE_FILES=(busybox.tar debian-bookworm-minbase.tar gcc12.tar)
BASE_CMDS=('CMD ["sh"]' 'CMD ["bash"]' 'CMD ["bash"]')
BASE_PATH='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# docker_at HOST ARGS... : docker client against a daemon
docker_at() { local h=$1; shift; DOCKER_HOST=$h "$DOCKER" "$@"; }
docker_up() { docker_at "$1" version -f '{{.Server.Version}}' >/dev/null 2>&1; }

# ensure_host_docker : the host's docker 20.10 daemon, started when `docker info` fails
ensure_host_docker() {
  docker_up "$HOST_DOCKER" && return 0
  log "starting the host dockerd (/usr/sbin/dockerd, log /var/log/dockerd-bench.log)"
  nohup /usr/sbin/dockerd >/var/log/dockerd-bench.log 2>&1 &
  local i; for i in $(seq 30); do docker_up "$HOST_DOCKER" && return 0; sleep 1; done
  return 1
}
# ensure_bk26 : docker 26.1.5 / BuildKit 0.13 running (started with buildkit26.sh when down); sets BK26_HOST.
# It is never stopped here: other people may be using it.
ensure_bk26() {
  local sock=/var/tmp/lab/trixie/root/var/lib/docker-lab.sock
  if ! docker_up "unix://$sock"; then
    [ -x "$BK26_SCRIPT" ] || return 1
    local out; out=$("$BK26_SCRIPT" start 2>&1) || { log "$out"; return 1; }
    sock=$(printf '%s\n' "$out" | sed -n 's/.* socket \([^ ]*\) .*/\1/p' | tail -1)
    [ -n "$sock" ] || { log "$out"; return 1; }
  fi
  BK26_HOST=unix://$sock
  docker_up "$BK26_HOST"
}

# ensure_bases_docker HOST : lab/busybox:1, lab/debian:bookworm, lab/gcc:12 imported into that daemon
ensure_bases_docker() {
  local h=$1 i
  for i in 0 1 2; do
    docker_at "$h" image inspect "${BASE_REFS[$i]}" >/dev/null 2>&1 && continue
    [ -f "$BASES/${BASE_FILES[$i]}" ] || die "missing $BASES/${BASE_FILES[$i]} (run /work/shared/conformance/make-bases.sh $BASES)"
    log "importing ${BASE_REFS[$i]} into the daemon at $h"
    docker_at "$h" import --change "${BASE_CMDS[$i]}" --change "$BASE_PATH" "$BASES/${BASE_FILES[$i]}" "${BASE_REFS[$i]}" >/dev/null
  done
}
# ensure_bases_kiln ROOT : the same three bases imported into the kiln store at ROOT
ensure_bases_kiln() {
  local root=$1 i
  for i in 0 1 2; do
    "$KILN" --root "$root" inspect "${BASE_REFS[$i]}" >/dev/null 2>&1 && continue
    log "importing ${BASE_REFS[$i]} into the kiln store $root"
    "$KILN" --root "$root" import "$BASES/${BASE_FILES[$i]}" "${BASE_REFS[$i]}" \
      -c "${BASE_CMDS[$i]}" -c "$BASE_PATH" >/dev/null
  done
}
# ensure_bases_buildah : the same bases in buildah's containers-storage (saved from the host docker, where they
# were made with docker import, then `buildah pull docker-archive:`)
ensure_bases_buildah() {
  local i tmp
  for i in 0 1 2; do
    buildah inspect --type image "${BASE_REFS[$i]}" >/dev/null 2>&1 && continue
    ensure_bases_docker "$HOST_DOCKER"
    log "copying ${BASE_REFS[$i]} into buildah's storage"
    tmp=$BENCH_WORK/base-$i.tar
    docker_at "$HOST_DOCKER" save -o "$tmp" "${BASE_REFS[$i]}"
    buildah pull -q "docker-archive:$tmp" >/dev/null
    rm -f "$tmp"
    buildah inspect --type image "${BASE_REFS[$i]}" >/dev/null 2>&1 ||
      buildah tag "docker.io/${BASE_REFS[$i]}" "${BASE_REFS[$i]}" >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------- cases
# Cases the scripts generate (rebuild.sh's big-context), beside the conformance cases of $CASES.
GENERATED=$BENCH_WORK/generated
# case_dir CASE : the case's directory, a conformance case or a generated one
case_dir() { if [ -d "$CASES/$1" ]; then echo "$CASES/$1"; else echo "$GENERATED/$1"; fi; }
# case_var CASE NAME : a value from CASE/case.env (empty when absent)
case_var() { sed -n "s/^$2=//p" "$(case_dir "$1")/case.env" 2>/dev/null | tail -1; }
list_cases() { local d; for d in "$CASES"/*/; do [ -f "$d/context/Dockerfile" ] && basename "$d"; done; }

# ---------------------------------------------------------------- build engines (build.sh, rebuild.sh)
#   kiln     kiln build, store $BENCH_WORK/kiln-build-store (bases imported from the tarballs)
#   bk26     docker 26.1.5 / BuildKit 0.13 (buildkit26.sh): DOCKER_BUILDKIT=1 docker build --network=none
#   buildah  buildah bud --layers --pull=never --network=none --runtime /usr/sbin/runc (buildah 1.28)
#   docker20 the host's docker 20.10 with BuildKit (not in the default list; ENGINES="kiln bk26 buildah docker20")
declare -A ENGINE_SKIP=()     # engine -> why it is not measured
KILN_TEMPLATE=$BENCH_WORK/kiln-bases        # kiln store with only the three bases imported
KILN_BUILD_ROOT=$BENCH_WORK/kiln-build-store
KILN_BUILD_FLAGS=()                        # flags this kiln build accepts (probed from its --help)
KILN_NOCACHE=1                             # 0 when this kiln build has no --no-cache flag (then it is not passed)

# engine_setup ENGINE : makes the engine ready (daemon up, bases present); on failure records ENGINE_SKIP[ENGINE]
engine_setup() {
  local e=$1 help
  case $e in
  kiln)
    if ! { [ -x "$KILN_BUILD_BIN" ] && "$KILN_BUILD_BIN" build --help >/dev/null 2>&1; }; then
      ENGINE_SKIP[$e]=$(KILN=$KILN_BUILD_BIN kiln_missing_reason build); return 0
    fi
    if ! kiln_has import; then ENGINE_SKIP[$e]=$(kiln_missing_reason import); return 0; fi
    if ! ensure_bases_kiln "$KILN_TEMPLATE" >"$LOGS/kiln-import.log" 2>&1; then
      ENGINE_SKIP[$e]="importing the bases into kiln failed: $(tail -1 "$LOGS/kiln-import.log")"; return 0
    fi
    if [ ! -d "$KILN_BUILD_ROOT" ]; then cp -a "$KILN_TEMPLATE" "$KILN_BUILD_ROOT"; fi
    ensure_bases_kiln "$KILN_BUILD_ROOT" >/dev/null 2>&1 || true
    help=$("$KILN_BUILD_BIN" build --help 2>&1)
    KILN_BUILD_FLAGS=() KILN_NOCACHE=0
    grep -q -- '--network' <<<"$help" && KILN_BUILD_FLAGS+=(--network=none)
    grep -q -- '--no-cache' <<<"$help" && KILN_NOCACHE=1
    ;;
  bk26)
    ensure_bk26 || { ENGINE_SKIP[$e]="docker 26 / BuildKit 0.13 did not start ($BK26_SCRIPT start)"; return 0; }
    ensure_bases_docker "$BK26_HOST" ;;
  docker20)
    ensure_host_docker || { ENGINE_SKIP[$e]="the host dockerd did not start"; return 0; }
    ensure_bases_docker "$HOST_DOCKER" ;;
  buildah)
    command -v buildah >/dev/null || { ENGINE_SKIP[$e]="buildah is not installed (apt-get install buildah)"; return 0; }
    [ -x /usr/sbin/runc ] || { ENGINE_SKIP[$e]="/usr/sbin/runc is missing (apt-get install runc)"; return 0; }
    ensure_host_docker || { ENGINE_SKIP[$e]="bases are copied from the host docker, which did not start"; return 0; }
    ensure_bases_buildah || { ENGINE_SKIP[$e]="could not copy the bases into buildah's storage"; return 0; } ;;
  *) die "unknown engine '$e' (kiln, bk26, buildah, docker20)" ;;
  esac
}

# engine_build ENGINE CASE CONTEXT NOCACHE(0|1) LOGFILE : one timed build; sets T (and RSS_KB for kiln)
engine_build() {
  local e=$1 c=$2 ctx=$3 nocache=$4 logf=$5 target tflag=()
  target=$(case_var "$c" TARGET); [ -n "$target" ] && tflag=(--target "$target")
  local nc=(); [ "$nocache" = 1 ] && nc=(--no-cache)
  case $e in
  kiln)     [ "$KILN_NOCACHE" = 1 ] || nc=()
            timed_rss "$logf" "$KILN_BUILD_BIN" --root "$KILN_BUILD_ROOT" build "${nc[@]}" "${KILN_BUILD_FLAGS[@]}" "${tflag[@]}" -t "bench/$c:kiln" "$ctx" ;;
  bk26)     RSS_KB=-; DOCKER_BUILDKIT=1 timed "$logf" docker_at "$BK26_HOST" build "${nc[@]}" --network=none "${tflag[@]}" -t "bench/$c:bk26" "$ctx" ;;
  docker20) RSS_KB=-; DOCKER_BUILDKIT=1 timed "$logf" docker_at "$HOST_DOCKER" build "${nc[@]}" --network=none "${tflag[@]}" -t "bench/$c:docker20" "$ctx" ;;
  buildah)  RSS_KB=-; timed "$logf" buildah bud --layers "${nc[@]}" --pull=never --network=none --runtime /usr/sbin/runc "${tflag[@]}" -t "bench/$c:buildah" "$ctx" ;;
  esac
}

# engine_cold_prep ENGINE CASE : untimed, before each cold build: forget what a previous run left that --no-cache
# does not ignore. Cache mounts survive --no-cache in every engine, so they are wiped for cases that use them
# (for BuildKit: `docker builder prune --filter type=exec.cachemount`; buildah: /var/tmp/buildah-cache).
# With KILN_COLD=fresh, kiln also gets a fresh copy of the bases-only store each run.
engine_cold_prep() {
  local e=$1 c=$2 uses_cache=0
  grep -q 'type=cache' "$(case_dir "$c")/context/Dockerfile" && uses_cache=1
  case $e in
  kiln)
    if [ "${KILN_COLD:-nocache}" = fresh ]; then rm -rf "$KILN_BUILD_ROOT"; cp -a "$KILN_TEMPLATE" "$KILN_BUILD_ROOT"
    elif [ $uses_cache = 1 ]; then rm -rf "$KILN_BUILD_ROOT/cache-mounts"; fi ;;
  bk26)     [ $uses_cache = 1 ] && docker_at "$BK26_HOST" builder prune -f --filter type=exec.cachemount >/dev/null 2>&1 || true ;;
  docker20) [ $uses_cache = 1 ] && docker_at "$HOST_DOCKER" builder prune -f --filter type=exec.cachemount >/dev/null 2>&1 || true ;;
  buildah)  [ $uses_cache = 1 ] && rm -rf /var/tmp/buildah-cache || true ;;
  esac
  sync
}

# engine_label ENGINE : column title
engine_label() {
  case $1 in kiln) echo kiln;; bk26) echo "BK26";; docker20) echo "docker20";; buildah) echo buildah;; *) echo "$1";; esac
}
