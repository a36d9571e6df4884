#!/usr/bin/env bash
# Side-by-side comparison: Go vs gort vs Boost.Fiber, measured in one run on one machine.
# Three suites: "sched" (scheduler: spawn, yield, parked memory), "chan" (channels,
# select, mutex) and "timer" (oversleep of 100,000 goroutines sleeping 1 ms). See
# bench/compare/README.md.
#
#   usage: bench/compare/run.sh [build-dir]      (default: build/release under the repo)
#
# Builds the Go programs (go build) and, when build-dir is a CMake tree, the C++ targets;
# runs every workload for each implementation in turn, prints one markdown table per suite
# and writes them to <build-dir>/compare-sched.md, compare-chan.md and compare-timer.md. A
# failing implementation is reported on stderr and shown as n/a; the script then goes on,
# and exits non-zero at the end.
#
# COMPARE_SUITES="sched chan timer" (the default) chooses the suites, e.g.
# COMPARE_SUITES=chan or COMPARE_SUITES="chan timer". COMPARE_SUITES=net runs the
# networking suite (net.sh: TCP echo and HTTP hello under wrk, Go vs gort; ~80 s).
# COMPARE_SUITES=gc runs the garbage collector suite (gc.sh: binary-trees in Go, gort,
# Boehm GC and new/delete; a 1 GiB long-lived heap in Go and gort; GC_DEPTH, GC_ROUNDS,
# LIVE_MB there).
# COMPARE_PARKED_N=<n> (default 1000000) sets how many goroutines parked_memory parks.
# That workload dominates the run time where page faults are slow (VMs): it first-touches
# 3-9 GB per implementation.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
SUITES=${COMPARE_SUITES:-sched chan timer}
for suite in $SUITES; do
  [[ $suite == sched || $suite == chan || $suite == timer || $suite == net || $suite == gc ]] ||
    { echo "unknown suite '$suite'" >&2; exit 2; }
done
# The networking suite (servers driven by a client over loopback) has its own script.
if [[ " $SUITES " == *" net "* ]]; then
  "$HERE/net.sh" "$BUILD"
  SUITES=$(tr ' ' '\n' <<<"$SUITES" | grep -vx net | xargs || true)
  [[ -z $SUITES ]] && exit 0
  echo
fi
# So does the garbage collector suite. A failing suite fails the run at the end, after
# the others have run.
GC_RC=0
if [[ " $SUITES " == *" gc "* ]]; then
  "$HERE/gc.sh" "$BUILD" || GC_RC=$?
  SUITES=$(tr ' ' '\n' <<<"$SUITES" | grep -vx gc | xargs || true)
  [[ -z $SUITES ]] && exit "$GC_RC"
  echo
fi
# Per suite: the Go package under go/, and compare_gort_<suite> / compare_fiber_<suite>.
declare -A GO_BIN=() GORT_BIN=() FIBER_BIN=()

