#!/usr/bin/env bash
# Side-by-side scheduler comparison: Go vs gort vs Boost.Fiber, measured in one run on
# one machine. See bench/compare/README.md.
#
#   usage: bench/compare/run.sh [build-dir]      (default: build/release under the repo)
#
# Builds the Go program (go build) and, when build-dir is a CMake tree, the C++ targets;
# runs every workload for each implementation in turn, prints a markdown table and writes
# it to <build-dir>/compare-sched.md. A failing implementation is reported on stderr and
# shown as n/a; the script then goes on, and exits non-zero at the end.
#
# COMPARE_PARKED_N=<n> (default 1000000) sets how many goroutines parked_memory parks.
# That workload dominates the run time where page faults are slow (VMs): it first-touches
# 3-9 GB per implementation.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
GORT_BIN=$BUILD/bench/compare/compare_gort_sched
FIBER_BIN=$BUILD/bench/compare/compare_fiber_sched

TMP=$(mktemp -d "$BUILD/compare-sched.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
log() { echo "[compare] $*" >&2; }
# Failures are recorded in a file: run_one runs in a $(...) subshell.
fail() { log "FAILED: $*"; echo "$*" >>"$TMP/failures"; }

# --- build -----------------------------------------------------------------------------
# Go: private GOCACHE/GOPATH under the build dir, so this works as root, on a fresh
# machine, with HOME unset or read-only. Stdlib only, so nothing is downloaded.
GO_BIN=$TMP/sched_go
log "go build ($(go version 2>/dev/null || echo 'go missing'))"
if ! (cd "$HERE/go" && env GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOENV=off \
        GOFLAGS= GOPROXY=off GO111MODULE=on go build -o "$GO_BIN" ./sched) >&2; then
  fail "go build"
fi

# C++: rebuild the two targets if this is a CMake tree, so a stale binary is never
# measured. A target that fails to build is not run.
declare -A SKIP=()
if [[ -f $BUILD/CMakeCache.txt ]]; then
  targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
  for t in compare_gort_sched compare_fiber_sched; do
    if ! grep -q "$t" <<<"$targets"; then
      continue  # not configured (e.g. Boost not found); handled below
    fi
    log "cmake --build $BUILD --target $t"
    if ! cmake --build "$BUILD" --target "$t" >"$TMP/build-$t.log" 2>&1; then
      tail -n 30 "$TMP/build-$t.log" >&2
      fail "building $t"
      SKIP[$t]=1
    fi
  done
fi

# --- run -------------------------------------------------------------------------------
# run_one <impl> <workload> <timeout-s> <cmd...>: prints the value of the program's
# "RESULT <workload> <value> <unit>" line, or n/a (and records the failure).
run_one() {
  local impl=$1 workload=$2 limit=$3
  shift 3
  local out=$TMP/$impl-$workload.out err=$TMP/$impl-$workload.err rc=0 value start=$SECONDS
  timeout -k 10 "$limit" "$@" >"$out" 2>"$err" || rc=$?
  value=$(awk -v w="$workload" '$1 == "RESULT" && $2 == w { v = $3 } END { print v }' "$out")
  log "$impl $workload: ${value:-no result} ($((SECONDS - start)) s)"
  if [[ $rc -ne 0 || -z $value ]]; then
    [[ $rc -eq 124 ]] && log "$impl $workload: timed out after ${limit}s"
    tail -n 5 "$err" >&2 || true
    fail "$impl $workload (exit $rc)"
    echo n/a
  else
    echo "$value"
  fi
}

[[ -x $GORT_BIN || -n ${SKIP[compare_gort_sched]:-} ]] || fail "gort: $GORT_BIN not found"
[[ -x $FIBER_BIN ]] || log "no $FIBER_BIN (Boost.Fiber not found?): its column will be n/a"

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A V=()  # V[impl,workload] = value
# Each workload runs Go, gort and Boost.Fiber back to back, so all three see the same
# machine state; the timed workloads take the best of 5 rounds inside each program.
for workload in spawn_join yield_pingpong parked_memory; do
  limit=120
  [[ $workload == parked_memory ]] && limit=480
  if [[ -x $GO_BIN ]]; then
    V[go,$workload]=$(run_one go "$workload" "$limit" "$GO_BIN" -workload="$workload")
  else
    V[go,$workload]=n/a
  fi
  if [[ -x $GORT_BIN && -z ${SKIP[compare_gort_sched]:-} ]]; then
    V[gort,$workload]=$(run_one gort "$workload" "$limit" "$GORT_BIN" "$workload")
  else
    V[gort,$workload]=n/a
  fi
  # Boost.Fiber runs parked_memory twice, each in a fresh process: default 128 KiB
  # stacks, then 16 KiB fixedsize_stack.
  fiber_workloads=$workload
  [[ $workload == parked_memory ]] && fiber_workloads="parked_memory parked_memory_16k"
  for fw in $fiber_workloads; do
    if [[ -x $FIBER_BIN && -z ${SKIP[compare_fiber_sched]:-} ]]; then
      V[fiber,$fw]=$(run_one fiber "$fw" "$limit" "$FIBER_BIN" "$fw")
    else
      V[fiber,$fw]=n/a
    fi
  done
done
# The 16 KiB row compares against the same Go and gort parked_memory measurements.
V[go,parked_memory_16k]=${V[go,parked_memory]}
V[gort,parked_memory_16k]=${V[gort,parked_memory]}

# --- report ----------------------------------------------------------------------------
ratio() {  # ratio a b: a/b with 2 decimals, n/a unless both are numbers
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'
}
boost_version() {
  sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp 2>/dev/null |
    tr _ . || true
}
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
if gort_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
  git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || gort_rev="$gort_rev + local changes"
else
  gort_rev="none (no commit yet)"
fi
{
  echo "## gort scheduler vs Go vs Boost.Fiber"
  echo
  echo "| workload | Go | gort | Boost.Fiber | gort/Go | gort/Fiber |"
  echo "|---|---:|---:|---:|---:|---:|"
  for row in "spawn_join|ns per goroutine" "yield_pingpong|ns per switch" \
             "parked_memory|bytes per parked goroutine" \
             "parked_memory_16k|bytes, Fiber on 16 KiB stacks"; do
    w=${row%%|*}
    echo "| $w ($(cut -d'|' -f2 <<<"$row")) | ${V[go,$w]} | ${V[gort,$w]} | ${V[fiber,$w]}" \
         "| $(ratio "${V[gort,$w]}" "${V[go,$w]}") | $(ratio "${V[gort,$w]}" "${V[fiber,$w]}") |"
  done
  echo
  echo "Lower is better in every column; a ratio below 1 means gort is faster or smaller."
  echo "The parked_memory_16k row repeats the Go and gort parked_memory numbers."
  echo
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r);" \
       "load average at start: $LOAD (other load skews the timings)"
  echo "- $(go version 2>/dev/null || echo 'go: not found')"
  echo "- $(g++ --version 2>/dev/null | head -n1); Boost $(boost_version)"
  echo "- parked_memory: ${COMPARE_PARKED_N:-1000000} goroutines per run"
  echo "- gort commit: $gort_rev; build dir: $BUILD"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} | tee "$BUILD/compare-sched.md"

if [[ -s $TMP/failures ]]; then
  log "$(wc -l <"$TMP/failures") failure(s), shown as n/a:"
  sed 's/^/[compare]   /' "$TMP/failures" >&2
  exit 1
fi
