"""Closing a handle while calls are in flight, at every public method.

For each public method of ``Lupa``, ``AsyncLupa`` and the cache probes,
many calls that do real work run (threads for the sync client, tasks for
the asyncio one) while the handle is closed. Every call either returns a
valid result or raises a ``LupaError`` with a documented code; a call made
after the close raises ``ServiceUnavailableError`` (``STORAGE_UNAVAILABLE``).
Nothing raises another type, nothing hangs, closing twice is harmless. The
list of methods comes from the classes themselves: a new public method
without an entry here fails the coverage test."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import lupa_core
from conftest import require_services

PROJECT = "cls1234567"
THREADS = 8
JOIN_SECONDS = 30.0

# Codes the operations below give on a healthy handle while they race each
# other (a rollback with nothing to roll back to, a promotion of a
# deployment another thread deleted...). Closing may add STORAGE_UNAVAILABLE;
# INTERNAL and INVALID_ARGUMENT would be bugs.
RACE_CODES = {
    "PROJECT_NOT_FOUND",
    "DEPLOYMENT_NOT_FOUND",
    "NO_PRODUCTION_DEPLOYMENT",
    "NO_STAGING_DEPLOYMENT",
    "DEPLOYMENT_NOT_IN_PROJECT",
    "DEPLOYMENT_NOT_READY",
    "PROJECT_EXISTS",
    "DEPLOYMENT_EXISTS",
    "INVALID_STATUS_TRANSITION",
    "PRODUCTION_CONFLICT",
    "NO_ROLLBACK_TARGET",
    "STORAGE_UNAVAILABLE",
}

_ids = itertools.count()


def _uid(tag: str) -> str:
    return f"{tag}{next(_ids):07d}"[-10:]


def _seed(lupa: lupa_core.Lupa) -> None:
    lupa.create_project("org", "Close", id=PROJECT)
    for dep in ("dep_a", "dep_b", "dep_c"):
        lupa.create_deployment(PROJECT, "snp", id=dep)
        lupa.set_status(dep, "ready")
    lupa.promote(PROJECT, "dep_a")
    lupa.promote(PROJECT, "dep_b")
    lupa.set_environment(PROJECT, "dep_c", "staging")


def _sync_create_then_delete_project(l: lupa_core.Lupa) -> object:
    p = l.create_project("org", "n", id=_uid("x"))
    return l.delete_project(p.id)


def _sync_new_ready_deployment(l: lupa_core.Lupa) -> object:
    dep = _uid("n")
    l.create_deployment(PROJECT, "snp", id=dep)
    return l.set_status(dep, "ready", "built")


def _sync_create_then_delete_deployment(l: lupa_core.Lupa) -> object:
    dep = _uid("z")
    l.create_deployment(PROJECT, "snp", id=dep)
    return l.delete_deployment(PROJECT, dep)


def _flip(l: lupa_core.Lupa) -> str:
    return "dep_a" if next(_ids) % 2 else "dep_b"


# One call per public method of Lupa, doing real work on the seeded store.
SYNC_CALLS: dict[str, Callable[[lupa_core.Lupa], object]] = {
    "create_project": lambda l: l.create_project("org", "n", id=_uid("c")),
    "get_project": lambda l: l.get_project(PROJECT),
    "list_projects": lambda l: l.list_projects(limit=10),
    "delete_project": _sync_create_then_delete_project,
    "create_deployment": lambda l: l.create_deployment(PROJECT, "snp", id=_uid("d")),
    "get_deployment": lambda l: l.get_deployment("dep_a"),
    "list_deployments": lambda l: l.list_deployments(PROJECT, limit=5),
    "set_status": _sync_new_ready_deployment,
    "promote": lambda l: l.promote(PROJECT, _flip(l)),
    "set_environment": lambda l: l.set_environment(PROJECT, "dep_c", "staging"),
    "delete_deployment": _sync_create_then_delete_deployment,
    "rollback": lambda l: l.rollback(PROJECT),
    "history": lambda l: l.history(PROJECT, limit=5),
    "resolve": lambda l: l.resolve(PROJECT, api_key="lupa_sk_live_close"),
    "resolve_headers": lambda l: l.resolve_headers(PROJECT, "Bearer lupa_pk_test_close"),
    "health": lambda l: l.health(),
    "stats": lambda l: l.stats(),
    "metrics_text": lambda l: l.metrics_text(),
    "apply_pending_cache_updates": lambda l: l.apply_pending_cache_updates(),
    "drop_storage": lambda l: l.drop_storage(),
    "cache_probe": lambda l: l.cache_probe(),
    "as_async": lambda l: l.as_async(),
}
# Not operations: close is what the tests do, closed is asserted directly.
SYNC_NOT_CALLS = {"close", "closed"}

PROBE_CALLS: dict[str, Callable[[Any], object]] = {
    "get": lambda p: p.get("close-k"),
    "ttl": lambda p: p.ttl("close-k"),
    "set": lambda p: p.set("close-k", "v", 30.0),
    "clear": lambda p: p.clear(),
}


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_every_public_method_is_covered() -> None:
    assert _public(lupa_core.Lupa) - SYNC_NOT_CALLS == set(SYNC_CALLS), "a public method of Lupa is not covered"
    assert _public(lupa_core.AsyncLupa) - ASYNC_NOT_CALLS == set(ASYNC_CALLS), "a public method of AsyncLupa is not covered"
    assert _public(lupa_core.CacheProbe) == set(PROBE_CALLS)
    assert _public(lupa_core.AsyncCacheProbe) == set(PROBE_CALLS)


def _check_error(name: str, e: BaseException, *, closed: bool) -> None:
    assert isinstance(e, lupa_core.LupaError), f"{name}: {type(e).__name__}: {e!r}"
    allowed = {"STORAGE_UNAVAILABLE"} if closed else RACE_CODES
    assert e.code in allowed, f"{name}: {e!r}"
    if e.code == "STORAGE_UNAVAILABLE":
        assert isinstance(e, lupa_core.ServiceUnavailableError), f"{name}: {e!r}"
        assert e.http_status == 503


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "memory":
        yield "memory://", "memory://"
        return
    with tempfile.TemporaryDirectory() as d:
        yield f"sqlite://{os.path.join(d, 'close.db')}", "memory://"


def _race_sync(lupa: lupa_core.Lupa, name: str, call: Callable[[], object], run_for: float = 0.15) -> dict[str, int]:
    """THREADS threads call `call` in a loop; the handle is closed after
    `run_for` seconds; each thread makes one more call after the close."""
    counts = {"ok": 0, "error": 0, "after": 0}
    bad: list[str] = []
    lock = threading.Lock()
    started = threading.Barrier(THREADS + 1)

    def worker() -> None:
        try:
            started.wait(timeout=10)
            while True:
                was_closed = lupa.closed
                try:
                    call()
                    with lock:
                        counts["ok"] += 1
                except BaseException as e:  # noqa: BLE001
                    _check_error(name, e, closed=was_closed)
                    with lock:
                        counts["error"] += 1
                if was_closed:
                    with lock:
                        counts["after"] += 1
                    return
        except BaseException as e:  # noqa: BLE001
            with lock:
                bad.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    started.wait(timeout=10)
    time.sleep(run_for)
    lupa.close()
    assert lupa.closed
    lupa.close()  # twice is harmless
    for t in threads:
        t.join(timeout=JOIN_SECONDS)
    assert not any(t.is_alive() for t in threads), f"{name}: a call hung after close"
    assert not bad, f"{name}: {bad[:3]}"
    assert counts["after"] == THREADS, counts
    return counts


def _after_close_sync(lupa: lupa_core.Lupa) -> None:
    for name, call in SYNC_CALLS.items():
        if name == "as_async":
            view = call(lupa)
            assert isinstance(view, lupa_core.AsyncLupa) and view.closed
            continue
        with pytest.raises(lupa_core.ServiceUnavailableError) as e:
            call(lupa)
        assert e.value.code == "STORAGE_UNAVAILABLE", name


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SYNC_CALLS))
def test_sync_close_while_calls_run(store: tuple[str, str], name: str) -> None:
    lupa = lupa_core.Lupa(*store)
    _seed(lupa)
    call = SYNC_CALLS[name]
    counts = _race_sync(lupa, name, lambda: call(lupa))
    _after_close_sync(lupa)
    assert counts["ok"] + counts["error"] >= THREADS


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(PROBE_CALLS))
def test_sync_close_while_probe_calls_run(name: str) -> None:
    lupa = lupa_core.Lupa("memory://", "memory://")
    probe = lupa.cache_probe()
    assert probe is not None
    call = PROBE_CALLS[name]
    _race_sync(lupa, f"probe.{name}", lambda: call(probe))
    for n, c in PROBE_CALLS.items():
        try:
            c(probe)
        except BaseException as e:  # noqa: BLE001
            _check_error(f"probe.{n} after close", e, closed=True)


@pytest.mark.timeout(300)
def test_sync_close_while_every_method_runs_on_postgres_redis() -> None:
    """One round on the real services: all methods at once, in their own
    schema and key prefix, dropped afterwards by a second handle."""
    db, redis = require_services()
    tag = secrets.token_hex(5)
    options: dict[str, Any] = {"schema": f"lupa_close_{tag}", "key_prefix": f"lupa-close-{tag}:"}
    lupa = lupa_core.Lupa(db, redis, **options)
    try:
        _seed(lupa)
        calls = [c for n, c in sorted(SYNC_CALLS.items()) if n != "drop_storage"]
        cycle = itertools.cycle(calls)
        lock = threading.Lock()

        def one() -> object:
            with lock:
                c = next(cycle)
            return c(lupa)

        _race_sync(lupa, "all (postgres+redis)", one, run_for=1.0)
        _after_close_sync(lupa)
    finally:
        lupa.close()
        cleanup = lupa_core.Lupa(db, redis, **options)
        probe = cleanup.cache_probe()
        if probe is not None:
            probe.clear()
        cleanup.drop_storage()
        cleanup.close()


# ---------------------------------------------------------------- asyncio


async def _async_create_then_delete_project(l: lupa_core.AsyncLupa) -> object:
    p = await l.create_project("org", "n", id=_uid("x"))
    return await l.delete_project(p.id)


async def _async_new_ready_deployment(l: lupa_core.AsyncLupa) -> object:
    dep = _uid("n")
    await l.create_deployment(PROJECT, "snp", id=dep)
    return await l.set_status(dep, "ready", "built")


async def _async_create_then_delete_deployment(l: lupa_core.AsyncLupa) -> object:
    dep = _uid("z")
    await l.create_deployment(PROJECT, "snp", id=dep)
    return await l.delete_deployment(PROJECT, dep)


async def _plain(value: object) -> object:
    return value


async def _async_probe(l: lupa_core.AsyncLupa) -> object:
    probe = await l.cache_probe()
    if probe is not None:
        await probe.get("close-k")
    return probe


ASYNC_CALLS: dict[str, Callable[[lupa_core.AsyncLupa], Any]] = {
    "open": lambda l: l.open(),
    "create_project": lambda l: l.create_project("org", "n", id=_uid("c")),
    "get_project": lambda l: l.get_project(PROJECT),
    "list_projects": lambda l: l.list_projects(limit=10),
    "delete_project": _async_create_then_delete_project,
    "create_deployment": lambda l: l.create_deployment(PROJECT, "snp", id=_uid("d")),
    "get_deployment": lambda l: l.get_deployment("dep_a"),
    "list_deployments": lambda l: l.list_deployments(PROJECT, limit=5),
    "set_status": _async_new_ready_deployment,
    "promote": lambda l: l.promote(PROJECT, "dep_a" if next(_ids) % 2 else "dep_b"),
    "set_environment": lambda l: l.set_environment(PROJECT, "dep_c", "staging"),
    "delete_deployment": _async_create_then_delete_deployment,
    "rollback": lambda l: l.rollback(PROJECT),
    "history": lambda l: l.history(PROJECT, limit=5),
    "resolve": lambda l: l.resolve(PROJECT, api_key="lupa_sk_live_close"),
    "resolve_headers": lambda l: l.resolve_headers(PROJECT, "Bearer lupa_pk_test_close"),
    "health": lambda l: l.health(),
    # Plain methods on AsyncLupa: called synchronously inside the task.
    "stats": lambda l: _plain(l.stats()),
    "metrics_text": lambda l: _plain(l.metrics_text()),
    "apply_pending_cache_updates": lambda l: l.apply_pending_cache_updates(),
    "drop_storage": lambda l: l.drop_storage(),
    "cache_probe": _async_probe,
    "as_sync": lambda l: _plain(l.as_sync()),
}
ASYNC_NOT_CALLS = {"close", "closed"}
TASKS = 32


async def _race_async(lupa: lupa_core.AsyncLupa, name: str, call: Callable[[], Any], run_for: float = 0.15) -> None:
    closing = asyncio.Event()
    bad: list[str] = []
    after = 0

    async def worker() -> None:
        nonlocal after
        while True:
            was_closed = closing.is_set()
            try:
                await asyncio.wait_for(call(), timeout=JOIN_SECONDS)
            except asyncio.TimeoutError:
                bad.append(f"{name}: a call hung")
                return
            except BaseException as e:  # noqa: BLE001
                try:
                    _check_error(name, e, closed=was_closed)
                except AssertionError as a:
                    bad.append(str(a))
                    return
            if was_closed:
                after += 1
                return
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(worker()) for _ in range(TASKS)]
    await asyncio.sleep(run_for)
    closing.set()
    await asyncio.wait_for(lupa.close(), timeout=JOIN_SECONDS)
    assert lupa.closed
    await asyncio.wait_for(lupa.close(), timeout=JOIN_SECONDS)
    done, pending = await asyncio.wait(tasks, timeout=JOIN_SECONDS * 2)
    assert not pending, f"{name}: {len(pending)} tasks hung after close"
    for t in done:
        t.result()
    assert not bad, bad[:3]
    assert after == TASKS


async def _after_close_async(lupa: lupa_core.AsyncLupa) -> None:
    for name, call in ASYNC_CALLS.items():
        if name == "as_sync":
            view = lupa.as_sync()
            assert view.closed
            continue
        with pytest.raises(lupa_core.ServiceUnavailableError) as e:
            await asyncio.wait_for(call(lupa), timeout=JOIN_SECONDS)
        assert e.value.code == "STORAGE_UNAVAILABLE", name


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(ASYNC_CALLS))
def test_async_close_while_calls_run(store: tuple[str, str], name: str) -> None:
    async def main() -> None:
        lupa = lupa_core.AsyncLupa(*store)
        _seed(lupa.as_sync())
        call = ASYNC_CALLS[name]
        await _race_async(lupa, name, lambda: call(lupa))
        await _after_close_async(lupa)

    asyncio.run(main())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(PROBE_CALLS))
def test_async_close_while_probe_calls_run(name: str) -> None:
    async def main() -> None:
        lupa = lupa_core.AsyncLupa("memory://", "memory://")
        probe = await lupa.cache_probe()
        assert probe is not None
        call = PROBE_CALLS[name]
        await _race_async(lupa, f"probe.{name}", lambda: call(probe))
        for n, c in PROBE_CALLS.items():
            try:
                await asyncio.wait_for(c(probe), timeout=JOIN_SECONDS)
            except BaseException as e:  # noqa: BLE001
                _check_error(f"probe.{n} after close", e, closed=True)

    asyncio.run(main())


def test_closing_before_opening_and_twice() -> None:
    async def main() -> None:
        lupa = lupa_core.AsyncLupa("memory://")
        await lupa.close()
        await lupa.close()
        assert lupa.closed
        await _after_close_async(lupa)

    asyncio.run(main())
    lupa = lupa_core.Lupa()
    lupa.close()
    lupa.close()
    _after_close_sync(lupa)