TMP=$(mktemp -d "$BUILD/compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
log() { echo "[compare] $*" >&2; }
# Failures are recorded in a file: run_one runs in a $(...) subshell.
fail() { log "FAILED: $*"; echo "$*" >>"$TMP/failures"; }

# --- build -----------------------------------------------------------------------------
# Go: private GOCACHE/GOPATH under the build dir, so this works as root, on a fresh
# machine, with HOME unset or read-only. Stdlib only, so nothing is downloaded.
log "go build ($(go version 2>/dev/null || echo 'go missing'))"
for suite in $SUITES; do
  GO_BIN[$suite]=$TMP/${suite}_go
  GORT_BIN[$suite]=$BUILD/bench/compare/compare_gort_$suite
  FIBER_BIN[$suite]=$BUILD/bench/compare/compare_fiber_$suite
  if ! (cd "$HERE/go" && env GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOENV=off \
          GOFLAGS= GOPROXY=off GO111MODULE=on go build -o "${GO_BIN[$suite]}" "./$suite") >&2; then
    fail "go build ./$suite"
  fi
done

# C++: rebuild the targets if this is a CMake tree, so a stale binary is never measured.
# A target that fails to build is not run.
declare -A SKIP=()
if [[ -f $BUILD/CMakeCache.txt ]]; then
  targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
  for t in $(for suite in $SUITES; do echo "compare_gort_$suite compare_fiber_$suite"; done); do
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

for suite in $SUITES; do
  [[ -x ${GORT_BIN[$suite]} || -n ${SKIP[compare_gort_$suite]:-} ]] ||
    fail "gort: ${GORT_BIN[$suite]} not found"
  [[ -x ${FIBER_BIN[$suite]} ]] ||
    log "no ${FIBER_BIN[$suite]} (Boost.Fiber not found?): its column will be n/a"
done

# run_impl <impl> <suite> <workload> <limit>: sets V[impl,workload]; n/a when the program
# is missing (reported above) or failed to build or to run (recorded as a failure).
declare -A V=()  # V[impl,workload] = value
run_impl() {
  local impl=$1 suite=$2 workload=$3 limit=$4 bin target
  case $impl in
    go) bin=${GO_BIN[$suite]} target=go ;;  # a failed go build leaves no binary
    gort) bin=${GORT_BIN[$suite]} target=compare_gort_$suite ;;
    fiber) bin=${FIBER_BIN[$suite]} target=compare_fiber_$suite ;;
  esac
  if [[ ! -x $bin || -n ${SKIP[$target]:-} ]]; then
    V[$impl,$workload]=n/a
  elif [[ $impl == go ]]; then
    V[$impl,$workload]=$(run_one "$impl" "$workload" "$limit" "$bin" -workload="$workload")
  else
    V[$impl,$workload]=$(run_one "$impl" "$workload" "$limit" "$bin" "$workload")
  fi
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
# Each workload runs Go, gort and Boost.Fiber back to back, so all three see the same
# machine state; the sched and chan workloads take the best of 5 rounds inside each
# program. The timer workloads all run the same experiment (warm-up, then the median of 3
# runs), each in a fresh process, and report one statistic of it.
SCHED_WORKLOADS="spawn_join yield_pingpong parked_memory"
CHAN_WORKLOADS="chan_pingpong_1p chan_pingpong_2p chan_buffered_1x1 chan_buffered_4x4
                select_2chan mutex_contended"
TIMER_WORKLOADS="sleep_oversleep_p50 sleep_oversleep_p99 sleep_oversleep_max sleep_round_ms"
for suite in $SUITES; do
  case $suite in
    sched) workloads=$SCHED_WORKLOADS ;;
    chan) workloads=$CHAN_WORKLOADS ;;
    timer) workloads=$TIMER_WORKLOADS ;;
  esac
  for workload in $workloads; do
    # Boost.Fiber's chan_pingpong_2p can take minutes on a loaded 2-vCPU machine (see
    # README.md), hence the longer limit for the channel suite. A timer process takes
    # 10-30 s (Go's is the slowest); the limit leaves room for a loaded machine.
    limit=120
    [[ $suite == chan || $suite == timer ]] && limit=300
    [[ $workload == parked_memory ]] && limit=480
    run_impl go "$suite" "$workload" "$limit"
    run_impl gort "$suite" "$workload" "$limit"
    case $workload in
      # Boost.Fiber runs parked_memory twice, each in a fresh process: default 128 KiB
      # stacks, then 16 KiB fixedsize_stack.
      parked_memory) fiber_workloads="parked_memory parked_memory_16k" ;;
      # Boost.Fiber has no select over channels: n/a, but not a failure.
      select_2chan)
        fiber_workloads=''
        V[fiber,$workload]=n/a
        ;;
      *) fiber_workloads=$workload ;;
    esac
    for fw in $fiber_workloads; do run_impl fiber "$suite" "$fw" "$limit"; done
  done
done
# The 16 KiB row compares against the same Go and gort parked_memory measurements.
V[go,parked_memory_16k]=${V[go,parked_memory]:-n/a}
V[gort,parked_memory_16k]=${V[gort,parked_memory]:-n/a}

