#!/usr/bin/env bash
# Garbage collector comparison, measured in one run on one machine (the "gc" suite;
# bench/compare/run.sh runs it with COMPARE_SUITES=gc). See bench/compare/README.md.
#
#   usage: bench/compare/gc.sh [build-dir]      (default: build/release under the repo)
#
# 1. binary-trees (the Benchmarks Game program, plain sequential version, depth GC_DEPTH,
#    default 21) four times: Go (go/gc/binarytrees), gort (gc/binarytrees_gort.cpp), Boehm
#    GC (gc/binarytrees_boehm.cpp, only if libgc was found) and plain new/delete
#    (gc/binarytrees_newdelete.cpp). Wall time and peak RSS from /usr/bin/time, GC cycles
#    and the longest pause from the program's GCSTATS line; the check lines of every run
#    must equal Go's. Then Go and gort at GC_OFF_DEPTH (default 18) with GOGC=100 and
#    GOGC=off: the collector's wall and CPU cost (the mutator slowdown).
# 2. liveheap (go/gc/liveheap, gc/liveheap_gort.cpp): LIVE_MB MiB live (default 1024),
#    PARKED parked goroutines (default 100,000), then ALLOC_MB MiB (default 8 x LIVE_MB;
#    with GOGC=off at most GC_OFF_ALLOC_MB, default 2048, as nothing is freed) of flat out
#    allocation replacing random parts of the live heap, for at most GC_DURATION seconds
#    (default 300); pause p50/p99/max over the cycles of all rounds, cycles and
#    allocations/s, with GOGC=100 and with GOGC=off (mutator slowdown = the ratio); what
#    goroutines see (a 1 ms ticker's lateness, the allocating loop's longest gap) and CPU
#    time per allocation, in both modes.
# 3. forcedgc (go/gc/forcedgc, gc/forcedgc_gort.cpp): one forced collection of a live
#    binary tree of depth 20 (32 MiB) with nothing else running, with GOMAXPROCS=1 and 2:
#    every P is idle, so the Ps mark together; the ratio is the marking's parallel
#    speedup. gort also runs with GODEBUG=gcworkers=0 (the collector thread marks alone).
#    GC_PARTS="binarytrees" (or "liveheap", "forcedgc") runs some parts only.
# Each program runs GC_ROUNDS times (default 3; GC_LIVE_ROUNDS for liveheap, default
# GC_ROUNDS), the implementations alternating within each round. Medians are reported,
# except the longest pause: the largest of all rounds. Prints markdown tables and writes
# them to <build-dir>/compare-gc.md. A program that is not configured (no collector in
# libgort, no libgc), fails to build, crashes or prints wrong checks is reported on stderr
# and shown as n/a; the script finishes the tables and exits non-zero on real failures (a
# gort program that cannot be built yet only gives a message).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
ROUNDS=${GC_ROUNDS:-3}
LIVE_ROUNDS=${GC_LIVE_ROUNDS:-$ROUNDS}
DEPTH=${GC_DEPTH:-21}
OFF_DEPTH=${GC_OFF_DEPTH:-18}
PARTS=${GC_PARTS:-binarytrees liveheap forcedgc}
export LIVE_MB=${LIVE_MB:-1024} PARKED=${PARKED:-100000} DURATION=${GC_DURATION:-300}
ALLOC_MB=${ALLOC_MB:-$((8 * LIVE_MB))}
OFF_ALLOC_MB=$((ALLOC_MB < ${GC_OFF_ALLOC_MB:-2048} ? ALLOC_MB : ${GC_OFF_ALLOC_MB:-2048}))
TMP=$(mktemp -d "$BUILD/compare-gc.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
log() { echo "[gc] $*" >&2; }
fail() { log "FAILED: $*"; echo "$*" >>"$TMP/failures"; }
TIME=/usr/bin/time
[[ -x $TIME ]] || { log "/usr/bin/time not found (Debian: apt-get install time)"; exit 1; }

# --- build -----------------------------------------------------------------------------
declare -A BIN=()  # BIN[<impl>_<program>] = path, only for programs that built
log "go build ($(go version 2>/dev/null || echo 'go missing'))"
for prog in binarytrees liveheap forcedgc; do
  if (cd "$HERE/go" && env GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOENV=off GOFLAGS= \
        GOPROXY=off GO111MODULE=on go build -o "$TMP/go_$prog" "./gc/$prog") >&2; then
    BIN[go_$prog]=$TMP/go_$prog
  else
    fail "go build ./gc/$prog"
  fi
done
# C++: rebuild if this is a CMake tree, so a stale binary is never measured.
targets=""
[[ -f $BUILD/CMakeCache.txt ]] && targets=$(cmake --build "$BUILD" --target help 2>/dev/null || true)
for spec in gort_binarytrees boehm_binarytrees newdelete_binarytrees gort_liveheap \
            gort_forcedgc; do
  t=compare_$spec bin=$BUILD/bench/compare/compare_$spec
  if [[ -f $BUILD/CMakeCache.txt ]]; then
    # Whole lines only: a re-configure in the same call prints messages naming targets.
    if ! grep -q "^$t: " <<<"$targets"; then
      case $spec in
        gort_*) log "$t is not configured (libgort has no collector, src/gc/, in this tree):" \
                    "skipping gort, its column is n/a" ;;
        boehm_*) log "$t is not configured (libgc-dev not found): Boehm column is n/a" ;;
        *) fail "$t is not configured" ;;
      esac
      continue
    fi
    log "cmake --build $BUILD --target $t"
    if ! cmake --build "$BUILD" --target "$t" >"$TMP/build-$t.log" 2>&1; then
      tail -n 15 "$TMP/build-$t.log" >&2
      case $spec in
        gort_*) log "$t failed to build (the collector is not ready?): skipping gort," \
                    "its column is n/a" ;;
        *) fail "building $t" ;;
      esac
      continue
    fi
  fi
  if [[ -x $bin ]]; then BIN[$spec]=$bin; else log "no $bin: its column is n/a"; fi
