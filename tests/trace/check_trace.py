#!/usr/bin/env python3
"""Checks a gort execution trace (Chrome Trace Event JSON) and prints what it contains.

Usage: check_trace.py trace.json... > summary.txt (counts summed over the files)

Fails (exit 1) if the file is not JSON, an event lacks its fields, or the complete ("X")
events of one track are not properly nested, which the viewers need. Otherwise prints one
"key<TAB>count" line per kind of content, for tests/trace/trace_test.cpp to assert on.
"""
import collections
import json
import sys


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


def check(events, counts, errors):
    tracks = collections.defaultdict(list)
    flows_s, flows_f = set(), set()
    for e in events:
        for field in ("ph", "pid", "tid", "ts", "name"):
            if field not in e:
                errors.append("missing %s in %r" % (field, e))
        ph = e.get("ph")
        counts["ph " + str(ph)] += 1
        if ph == "X":
            if e["dur"] < 0:
                errors.append("negative dur %r" % e)
            tracks[(e["pid"], e["tid"])].append(e)
            args = e.get("args", {})
            if "end" in args:
                counts["end " + args["end"]] += 1
                counts["goroutine slice pid %d" % e["pid"]] += 1
            else:
                counts["slice %s pid %d" % (e["cat"], e["pid"])] += 1
        elif ph == "i":
            counts["instant " + e["name"].split(" G")[0]] += 1
        elif ph in ("b", "e"):
            counts["%s %s %s" % (e["cat"], ph, e["name"])] += 1
        elif ph in ("B", "E"):
            counts["%s %s %s" % (e["cat"], ph, e["name"])] += 1
        elif ph == "s":
            flows_s.add(e["id"])
        elif ph == "f":
            flows_f.add(e["id"])
        elif ph == "M" and e["name"] == "thread_name":
            counts["track %d %s" % (e["pid"], e["args"]["name"])] += 1
    counts["flows matched"] += len(flows_s & flows_f)
    counts["flows unmatched finish"] += len(flows_f - flows_s)
    for key, xs in tracks.items():
        xs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in xs:
            end = e["ts"] + e["dur"]
            while stack and stack[-1] <= e["ts"] + 1e-3:
                stack.pop()
            if stack and end > stack[-1] + 1e-3:
                errors.append("overlap on %r: %r" % (key, e))
            stack.append(end)


if __name__ == "__main__":
    sys.exit(main())