# --- report ----------------------------------------------------------------------------
# ratio a b: a/b with 2 decimals (below 0.01, e.g. a timer's p50: 2 significant digits,
# 0.0034 rather than 0.00), n/a unless both are numbers.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) {
      r = a / b; d = 2
      if (r > 0 && r < 0.01) d = 1 - int(log(r) / log(10) - 1)  # 1 - floor(log10(r))
      printf "%." d "f", r
    } else printf "n/a" }'
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
# row <workload> <what>: one table row with both ratios.
row() {
  local w=$1
  echo "| $w ($2) | ${V[go,$w]} | ${V[gort,$w]} | ${V[fiber,$w]}" \
       "| $(ratio "${V[gort,$w]}" "${V[go,$w]}") | $(ratio "${V[gort,$w]}" "${V[fiber,$w]}") |"
}
header() {
  echo "| workload | Go | gort | Boost.Fiber | gort/Go | gort/Fiber |"
  echo "|---|---:|---:|---:|---:|---:|"
}
footer() {
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r);" \
       "load average at start: $LOAD (other load skews the timings)"
  echo "- $(go version 2>/dev/null || echo 'go: not found')"
  echo "- $(g++ --version 2>/dev/null | head -n1); Boost $(boost_version)"
  [[ $1 == sched ]] && echo "- parked_memory: ${COMPARE_PARKED_N:-1000000} goroutines per run"
  [[ $1 == timer ]] &&
    echo "- timer: 100,000 goroutines x 10 sleeps of 1 ms per run; median of 3 runs after a warm-up"
  echo "- gort commit: $gort_rev; build dir: $BUILD"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
}
if [[ " $SUITES " == *" sched "* ]]; then
  {
    echo "## gort scheduler vs Go vs Boost.Fiber"
    echo
    header
    row spawn_join "ns per goroutine"
    row yield_pingpong "ns per switch"
    row parked_memory "bytes per parked goroutine"
    row parked_memory_16k "bytes, Fiber on 16 KiB stacks"
    echo
    echo "Lower is better in every column; a ratio below 1 means gort is faster or smaller."
    echo "The parked_memory_16k row repeats the Go and gort parked_memory numbers."
    echo
    footer sched
  } | tee "$BUILD/compare-sched.md"
fi
if [[ " $SUITES " == *" chan "* ]]; then
  [[ " $SUITES " == *" sched "* ]] && echo
  {
    echo "## gort channels and sync vs Go vs Boost.Fiber"
    echo
    header
    row chan_pingpong_1p "ns per round trip, 1 P"
    row chan_pingpong_2p "ns per round trip, 2 Ps"
    row chan_buffered_1x1 "ns per item, cap 1024, 2 Ps"
    row chan_buffered_4x4 "ns per item, cap 1024, 2 Ps"
    row select_2chan "ns per item, 2 Ps"
    row mutex_contended "ns per lock+unlock, 100 goroutines, 2 Ps"
    echo
    echo "Lower is better in every column; a ratio below 1 means gort is faster."
    echo "Boost.Fiber has no select, hence n/a in select_2chan."
    echo
    footer chan
  } | tee "$BUILD/compare-chan.md"
fi
if [[ " $SUITES " == *" timer "* ]]; then
  [[ " $SUITES " == *" sched "* || " $SUITES " == *" chan "* ]] && echo
  {
    echo "## gort timers vs Go vs Boost.Fiber"
    echo
    header
    row sleep_oversleep_p50 "us over 1 ms, p50 of 1e6 sleeps, 100k goroutines, 2 Ps"
    row sleep_oversleep_p99 "us over 1 ms, p99"
    row sleep_oversleep_max "us over 1 ms, max"
    row sleep_round_ms "ms per round of 100k 1 ms sleeps: wall time / 10"
    echo
    echo "Lower is better in every column; a ratio below 1 means gort wakes sleepers sooner"
    echo "or gets through the rounds faster. Each number is the median of 3 runs. 100k"
    echo "sleepers on 2 Ps is an overload test: the oversleep is mostly run-queue wait, and"
    echo "its spread depends on how each scheduler queues woken sleepers (see README.md)."
    echo
    footer timer
  } | tee "$BUILD/compare-timer.md"
fi

if [[ -s $TMP/failures ]]; then
  log "$(wc -l <"$TMP/failures") failure(s), shown as n/a:"
  sed 's/^/[compare]   /' "$TMP/failures" >&2
  exit 1
fi
[[ $GC_RC -eq 0 ]] || { log "the gc suite failed (see above)"; exit "$GC_RC"; }