done

# --- run -------------------------------------------------------------------------------
# run_prog <name> <limit-s> <cmd...>: runs it under /usr/bin/time into $TMP/<name>.{out,err,
# time}; returns non-zero (and records the failure) if it fails or times out.
run_prog() {
  local name=$1 limit=$2 rc=0
  shift 2
  timeout -k 10 "$limit" "$TIME" -f 'TIME %e %M %U %S' -o "$TMP/$name.time" "$@" \
    >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 ]] && log "$name: timed out after ${limit}s"
    tail -n 5 "$TMP/$name.err" >&2 || true
    fail "$name (exit $rc)"
    return 1
  fi
}
# Per-measurement values, one file per impl and metric: $TMP/v.<impl>.<metric>.
record() { echo "$3" >>"$TMP/v.$1.$2"; }
median() {
  [[ -s $1 ]] || { echo n/a; return; }
  # An even count (a round failed) averages the middle two rather than taking the lower.
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf "%.15g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maximum() {
  [[ -s $1 ]] || { echo n/a; return; }
  sort -g "$1" | tail -n1
}
gcstat() { sed -n "s/^GCSTATS.* $2=\([0-9]*\).*/\1/p" "$1" | tail -n1; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
if gort_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then  # what was built
  git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || gort_rev="$gort_rev + local changes"
else
  gort_rev="none"
fi
BT_IMPLS="go gort boehm newdelete"
if [[ " $PARTS " == *" binarytrees "* ]]; then
  for r in $(seq "$ROUNDS"); do
    for impl in $BT_IMPLS; do
      bin=${BIN[${impl}_binarytrees]:-}
      [[ -n $bin ]] || continue
      name=bt-$impl-$r
      run_prog "$name" 900 "$bin" "$DEPTH" || continue
      # The check lines must equal Go's (or, without Go, the first program's).
      if [[ ! -s $TMP/bt.ref ]]; then
        cp "$TMP/$name.out" "$TMP/bt.ref"
        echo "$impl" >"$TMP/bt.ref-impl"
      elif ! cmp -s "$TMP/bt.ref" "$TMP/$name.out"; then
        diff "$TMP/bt.ref" "$TMP/$name.out" | head -n 5 >&2 || true
        fail "$impl binarytrees: check lines differ from $(cat "$TMP/bt.ref-impl")'s"
        continue
      fi
      read -r _ wall rss _ _ <"$TMP/$name.time"
      record "$impl" wall "$wall"
      record "$impl" rss "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
      pmax=$(gcstat "$TMP/$name.err" pause_max_ns) ngc=$(gcstat "$TMP/$name.err" num_gc)
      [[ -n $pmax ]] && record "$impl" pause "$(awk -v n="$pmax" 'BEGIN { printf "%.3f", n / 1e6 }')"
      [[ -n $ngc ]] && record "$impl" ngc "$ngc"
      # gort only: the longest stop of one goroutine for its stack scan (no STW for that).
      sstop=$(gcstat "$TMP/$name.err" stack_stop_max_ns)
      [[ -n $sstop ]] && record "$impl" sstop "$(awk -v n="$sstop" 'BEGIN { printf "%.3f", n / 1e6 }')"
      # gort only: the collector's longest wait for running gc operations and cache owners
      # at its phase changes (it holds no goroutine, so it is not in the pause).
      swait=$(gcstat "$TMP/$name.err" handshake_wait_max_ns)
      [[ -n $swait && $swait != -1 ]] &&
        record "$impl" swait "$(awk -v n="$swait" 'BEGIN { printf "%.3f", n / 1e6 }')"
      log "round $r $impl binarytrees $DEPTH: ${wall} s, $((rss / 1024)) MiB," \
          "pause max ${pmax:-n/a} ns, ${ngc:-n/a} cycles"
    done
  done
fi

# binary-trees with and without a collector (Go and gort): GOGC=off cannot run depth
# $DEPTH (nothing is freed: 10-15 GB), so both modes run at GC_OFF_DEPTH (default 18).
# Wall and CPU time (user+sys) per mode; the slowdown is GOGC=100 over GOGC=off.
if [[ " $PARTS " == *" binarytrees "* ]]; then
  for r in $(seq "$ROUNDS"); do
    for gogc in 100 off; do
      for impl in go gort; do
        bin=${BIN[${impl}_binarytrees]:-}
        [[ -n $bin ]] || continue
        name=btoff-$impl-$gogc-$r
        run_prog "$name" 900 env GOGC=$gogc "$bin" "$OFF_DEPTH" || continue
        read -r _ wall rss user sys <"$TMP/$name.time"
        record "$impl" "bt$gogc.wall" "$wall"
        record "$impl" "bt$gogc.cpu" "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
        log "round $r $impl binarytrees $OFF_DEPTH GOGC=$gogc: ${wall} s, CPU $user+$sys s," \
            "$((rss / 1024)) MiB"
      done
    done
  done
fi

# liveheap: RESULT lines; GOGC=100 and GOGC=off alternate with the implementations.
if [[ " $PARTS " == *" liveheap "* ]]; then
  for r in $(seq "$LIVE_ROUNDS"); do
    for gogc in 100 off; do
      for impl in go gort; do
        bin=${BIN[${impl}_liveheap]:-}
        [[ -n $bin ]] || continue
        name=lh-$impl-$gogc-$r
        budget=$ALLOC_MB
        [[ $gogc == off ]] && budget=$OFF_ALLOC_MB
        run_prog "$name" $((DURATION + 600)) env GOGC=$gogc ALLOC_MB="$budget" "$bin" || continue
        for m in cycles allocs_per_s tick_p50 tick_p99 tick_p999 tick_max gap_max gaps_over_1ms \
                 cpu_ns_per_alloc; do
          v=$(awk -v m="$m" '$1 == "RESULT" && $2 == m { print $3 }' "$TMP/$name.out")
          [[ -n $v ]] && record "$impl" "lh$gogc.$m" "$v"
        done
        # Every pause of every round, pooled for the percentiles.
        awk '$1 == "PAUSES" { for (i = 2; i <= NF; i++) print $i }' "$TMP/$name.out" \
          >>"$TMP/v.$impl.lh$gogc.pauses"
        read -r _ wall rss _ _ <"$TMP/$name.time"
        record "$impl" "lh$gogc.rss" "$(awk -v k="$rss" 'BEGIN { printf "%.0f", k / 1024 }')"
        log "round $r $impl liveheap GOGC=$gogc: $(awk '$1 == "RESULT" { printf "%s=%s ", $2, $3 }' \
            "$TMP/$name.out")rss=$((rss / 1024)) MiB (${wall} s)"
      done
    done
  done
fi

# forcedgc: GOMAXPROCS 1 and 2; gort with and without marking on the Ps.
if [[ " $PARTS " == *" forcedgc "* ]]; then
  for r in $(seq "$ROUNDS"); do
    for procs in 1 2; do
      for impl in go gort gortcoll; do
        bin=${BIN[${impl%coll}_forcedgc]:-}
        [[ -n $bin ]] || continue
        workers=1
        [[ $impl == gortcoll ]] && workers=0
        name=fg-$impl-$procs-$r
        run_prog "$name" 600 env GOMAXPROCS=$procs GODEBUG=gcworkers=$workers "$bin" || continue
        v=$(awk '$1 == "RESULT" && $2 == "ms_per_gc" { print $3 }' "$TMP/$name.out")
        [[ -n $v ]] && record "$impl" "fg$procs" "$v"
        log "round $r $impl forcedgc GOMAXPROCS=$procs: ${v:-n/a} ms per collection"
      done
    done
  done
fi

# --- report ----------------------------------------------------------------------------
# ratio a b: a/b with 2 decimals (2 significant digits below 0.01), n/a unless both numbers.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) {
      r = a / b; d = 2
      if (r > 0 && r < 0.01) d = 1 - int(log(r) / log(10) - 1)
      printf "%." d "f", r
    } else printf "n/a" }'
}
med() { median "$TMP/v.$1.$2"; }
# pct <impl> <metric> <p>: nearest-rank percentile of the pooled values (n/a if none).
pct() {
  [[ -s $TMP/v.$1.$2 ]] || { echo n/a; return; }
  sort -g "$TMP/v.$1.$2" | awk -v p="$3" '{ v[NR] = $1 } END {
    i = int(NR * p / 100); if (i < NR * p / 100) i++; if (i < 1) i = 1; print v[i] }'
}
worst() { maximum "$TMP/v.$1.$2"; }
bt_row() {  # bt_row <label> <metric> <median|max>
  local f=med g h b n
  [[ $3 == max ]] && f=worst
  g=$($f go "$2") h=$($f gort "$2") b=$($f boehm "$2") n=$($f newdelete "$2")
  echo "| $1 | $g | $h | $b | $n | $(ratio "$h" "$g") | $(ratio "$h" "$b") | $(ratio "$h" "$n") |"
}
lh_row() {  # lh_row <label> <metric> [<percentile>]: median of the rounds, or a percentile
  local g h
  if [[ -n ${3:-} ]]; then
    g=$(pct go "$2" "$3") h=$(pct gort "$2" "$3")
  else
    g=$(med go "$2") h=$(med gort "$2")
  fi
  echo "| $1 | $g | $h | $(ratio "$h" "$g") |"
}
npauses() { [[ -s $TMP/v.$1.lh100.pauses ]] && wc -l <"$TMP/v.$1.lh100.pauses" || echo 0; }
slowdown() {  # allocs/s with GOGC=off over allocs/s with GOGC=100 (median of each)
  ratio "$(med "$1" lhoff.allocs_per_s)" "$(med "$1" lh100.allocs_per_s)"
}
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
boehm_version=$(dpkg-query -W -f='${Version}' libgc-dev 2>/dev/null || echo unknown)
{
  if [[ " $PARTS " == *" binarytrees "* ]]; then
    echo "## GC: binary-trees, depth $DEPTH (gort vs Go vs Boehm GC vs new/delete)"
    echo
    echo "| metric | Go | gort | Boehm | new/delete | gort/Go | gort/Boehm | gort/new-delete |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    bt_row "wall time (s)" wall median
    bt_row "peak RSS (MiB)" rss median
    bt_row "longest GC pause (ms), worst round" pause max
    bt_row "longest stop of one goroutine for its stack scan (ms), worst round" sstop max
    bt_row "collector's longest handshake wait and cache flush (ms, no goroutine waits), worst round" swait max
    bt_row "GC cycles" ngc median
    echo
    echo "Lower is better; a ratio below 1 means gort is faster or smaller. Median of $ROUNDS"
    echo "rounds (implementations alternating; a failed run is left out, see the failures"
    echo "below), except the longest pause: the largest of all rounds. Plain sequential"
    echo "binary-trees in all four; the check lines of every run were compared with Go's."
    echo "Boehm's pause is the whole collection (the mutator waits for it); new/delete has"
    echo "no collector."
    echo
    echo "### binary-trees at depth $OFF_DEPTH, with and without a collector (GOGC=100 vs off)"
    echo
    echo "| metric | Go | gort | gort/Go |"
    echo "|---|---:|---:|---:|"
    for gogc in 100 off; do
      lh_row "wall time (s), GOGC=$gogc" "bt$gogc.wall"
      lh_row "CPU time (s, user+sys), GOGC=$gogc" "bt$gogc.cpu"
    done
    for m in wall cpu; do
      sg=$(ratio "$(med go bt100.$m)" "$(med go btoff.$m)")
      sh=$(ratio "$(med gort bt100.$m)" "$(med gort btoff.$m)")
      echo "| slowdown, $m time (GOGC=100 / GOGC=off) | $sg | $sh | $(ratio "$sh" "$sg") |"
    done
    echo
    echo "GOGC=off maps fresh memory for every object (page faults a collected heap does not"
    echo "pay), which flatters GOGC=100 a little, equally in both runtimes."
    echo
  fi
  if [[ " $PARTS " == *" liveheap "* ]]; then
    echo "## GC: long-lived heap, $LIVE_MB MiB live, $PARKED parked goroutines (gort vs Go)"
    echo
    echo "| metric | Go | gort | gort/Go |"
    echo "|---|---:|---:|---:|"
    lh_row "pause p50 (us), GOGC=100" lh100.pauses 50
    lh_row "pause p99 (us), GOGC=100" lh100.pauses 99
    lh_row "pause max (us), GOGC=100" lh100.pauses 100
    lh_row "cycles per round (steady phase, $ALLOC_MB MiB allocated), GOGC=100" lh100.cycles
    lh_row "allocations/s, GOGC=100" lh100.allocs_per_s
    lh_row "allocations/s, GOGC=off ($OFF_ALLOC_MB MiB allocated)" lhoff.allocs_per_s
    sg=$(slowdown go) sh=$(slowdown gort)
    echo "| mutator slowdown (allocs/s GOGC=off / GOGC=100) | $sg | $sh | $(ratio "$sh" "$sg") |"
    lh_row "peak RSS (MiB), GOGC=100" lh100.rss
    lh_row "peak RSS (MiB), GOGC=off" lhoff.rss
    lh_row "CPU per allocation (ns, user+sys), GOGC=100" lh100.cpu_ns_per_alloc
    lh_row "CPU per allocation (ns, user+sys), GOGC=off" lhoff.cpu_ns_per_alloc
    cg=$(ratio "$(med go lh100.cpu_ns_per_alloc)" "$(med go lhoff.cpu_ns_per_alloc)")
    ch=$(ratio "$(med gort lh100.cpu_ns_per_alloc)" "$(med gort lhoff.cpu_ns_per_alloc)")
    echo "| CPU slowdown (CPU per allocation GOGC=100 / GOGC=off) | $cg | $ch | $(ratio "$ch" "$cg") |"
    for gogc in 100 off; do
      lh_row "1 ms ticker, lateness p50 (us), GOGC=$gogc" "lh$gogc.tick_p50"
      lh_row "1 ms ticker, lateness p99 (us), GOGC=$gogc" "lh$gogc.tick_p99"
      lh_row "1 ms ticker, lateness p99.9 (us), GOGC=$gogc" "lh$gogc.tick_p999"
      lh_row "1 ms ticker, lateness max (us), GOGC=$gogc" "lh$gogc.tick_max"
      lh_row "allocating loop, longest gap (us), GOGC=$gogc" "lh$gogc.gap_max"
      lh_row "allocating loop, gaps over 1 ms per round, GOGC=$gogc" "lh$gogc.gaps_over_1ms"
    done
    echo
    echo "Pauses are per cycle (a cycle's pauses together), from Go's MemStats.PauseNs and"
    echo "gort's gc::stats() (see liveheap_gort.cpp), pooled over $LIVE_ROUNDS rounds:"
    echo "$(npauses go) cycles for Go, $(npauses gort) for gort (with few cycles, p99 is the"
    echo "max). Other rows: medians of the rounds. Lower is better except allocations/s."
    echo "The GOGC=off runs pre-fault their budget first (allocate it once, collect it once,"
    echo "unmeasured), so neither mode pays page faults in the steady phase. The ticker and"
    echo "loop-gap rows are what goroutines see during cycles (gort stops no goroutine for a"
    echo "phase change, so its 'pause' is not what a goroutine waits): compare each runtime's"
    echo "GOGC=100 row with its own GOGC=off row."
    echo
  fi
  if [[ " $PARTS " == *" forcedgc "* ]]; then
    echo "## GC: forced collection of a 32 MiB live tree, 1 and 2 Ps (gort vs Go)"
    echo
    echo "| metric | Go | gort | gort, collector thread alone | gort/Go |"
    echo "|---|---:|---:|---:|---:|"
    for procs in 1 2; do
      g=$(med go "fg$procs") h=$(med gort "fg$procs") c=$(med gortcoll "fg$procs")
      echo "| ms per collection, GOMAXPROCS=$procs | $g | $h | $c | $(ratio "$h" "$g") |"
    done
    sg=$(ratio "$(med go fg1)" "$(med go fg2)") sh=$(ratio "$(med gort fg1)" "$(med gort fg2)")
    sc=$(ratio "$(med gortcoll fg1)" "$(med gortcoll fg2)")
    echo "| speedup from 1 to 2 Ps | $sg | $sh | $sc | $(ratio "$sh" "$sg") |"
    echo
    echo "runtime.GC() and gc::collect() (mark and sweep) of a binary tree of depth 20"
    echo "(2,097,151 nodes of 16 bytes) with nothing else running, so every P is idle and"
    echo "marks; median of $ROUNDS rounds of 20 collections each. 'Collector thread alone' is"
    echo "gort with GODEBUG=gcworkers=0 (marking off the Ps, the design before worker.cpp)."
    echo
  fi
  echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r);" \
       "load average at start: $LOAD (other load skews the timings)"
  echo "- $(go version 2>/dev/null || echo 'go: not found'); $(g++ --version 2>/dev/null |
       head -n1); Boehm GC (libgc-dev) $boehm_version"
  echo "- gort commit: $gort_rev; build dir: $BUILD"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} | tee "$BUILD/compare-gc.md"

if [[ -s $TMP/failures ]]; then
  log "$(wc -l <"$TMP/failures") failure(s), shown as n/a:"
  sed 's/^/[gc]   /' "$TMP/failures" >&2
  exit 1
fi
