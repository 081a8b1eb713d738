#!/usr/bin/env python3
"""bench/run's bookkeeping (standard library only).

    report.py calls                       INFO commandstats on stdin -> total
                                          calls, INFO itself excluded
    report.py add OUT IMPL CASE BEFORE AFTER [ERRFILE]
                                          reads the driver's JSON line(s) on
                                          stdin, adds redis_calls_per_op and
                                          appends them to OUT
    report.py na OUT IMPL CASE REASON     records an impl that cannot run
    report.py table RESULTS               the table and the issue's ratios

redis_calls_per_op: the driver's own count of the timed region
(`redis_calls_timed`, INFO snapshots around the timed loop, set-up DELs
excluded) divided by ops. A driver line without it (a tool that does not
count) falls back to the process-wide delta bench/run took around the whole
driver run, warm-up and set-up included, and is marked
`"redis_calls_scope": "process"`.
"""

from __future__ import annotations

import json
import re
import sys

TARGETS = [
    # (label, numerator impl, denominator impl, case, target)
    ("node-addon / js-port, warm_seq", "node-addon", "js-port", "warm_seq", 20.0),
    ("node-addon / js-port, warm_c64", "node-addon", "js-port", "warm_c64", 10.0),
    ("node-addon-redis-only / js-port, warm_seq", "node-addon-redis-only", "js-port", "warm_seq", 1.8),
    ("node-addon-redis-only / js-port, cold_seq", "node-addon-redis-only", "js-port", "cold_seq", 1.8),
    ("node-addon / js-port, promote_seq", "node-addon", "js-port", "promote_seq", 1.5),
    ("python-module / python-port, warm_seq", "python-module", "python-port", "warm_seq", 20.0),
    ("python-module / python-port, cold_seq", "python-module", "python-port", "cold_seq", 1.8),
    ("python-module / python-port, warm_c64", "python-module", "python-port", "warm_c64", None),
    ("python-module-redis-only / python-port, cold_seq", "python-module-redis-only", "python-port", "cold_seq", None),
]


def calls(text: str) -> int:
    total = 0
    for line in text.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line.strip())
        if m and m.group(1) != "info":
            total += int(m.group(2))
    return total


def add(out: str, impl: str, case: str, before: int, after: int) -> int:
    lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
    if not lines:
        print(f"{impl} {case}: the driver printed no JSON line", file=sys.stderr)
        return 1
    with open(out, "a") as f:
        for raw in lines:
            rec = json.loads(raw)
            ops = rec.get("ops") or 0
            rec["redis_calls_process"] = after - before
            if "redis_calls_timed" in rec:
                rec["redis_calls_per_op"] = round(rec["redis_calls_timed"] / ops, 3) if ops else None
            else:
                rec["redis_calls_per_op"] = round((after - before) / ops, 3) if ops else None
                rec["redis_calls_scope"] = "process"
            f.write(json.dumps(rec) + "\n")
    return 0


def na(out: str, impl: str, case: str, reason: str) -> int:
    with open(out, "a") as f:
        f.write(json.dumps({"impl": impl, "case": case, "error": reason}) + "\n")
    return 0


def fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def table(path: str) -> int:
    recs = [json.loads(l) for l in open(path) if l.strip()]
    header = ("impl", "case", "ops", "ops/s", "p50 µs", "p99 µs", "redis calls/op")
    rows = []
    notes: list[str] = []
    for r in recs:
        if "error" in r:
            same = [x for x in recs if x["impl"] == r["impl"]]
            if all(x.get("error") == r["error"] for x in same):
                # One row for an impl whose every case failed alike.
                if r is same[0]:
                    rows.append((r["impl"], "(all)", "-", "-", "-", "-", f"[{len(notes) + 1}]"))
                    notes.append(f"[{len(notes) + 1}] {r['impl']}: {r['error']}")
                continue
            rows.append((r["impl"], r["case"], "-", "-", "-", "-", f"[{len(notes) + 1}]"))
            notes.append(f"[{len(notes) + 1}] {r['impl']} {r['case']}: {r['error']}")
            continue
        per_op = r.get("redis_calls_per_op")
        calls_s = "-" if per_op is None else f"{per_op:.2f}" + ("*" if r.get("redis_calls_scope") == "process" else "")
        rows.append(
            (
                r["impl"],
                r["case"],
                str(r["ops"]),
                fmt(r["ops_per_s"]),
                fmt(r["p50_us"], 1),
                fmt(r["p99_us"], 1),
                calls_s,
            )
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    widths[-1] = len(header[-1])

    def line(cells: tuple[str, ...]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i < 2 or i == len(cells) - 1 else c.rjust(widths[i]))
        return "  ".join(out).rstrip()

    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))
    for n in notes:
        print(n)
    if any(r.get("redis_calls_scope") == "process" for r in recs):
        print("* whole driver run (warm-up and set-up included): the driver did not count its timed region")

    by = {(r["impl"], r["case"]): r for r in recs if "error" not in r}
    print()
    print("ratios (ops/s, same run)")
    for label, num, den, case, target in TARGETS:
        a, b = by.get((num, case)), by.get((den, case))
        if not a or not b or not b.get("ops_per_s"):
            print(f"  {label}: -  (not measured)")
            continue
        ratio = a["ops_per_s"] / b["ops_per_s"]
        verdict = "" if target is None else (f"  target >= {target:g}x: " + ("met" if ratio >= target else "NOT met"))
        print(f"  {label}: {ratio:.2f}x{verdict}")
    return 0


def main() -> int:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "calls":
        print(calls(sys.stdin.read()))
        return 0
    if cmd == "add":
        return add(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    if cmd == "na":
        return na(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    if cmd == "table":
        return table(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
