#!/usr/bin/env bash
# The execution tracer's cost on the scheduler and channel benchmarks, interleaved:
#   baseline  binaries built without the tracer (optional: BASELINE=dir holding bench_sched
#             and bench_chan from a commit before it), to check that off costs nothing
#   off       this build, no trace running (every hook is a load and a branch)
#   on        this build, every benchmark traced (GORT_BENCH_TRACE=/dev/null: events are
#             recorded and converted to JSON by the writer thread, then dropped)
# Prints the best ns_per_op of REPS runs of each. Usage:
#   [BASELINE=/tmp/baseline] [REPS=3] bench/trace_overhead.sh [build/release]
set -euo pipefail
build=${1:-build/release}
reps=${REPS:-3}
f_sched='BM_SpawnJoin|BM_YieldPingPong'
f_chan='BM_ChanPingPong|BM_ChanBuffered/prod:1|BM_Select2Chan'
variants="off on"
[[ -n "${BASELINE:-}" ]] && variants="baseline off on"
out=$(mktemp)
for _ in $(seq "$reps"); do
  for v in $variants; do
    dir=$build/bench env=()
    [[ $v == baseline ]] && dir=$BASELINE
    [[ $v == on ]] && env=(GORT_BENCH_TRACE=/dev/null)
    env "${env[@]}" "$dir/bench_sched" --benchmark_filter="$f_sched" --benchmark_min_time=0.2 \
      2>/dev/null | grep '^BM_' | sed "s/^/$v /" >>"$out"
    env "${env[@]}" "$dir/bench_chan" --benchmark_filter="$f_chan" --benchmark_min_time=0.2 \
      2>/dev/null | grep '^BM_' | sed "s/^/$v /" >>"$out"
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
print("%-40s" % "benchmark (best ns/op)" + "".join("%10s" % v for v in vs) + "   on/off")
for name in sorted({k[0] for k in best}):
    row = [best[(name, v)] for v in vs]
    print("%-40s" % name + "".join("%10.1f" % x for x in row) +
          "   %6.2f" % (best[(name, "on")] / best[(name, "off")]))
PY
rm -f "$out"
