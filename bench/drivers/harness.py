"""The shared loop of the Python drivers (python_port.py, python_module.py).

The five cases of issue 6, each bounded in count and in time, timing every
op with ``time.perf_counter_ns`` and counting the Redis commands of the timed
region from ``INFO commandstats`` (excluding INFO itself and the driver's own
set-up commands, such as the per-op DEL of cold_seq). Same data, project
order (seeded), and JSON line as ``harness.js``::

    {"impl","case","ops","ops_per_s","p50_us","p99_us","redis_calls_timed",...}

``warm_c64`` runs 64 asyncio tasks when the adapter has ``aresolve_live``
(the module's ``AsyncLupa``), else 64 threads (the synchronous port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import threading
import time
from typing import Any, Callable, Protocol

import redis

CASES = ["warm_seq", "warm_c64", "cold_seq", "explicit_seq", "promote_seq"]


class Unsupported(Exception):
    """The impl cannot run here (an option the binding does not have yet)."""


class Adapter(Protocol):
    def resolve_live(self, project: str) -> str: ...
    def resolve_explicit(self, project: str, deployment: str) -> str: ...
    def promote(self, project: str, deployment: str) -> None: ...
    def cold_prepare(self) -> None: ...
    def cold_keys(self, project: str) -> list[str]: ...
    def close(self) -> None: ...


def project_id(i: int) -> str:
    return f"bp{i:05d}"


def prod_id(p: str) -> str:
    return f"{p}_prod"


def stg_id(p: str) -> str:
    return f"{p}_stg"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--store", default=os.environ.get("LUPA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    ap.add_argument("--cache", required=True)
    ap.add_argument("--schema", default="lupa_bench")
    ap.add_argument("--prefix", default="lupa-bench:")
    ap.add_argument("--case", default=",".join(CASES))
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--projects", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup-seconds", type=float, default=120.0)
    ap.add_argument("--local", choices=["on", "off"], default="on")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    for c in args.case.split(","):
        if c not in CASES:
            ap.error(f"unknown case {c} (one of {', '.join(CASES)})")
    for k in ("ops", "projects", "seconds", "concurrency"):
        if getattr(args, k) <= 0:
            ap.error(f"--{k} must be positive")
    return args


def command_calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    total = 0
    for name, value in stats.items():
        cmd = name[len("cmdstat_") :] if name.startswith("cmdstat_") else name
        if cmd != "info":
            total += int(value["calls"])
    return total


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[idx]


def expect(got: Any, want: str, what: str) -> None:
    if got != want:
        raise RuntimeError(f"{what}: expected {want}, got {got}")


def run_case(impl: str, case: str, args: argparse.Namespace, adapter: Any, r: redis.Redis) -> dict[str, Any]:
    rand = random.Random(args.seed * 7919 + CASES.index(case))
    order = [project_id(i) for i in range(args.projects)]
    rand.shuffle(order)
    now = time.perf_counter_ns
    lat: list[float] = []
    setup_calls = 0
    timed_ns = 0
    restore: Callable[[], None] | None = None

    def deadline(seconds: float) -> int:
        return now() + int(seconds * 1e9)

    def warm(fn: Callable[[str], None]) -> list[str]:
        end = deadline(args.warmup_seconds)
        warmed = []
        for p in order:
            if now() > end:
                break
            fn(p)
            warmed.append(p)
        if not warmed:
            raise RuntimeError("warm-up resolved no project")
        return warmed

    if case in ("warm_seq", "explicit_seq"):
        explicit = case == "explicit_seq"
        if explicit:
            warmed = warm(lambda p: expect(adapter.resolve_explicit(p, stg_id(p)), stg_id(p), f"explicit {p}"))
        else:
            warmed = warm(lambda p: expect(adapter.resolve_live(p), prod_id(p), f"resolve {p}"))
        picks = [warmed[int(rand.random() * len(warmed))] for _ in range(args.ops)]
        before = command_calls(r)
        end = deadline(args.seconds)
        resolve_explicit, resolve_live = adapter.resolve_explicit, adapter.resolve_live
        for p in picks:
            if now() >= end:
                break
            t0 = now()
            got = resolve_explicit(p, stg_id(p)) if explicit else resolve_live(p)
            dt = now() - t0
            lat.append(dt / 1000)
            timed_ns += dt
            if got != (stg_id(p) if explicit else prod_id(p)):
                raise RuntimeError(f"{p}: wrong answer {got}")
        after = command_calls(r)
    elif case == "warm_c64":
        warmed = warm(lambda p: expect(adapter.resolve_live(p), prod_id(p), f"resolve {p}"))
        concurrently = _c64_asyncio if hasattr(adapter, "aresolve_live") else _c64_threads
        # A short concurrent warm-up, so connections a client opens under
        # concurrency are open before the timed region.
        warm_picks = [warmed[int(rand.random() * len(warmed))] for _ in range(args.concurrency * 4)]
        concurrently(adapter, warm_picks, args.concurrency, deadline(args.warmup_seconds), [])
        picks = [warmed[int(rand.random() * len(warmed))] for _ in range(args.ops)]
        before = command_calls(r)
        timed_ns = concurrently(adapter, picks, args.concurrency, deadline(args.seconds), lat)
        after = command_calls(r)
    elif case == "cold_seq":
        # Each project once, so no tier of this process holds its answer; its
        # keys are deleted right before its op, outside the timed region.
        # Connections are opened by resolving the last few projects first.
        spare = min(10, len(order) - 1)
        for p in order[len(order) - spare :]:
            adapter.resolve_live(p)
        adapter.cold_prepare()
        n = min(args.ops, len(order) - spare)
        before = command_calls(r)
        end = deadline(args.seconds)
        for p in order[:n]:
            if now() >= end:
                break
            r.delete(*adapter.cold_keys(p))
            setup_calls += 1
            t0 = now()
            got = adapter.resolve_live(p)
            dt = now() - t0
            lat.append(dt / 1000)
            timed_ns += dt
            if got != prod_id(p):
                raise RuntimeError(f"{p}: wrong answer {got}")
        after = command_calls(r)
    elif case == "promote_seq":
        # Round robin over k (at most 50) projects, each op promoting the
        # deployment that is staging now, so each project alternates between
        # its two ready deployments; any project left swapped is swapped back
        # after the timed region.
        k = max(1, min(len(order), 50, args.ops // 2))
        chosen = order[:k]
        current = {p: adapter.resolve_live(p) for p in chosen}
        before = command_calls(r)
        end = deadline(args.seconds)
        for i in range(args.ops):
            if now() >= end:
                break
            p = chosen[i % k]
            target = stg_id(p) if current[p] == prod_id(p) else prod_id(p)
            t0 = now()
            adapter.promote(p, target)
            dt = now() - t0
            lat.append(dt / 1000)
            timed_ns += dt
            current[p] = target
        after = command_calls(r)

        def restore() -> None:
            for p in chosen:
                if current[p] != prod_id(p):
                    adapter.promote(p, prod_id(p))
            for p in chosen:
                expect(adapter.resolve_live(p), prod_id(p), f"after restore {p}")

    ops = len(lat)
    lat.sort()
    seconds = timed_ns / 1e9
    line: dict[str, Any] = {
        "impl": impl,
        "case": case,
        "ops": ops,
        "ops_per_s": round(ops / seconds, 1) if seconds > 0 else 0,
        "p50_us": round(percentile(lat, 0.5), 2),
        "p99_us": round(percentile(lat, 0.99), 2),
        "redis_calls_timed": after - before - setup_calls,
        "seconds": round(seconds, 3),
    }
    if case == "warm_c64":
        line["concurrency"] = args.concurrency
        line["c64_mode"] = "asyncio" if hasattr(adapter, "aresolve_live") else "threads"
    if restore is not None:
        restore()
    return line


def _c64_asyncio(adapter: Any, picks: list[str], concurrency: int, end: int, lat: list[float]) -> int:
    return asyncio.run(_c64_asyncio_run(adapter, picks, concurrency, end, lat))


async def _c64_asyncio_run(adapter: Any, picks: list[str], concurrency: int, end: int, lat: list[float]) -> int:
    now = time.perf_counter_ns
    next_i = 0
    aresolve = adapter.aresolve_live

    async def worker() -> None:
        nonlocal next_i
        while next_i < len(picks) and now() < end:
            p = picks[next_i]
            next_i += 1
            t0 = now()
            got = await aresolve(p)
            lat.append((now() - t0) / 1000)
            if got != prod_id(p):
                raise RuntimeError(f"{p}: wrong answer {got}")

    t0 = now()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return now() - t0


def _c64_threads(adapter: Any, picks: list[str], concurrency: int, end: int, lat: list[float]) -> int:
    now = time.perf_counter_ns
    lock = threading.Lock()
    next_i = 0
    errors: list[BaseException] = []
    start = threading.Barrier(concurrency + 1)

    def worker() -> None:
        nonlocal next_i
        mine: list[float] = []
        start.wait()
        try:
            while now() < end:
                with lock:
                    if next_i >= len(picks):
                        break
                    p = picks[next_i]
                    next_i += 1
                t0 = now()
                got = adapter.resolve_live(p)
                mine.append((now() - t0) / 1000)
                if got != prod_id(p):
                    raise RuntimeError(f"{p}: wrong answer {got}")
        except BaseException as e:  # reported after the join
            errors.append(e)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start.wait()
    t0 = now()
    for t in threads:
        t.join()
    elapsed = now() - t0
    if errors:
        raise errors[0]
    return elapsed


def main(impl_name: str | Callable[[argparse.Namespace], str], make_adapter: Callable[[argparse.Namespace], Any]) -> None:
    """Runs every case named by --case and prints one JSON line each."""
    args = parse_args(sys.argv[1:])
    impl = impl_name(args) if callable(impl_name) else impl_name
    r = redis.Redis.from_url(args.cache, decode_responses=True)
    adapter = None
    status = 0
    try:
        adapter = make_adapter(args)
        for case in args.case.split(","):
            line = run_case(impl, case, args, adapter, r)
            print(json.dumps(line), flush=True)
    except Unsupported as e:
        print(f"{impl}: not available: {e}", file=sys.stderr)
        status = 3
    except Exception as e:
        import traceback

        traceback.print_exc()
        print(f"{impl}: {e}", file=sys.stderr)
        status = 1
    finally:
        if adapter is not None:
            try:
                adapter.close()
            except Exception:
                pass
        r.close()
    sys.exit(status)
