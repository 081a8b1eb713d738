"""A handle opened before fork() works in the children (gunicorn --preload,
multiprocessing with the fork start method): each child opens its own
connections; the parent's stay untouched and keep working."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import time
from typing import Any

import pytest

import lupa_core

CHILDREN = 4
RESOLVES = 1000
TIMEOUT = 120.0

_lupa: lupa_core.Lupa | None = None


def _child(results: Any, index: int) -> None:
    assert _lupa is not None
    wrong = 0
    errors: list[str] = []
    for i in range(RESOLVES):
        try:
            if i % 4 == 0:
                ok = _lupa.resolve("abc1234567", api_key="lupa_sk_live_prefork").deployment == "dep_prod"
            elif i % 4 == 1:
                ok = _lupa.resolve("abc1234567", api_key_environment="test").deployment == "dep_stage"
            elif i % 4 == 2:
                ok = _lupa.resolve("abc1234567", deployment_id="dep_stage", api_key_environment="live").deployment == "dep_stage"
            else:
                try:
                    _lupa.resolve("abc1234567", deployment_id="dep_missing", api_key_environment="live")
                    ok = False
                except lupa_core.NotFoundError:
                    ok = True
            wrong += not ok
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))
            wrong += 1
    results.put((index, os.getpid(), wrong, errors[:3]))


def _run(lupa: lupa_core.Lupa) -> None:
    global _lupa
    _lupa = lupa
    lupa.create_project("org", "Docs", id="abc1234567")
    for dep in ("dep_prod", "dep_stage"):
        lupa.create_deployment("abc1234567", "snp", id=dep)
        lupa.set_status(dep, "ready")
    lupa.promote("abc1234567", "dep_prod")
    # The parent has used its pool, its cache connection and its runtime.
    assert lupa.resolve("abc1234567", api_key_environment="live").deployment == "dep_prod"

    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(results, i)) for i in range(CHILDREN)]
    started = time.monotonic()
    for p in procs:
        p.start()
    answers = []
    try:
        for _ in procs:
            left = TIMEOUT - (time.monotonic() - started)
            answers.append(results.get(timeout=max(left, 0.1)))
    except Exception:  # noqa: BLE001
        pytest.fail(f"children did not answer within {TIMEOUT} s (a hang after fork?)")
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    for index, pid, wrong, errors in answers:
        assert pid != os.getpid()
        assert wrong == 0, f"child {index}: {wrong} wrong answers of {RESOLVES}: {errors}"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    # The parent's own connections were not disturbed by the children.
    probe = lupa.cache_probe()
    if probe is not None:
        probe.clear()
    assert lupa.resolve("abc1234567", api_key_environment="live").deployment == "dep_prod"
    lupa.promote("abc1234567", "dep_stage")
    assert lupa.resolve("abc1234567", api_key_environment="live").deployment == "dep_stage"


@pytest.mark.timeout(TIMEOUT + 60)
def test_prefork_postgres_redis(pg_redis_lupa: lupa_core.Lupa) -> None:
    _run(pg_redis_lupa)


@pytest.mark.timeout(TIMEOUT + 60)
def test_prefork_memory() -> None:
    with lupa_core.Lupa("memory://", "memory://") as lupa:
        _run(lupa)


def test_an_in_memory_sqlite_handle_refuses_to_cross_fork() -> None:
    lupa = lupa_core.Lupa("sqlite::memory:", "memory://")
    lupa.create_project("org", "Docs", id="p1")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()

    def child() -> None:
        try:
            lupa.get_project("p1")
            q.put("answered")
        except lupa_core.ServiceUnavailableError as e:
            q.put(e.message)

    p = ctx.Process(target=child)
    p.start()
    got = q.get(timeout=60)
    p.join(timeout=10)
    assert "cannot cross fork()" in got
    assert lupa.get_project("p1").id == "p1"
    lupa.close()


def test_a_handle_made_before_fork_without_a_runtime(services: tuple[str, str]) -> None:
    """The asyncio client opens lazily: made in the parent, first used in
    the children (an app module imported before the workers fork)."""
    tag = secrets.token_hex(5)
    opts: dict[str, Any] = {"schema": f"lupa_py_{tag}", "key_prefix": f"lupa-py-{tag}:"}
    setup = lupa_core.Lupa(*services, **opts)
    setup.create_project("org", "Docs", id="p1")
    lazy = lupa_core.AsyncLupa(*services, **opts)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()

    def child() -> None:
        import asyncio

        async def main() -> str:
            return (await lazy.get_project("p1")).name

        q.put(asyncio.run(main()))

    procs = [ctx.Process(target=child) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        assert [q.get(timeout=60) for _ in procs] == ["Docs", "Docs"]
    finally:
        for p in procs:
            p.join(timeout=10)
        setup.cache_probe().clear()  # type: ignore[union-attr]
        setup.drop_storage()
        setup.close()
