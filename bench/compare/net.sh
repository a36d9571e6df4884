#!/usr/bin/env bash
# Networking comparison, Go vs gort, measured in one run on one machine (the "net" suite;
# bench/compare/run.sh runs it with COMPARE_SUITES=net).
#
#   usage: bench/compare/net.sh [build-dir]      (default: build/release under the repo)
#
# 1. TCP echo: one Go load generator (go/net, -mode=echo-client: 64 connections, each
#    writing a 64-byte message and reading it back, 1 s warm-up, 5 s measured) drives Go's
#    echo server, then gort's (examples/echo_server.cpp); requests/s = round trips/s.
# 2. HTTP hello world: `wrk -c64 -t2 -d5s --latency` against Go's net/http server, then
#    gort's (examples/http_hello.cpp); requests/s and p99 latency as wrk reports them.
# Servers and clients share the machine (both see the same contention). Each measurement
# runs NET_ROUNDS times (default 3), alternating Go and gort; the median is reported.
# Prints a markdown table and writes it to <build-dir>/compare-net.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build/release}
BUILD=$(cd "$BUILD" && pwd)
ROUNDS=${NET_ROUNDS:-3}
TMP=$(mktemp -d "$BUILD/compare-net.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
log() { echo "[net] $*" >&2; }

command -v wrk >/dev/null || { log "wrk not found (apt-get install wrk; tools/deps.sh)"; exit 1; }
log "go build ($(go version))"
(cd "$HERE/go" && env GOCACHE="$TMP/gocache" GOPATH="$TMP/gopath" GOENV=off GOFLAGS= \
  GOPROXY=off GO111MODULE=on go build -o "$TMP/gonet" ./net) >&2
if [[ -f $BUILD/CMakeCache.txt ]]; then
  log "cmake --build $BUILD --target gort_echo_server gort_http_hello"
  cmake --build "$BUILD" --target gort_echo_server gort_http_hello >&2
fi
GORT_ECHO=$BUILD/examples/gort_echo_server
GORT_HTTP=$BUILD/examples/gort_http_hello

# start_server <out-file> <cmd...>: starts it on a free port; sets ADDR to its address.
# (Not run in a $(...) subshell, so that PIDS keeps the server for cleanup.)
start_server() {
  local out=$1
  shift
  ADDR=""
  "$@" >"$out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    ADDR=$(grep -o '127\.0\.0\.1:[0-9]*' "$out" | head -n1 || true)
    [[ -n $ADDR ]] && break
    sleep 0.05
  done
  [[ -n $ADDR ]] || { log "server did not start: $*"; cat "$out" >&2; exit 1; }
}
stop_server() {
  local p=${PIDS[-1]}
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset 'PIDS[-1]'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# echo_round <impl> <server cmd...>: one client run against a fresh server.
echo_round() {
  local impl=$1 v
  shift
  start_server "$TMP/$impl-echo.out" "$@"
  v=$("$TMP/gonet" -mode=echo-client -addr="$ADDR" -conns=64 -size=64 -duration=5s |
    awk '$1 == "RESULT" { print $3 }')
  stop_server
  log "echo $impl: $v req/s"
  echo "$v" >>"$TMP/echo-$impl"
}

# wrk_round <impl> <server cmd...>: wrk against a fresh server; appends rps and p99 (ms).
wrk_round() {
  local impl=$1
  shift
  start_server "$TMP/$impl-http.out" "$@"
  wrk -c64 -t2 -d5s --latency "http://$ADDR/" >"$TMP/wrk-$impl.txt"
  stop_server
  awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk-$impl.txt" >>"$TMP/rps-$impl"
  # wrk prints "99%  1.23ms" (us, ms or s): normalise to ms.
  awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; print v }' \
    "$TMP/wrk-$impl.txt" >>"$TMP/p99-$impl"
  log "http $impl: $(tail -n1 "$TMP/rps-$impl") req/s, p99 $(tail -n1 "$TMP/p99-$impl") ms"
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  log "round $r/$ROUNDS"
  echo_round go "$TMP/gonet" -mode=echo-server
  echo_round gort "$GORT_ECHO" 127.0.0.1:0
  wrk_round go "$TMP/gonet" -mode=http-server
  wrk_round gort "$GORT_HTTP" 127.0.0.1:0
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
eg=$(median <"$TMP/echo-go") eh=$(median <"$TMP/echo-gort")
rg=$(median <"$TMP/rps-go") rh=$(median <"$TMP/rps-gort")
pg=$(median <"$TMP/p99-go") ph=$(median <"$TMP/p99-gort")
{
  echo "## gort networking vs Go"
  echo
  echo "| workload | Go | gort | gort/Go |"
  echo "|---|---:|---:|---:|"
  echo "| TCP echo, 64 conns, 64-byte messages (req/s, higher is better) | $eg | $eh | $(ratio "$eh" "$eg") |"
  echo "| HTTP hello, wrk -c64 -t2 (req/s, higher is better) | $rg | $rh | $(ratio "$rh" "$rg") |"
  echo "| HTTP hello, wrk p99 latency (ms, lower is better) | $pg | $ph | $(ratio "$ph" "$pg") |"
  echo
  echo "- median of $ROUNDS rounds, Go and gort alternating; clients on the same machine"
  echo "- machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r); load average at start: $LOAD"
  echo "- $(go version); $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2); $(g++ --version | head -n1)"
  echo "- gort commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none); date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} | tee "$BUILD/compare-net.md"
