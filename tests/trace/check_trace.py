#!/usr/bin/env python3
"""Checks a gort execution trace (Chrome Trace Event JSON) and prints what it contains.

Usage: check_trace.py trace.json... > summary.txt (counts summed over the files)

Fails (exit 1) if the file is not JSON, or if Perfetto's JSON importer (ui.perfetto.dev;
google/perfetto src/trace_processor/importers/json/, read at v58) would drop, merge or
misplace part of it. The import is replayed as Perfetto does it: timestamps and
durations rounded to integer ns (json_trace_tokenizer.cc CoerceToTs), events sorted by
(ts, "E" first, "X" by decreasing dur, file order) (trace_sorter.h SlowOperatorLess),
one slice stack per track (slice_tracker.cc MaybeCloseStack), flows bound to the top of
their track's stack (flow_tracker.cc). The rules:

- fields: ph is one gort writes (X i s f b e B E M); pid and tid are integers in
  [0, 2^32) (CoerceToUint32 turns anything else into 0); ts (and dur for X) numbers >= 0.
- tid is never 0 (the tokenizer replaces tid 0 by the pid: P0 would merge into P1) nor
  equal to the pid (Perfetto's "main thread"), and one (pid, tid) has one thread_name.
- slices (X, B/E, thread instants) on one (pid, tid) track nest: a partial overlap is
  moved to an overflow track (Perfetto >= v57) or dropped (before). On the P and M tracks
  a goroutine slice never encloses an M or P slice (equal slices nest in file order).
- b/e (tasks, regions) carry "id2":{"local":n} (a plain "id" puts them in Perfetto's
  global "Global Legacy Events" group, not under their process); every e closes an open
  b with the same cat, id and name, and none is left open.
- flows: every "s" binds to the unblock instant just before it (same track and ts);
  every "f" has "bp":"e", follows an "s" with the same (id, cat, name) and binds to the
  slice of the goroutine that instant unblocked, beginning at the f's ts on its track.
- instants have s "t", "p" or "g"; M events name threads and processes with a non-empty
  args.name and sort them with a numeric args.sort_index.

Otherwise prints one "key<TAB>count" line per kind of content, for
tests/trace/trace_test.cpp to assert on.
"""
import collections
import json
import math
import sys

PHASES = set("XisfbeBEM")
BIG = 2**63


def main():
    counts = collections.Counter()
    errors = []
    for path in sys.argv[1:]:
        with open(path) as f:
            check(json.load(f)["traceEvents"], counts, errors)
    for k in sorted(counts):
        print("%s\t%d" % (k, counts[k]))
    print("errors\t%d" % len(errors))
    for err in errors[:10]:
        print("error: " + err, file=sys.stderr)
    return 1 if errors else 0


