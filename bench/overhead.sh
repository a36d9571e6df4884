#!/usr/bin/env bash
# What the execution tracer and the CPU profiler cost on the scheduler and channel
# benchmarks, runs interleaved variant by variant:
#   baseline  binaries from an older commit (optional: BASELINE=dir holding bench_sched and
#             bench_chan), to check that a hook costs nothing while off
#   off       this build, nothing running (every hook is a load and a branch)
#   trace     every benchmark traced (GORT_BENCH_TRACE=/dev/null: events are recorded and
#             converted to JSON by the writer thread, then dropped)
#   cpuprof   every benchmark under the CPU profiler at 100 Hz (GORT_BENCH_CPUPROFILE=
#             /dev/null; the profile is written after the timed loop)
# Prints the best ns_per_op of REPS runs of each, and each variant over off. Usage:
#   [BASELINE=dir] [REPS=3] [VARIANTS="off trace cpuprof"] bench/overhead.sh [build/release]
set -euo pipefail
build=${1:-build/release}
reps=${REPS:-3}
f_sched='BM_SpawnJoin|BM_YieldPingPong'
f_chan='BM_ChanPingPong|BM_ChanBuffered/prod:1|BM_Select2Chan'
variants=${VARIANTS:-off trace cpuprof}
[[ -n "${BASELINE:-}" ]] && variants="baseline $variants"
out=$(mktemp)
for _ in $(seq "$reps"); do
  for v in $variants; do
    dir=$build/bench env=()
    case $v in
      baseline) dir=$BASELINE ;;
      trace) env=(GORT_BENCH_TRACE=/dev/null) ;;
      cpuprof) env=(GORT_BENCH_CPUPROFILE=/dev/null) ;;
    esac
    for suite in "bench_sched $f_sched" "bench_chan $f_chan"; do
      read -r bin filter <<<"$suite"
      env "${env[@]}" "$dir/$bin" --benchmark_filter="$filter" --benchmark_min_time=0.2 \
        2>/dev/null | grep '^BM_' | sed "s/^/$v /" >>"$out"
    done
  done
done
python3 - "$out" "$variants" <<'PY'
import collections, re, sys
best = collections.defaultdict(lambda: float("inf"))
for line in open(sys.argv[1]):
    v, name = line.split()[:2]
    m = re.search(r"ns_per_op=([\d.]+)(ns|us|ms)", line)
    if m:
        x = float(m.group(1)) * {"ns": 1, "us": 1e3, "ms": 1e6}[m.group(2)]
        best[(name, v)] = min(best[(name, v)], x)
vs = sys.argv[2].split()
others = [v for v in vs if v != "off"]
print("%-40s" % "benchmark (best ns/op)" + "".join("%10s" % v for v in vs) +
      "".join("%12s" % (v + "/off") for v in others))
for name in sorted({k[0] for k in best}):
    print("%-40s" % name + "".join("%10.1f" % best[(name, v)] for v in vs) +
          "".join("%12.3f" % (best[(name, v)] / best[(name, "off")]) for v in others))
PY
rm -f "$out"