def to_ns(v):
    """Perfetto's CoerceToTs: microseconds (int or double) to integer ns (llround)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, int):
        return v * 1000
    if v == math.trunc(v):
        return int(v) * 1000
    x = v * 1000.0
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def is_u32(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32


def count(e, counts):
    """The summary trace_test.cpp asserts on."""
    ph = e.get("ph")
    counts["ph " + str(ph)] += 1
    if ph == "X":
        args = e.get("args", {})
        if "end" in args:
            counts["end " + args["end"]] += 1
            counts["goroutine slice pid %d" % e["pid"]] += 1
        else:
            counts["slice %s pid %d" % (e.get("cat"), e["pid"])] += 1
    elif ph == "i":
        counts["instant " + e["name"].split(" G")[0]] += 1
    elif ph in ("b", "e", "B", "E"):
        counts["%s %s %s" % (e.get("cat"), ph, e["name"])] += 1
    elif ph == "M" and e["name"] == "thread_name":
        counts["track %d %s" % (e["pid"], e["args"]["name"])] += 1


def close_stack(stack, ts, dur):
    """slice_tracker.cc MaybeCloseStack: pops what ended; returns a partially overlapped
    slice, if any. Entries: [ts, dur or None (open B/b), event]."""
    incomplete = False
    i = len(stack) - 1
    while i >= 0:
        s_ts, s_dur, _ = stack[i]
        if s_dur is None:
            incomplete = True
            i -= 1
            continue
        end = s_ts + s_dur
        if incomplete:
            if ts > end:  # an open slice inside one that ended: Perfetto truncates it
                return stack[i]
            i -= 1
            continue
        if end < ts or (end == ts and not (s_dur == 0 and dur == 0)):
            stack.pop()
            i = len(stack) - 1
            continue
        if dur is not None and ts < end < ts + dur:
            return stack[i]
        i -= 1
    return None


def check(events, counts, errors):
    def err(msg, e):
        errors.append("%s: %s" % (msg, json.dumps(e)[:300]))

    evs = []
    names = collections.defaultdict(set)
    for idx, e in enumerate(events):
        missing = [f for f in ("ph", "pid", "tid", "name") if f not in e]
        if e.get("ph") != "M" and "ts" not in e:
            missing.append("ts")
        if missing:
            err("missing " + ",".join(missing), e)
            continue
        count(e, counts)
        ph, pid, tid = e["ph"], e["pid"], e["tid"]
        if ph not in PHASES:
            err("phase gort does not write (Perfetto may ignore it)", e)
        if not is_u32(pid) or not is_u32(tid):
            err("pid/tid not an integer in [0, 2^32)", e)
            continue
        if tid == 0 or tid == pid:
            err("tid 0 (Perfetto uses the pid instead) or tid == pid", e)
        ts = to_ns(e.get("ts", 0))
        dur = to_ns(e["dur"]) if ph == "X" else 0
        if ts is None or ts < 0 or dur is None or dur < 0:
            err("ts/dur not a number >= 0", e)
            continue
        if ph == "i" and e.get("s", "t") not in ("t", "p", "g"):
            err("instant scope", e)
        if ph == "M":
            a = e.get("args", {})
            if e["name"] in ("thread_name", "process_name"):
                if not isinstance(a.get("name"), str) or not a["name"]:
                    err("metadata without args.name", e)
                elif e["name"] == "thread_name":
                    names[(pid, tid)].add(a["name"])
            elif e["name"] in ("thread_sort_index", "process_sort_index"):
                if isinstance(a.get("sort_index"), bool) or not isinstance(
                        a.get("sort_index"), (int, float)):
                    err("sort index not a number", e)
            continue
        if ph in ("b", "e"):
            if "id" in e or not isinstance(e.get("id2"), dict) or "local" not in e["id2"]:
                err("async event without id2.local (Perfetto files it as global)", e)
                continue
        evs.append((ts, dur, idx, e))
    for key, ns in names.items():
        if len(ns) > 1:
            errors.append("several thread names for %r: %r" % (key, sorted(ns)))

    def order(x):
        ts, dur, idx, e = x
        k = -BIG if e["ph"] == "E" else BIG - dur if e["ph"] == "X" else BIG
        return (ts, k, idx)

    def end_open_slice(stack, ts, e):
        """Ends the innermost open slice of e's category and name on stack; False if none."""
        close_stack(stack, ts, None)
        for s in reversed(stack):
            if s[1] is None and s[2].get("cat") == e.get("cat") and s[2]["name"] == e["name"]:
                s[1] = ts - s[0]
                if s is stack[-1]:
                    stack.pop()
                return True
        return False

    evs.sort(key=order)
    stacks = collections.defaultdict(list)
    flow_src = {}  # (id, cat, name) -> the unblock instant the "s" bound to
    flows_s, flows_f = set(), set()
    for ts, dur, _, e in evs:
        ph = e["ph"]
        thread = stacks[(e["pid"], e["tid"])]
        if ph in ("X", "B") or (ph == "i" and e.get("s", "t") == "t"):
            over = close_stack(thread, ts, None if ph == "B" else dur)
            if over is not None:
                err("overlaps %s %r on (%d, %d)" % (over[2]["ph"], over[2]["name"], e["pid"],
                                                    e["tid"]), e)
                continue
            if (ph == "X" and e.get("cat") == "proc" and thread
                    and thread[-1][2].get("cat") == "goroutine"):
                err("M/P slice inside a goroutine slice", e)
            thread.append([ts, None if ph == "B" else dur, e])
        elif ph == "E":
            if not end_open_slice(thread, ts, e):
                err("E without B", e)
        elif ph in ("b", "e"):
            stack = stacks[("async", e["pid"], e.get("cat"), str(e["id2"]["local"]))]
            if ph == "b":
                close_stack(stack, ts, None)
                stack.append([ts, None, e])
            elif not end_open_slice(stack, ts, e):
                err("e without b", e)
        elif ph == "s":
            key = (str(e.get("id")), e.get("cat"), e["name"])
            flows_s.add(e.get("id"))
            top = thread[-1][2] if thread else None
            if key in flow_src:
                err("flow id used twice", e)
            elif (top is None or top["ph"] != "i" or to_ns(top["ts"]) != ts
                  or top.get("cat") != "unblock"):
                err("flow start not bound to its unblock instant (bound to %r)" % (
                    top and top["name"]), e)
            else:
                flow_src[key] = top
        elif ph == "f":
            key = (str(e.get("id")), e.get("cat"), e["name"])
            flows_f.add(e.get("id"))
            top = thread[-1][2] if thread else None
            src = flow_src.get(key)
            if e.get("bp") != "e":
                err("flow end without bp:e (binds to the next slice instead)", e)
            elif src is None:
                err("flow end without a bound start", e)
            elif (top is None or top["ph"] != "X" or to_ns(top["ts"]) != ts
                  or top.get("args", {}).get("goroutine") != src["args"]["goroutine"]):
                err("flow end not bound to G%s's slice (bound to %r)" % (
                    src["args"]["goroutine"], top and top["name"]), e)
            else:
                counts["flows bound"] += 1
    for key, stack in stacks.items():
        for s in stack:
            if s[1] is None:
                err("never ended", s[2])
    counts["flows matched"] += len(flows_s & flows_f)
    counts["flows unmatched finish"] += len(flows_f - flows_s)


if __name__ == "__main__":
    sys.exit(main())
