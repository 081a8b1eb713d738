"""The clients as Python code uses them: typed results, enums, aware
datetimes, context managers, shared handles, logging without secrets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import pytest

import lupa_core
from lupa_core import Environment, Status


def seed(lupa: lupa_core.Lupa) -> None:
    lupa.create_project("org_1", "Docs", id="abc1234567")
    lupa.create_deployment("abc1234567", "snp1", id="dep_old", created_at="2025-01-01T00:00:00Z")
    lupa.create_deployment("abc1234567", "snp2", id="dep_new", created_at=datetime(2025, 6, 1, tzinfo=timezone.utc))
    lupa.set_status("dep_old", Status.READY)
    lupa.set_status("dep_new", "ready")


def test_sync_round_trip() -> None:
    with lupa_core.Lupa("memory://", "memory://") as lupa:
        seed(lupa)
        p = lupa.promote("abc1234567", "dep_old")
        assert p.success and p.deployment.environment is Environment.PRODUCTION and p.demoted is None
        assert lupa.resolve("abc1234567", api_key="lupa_sk_live_abc").deployment == "dep_old"
        assert lupa.resolve("abc1234567", api_key_environment="test").deployment == "dep_new"
        assert lupa.resolve_headers("abc1234567", "Bearer lupa_pk_test_x").deployment == "dep_new"
        r = lupa.resolve_headers("abc1234567", "Bearer lupa_pk_live_x", "dep_new")
        assert r.deployment == "dep_new" and r.source in (lupa_core.Source.CACHE, lupa_core.Source.STORE)
        assert lupa.resolve("abc1234567", internal=True, target_environment=Environment.STAGING).deployment == "dep_new"
        page = lupa.list_deployments("abc1234567", limit=1)
        assert [d.id for d in page.items] == ["dep_new"] and page.next_cursor is not None
        rest = lupa.list_deployments("abc1234567", cursor=page.next_cursor)
        assert [d.id for d in rest.items] == ["dep_old"]
        d = lupa.get_deployment("dep_new")
        assert d.created_at == datetime(2025, 6, 1, tzinfo=timezone.utc)
        assert d.created_at.tzinfo is not None and d.created_at.utcoffset() == timedelta(0)
        assert d.status == "ready" and str(d.status) == "ready"
        assert dataclasses.asdict(d)["environment"] == "staging"
        assert "dep_new" in repr(d)
        lupa.promote("abc1234567", "dep_new")
        rb = lupa.rollback("abc1234567")
        assert rb.deployment.id == "dep_old" and rb.demoted == "dep_new"
        h = lupa.history("abc1234567")
        seqs = [e.seq for e in h.items]
        assert seqs == sorted(seqs, reverse=True) and len(seqs) == 5
        assert h.items[0].to_environment is Environment.PRODUCTION
        assert lupa.set_environment("abc1234567", "dep_old", "staging").deployment.environment is Environment.STAGING
        assert lupa.delete_deployment("abc1234567", "dep_old").deployment.id == "dep_old"
        assert lupa.health().store.state == "ok"
        assert lupa.apply_pending_cache_updates() == 0
        assert [p.id for p in lupa.list_projects().items] == ["abc1234567"]
        assert lupa.delete_project("abc1234567").cache_pending is False
    assert lupa.closed


def test_async_round_trip_shares_the_handle() -> None:
    async def main() -> None:
        async with lupa_core.AsyncLupa("sqlite::memory:", "memory://") as lupa:
            sync = lupa.as_sync()
            await asyncio.to_thread(seed, sync)
            await lupa.promote("abc1234567", "dep_new")
            answers = await asyncio.gather(*(lupa.resolve("abc1234567", api_key_environment="live") for _ in range(50)))
            assert {a.deployment for a in answers} == {"dep_new"}
            await lupa.create_deployment("abc1234567", "snp3", id="dep_wip")
            with pytest.raises(lupa_core.BadRequestError) as e:
                await lupa.resolve("abc1234567", deployment_id="dep_wip", api_key_environment="live")
            assert e.value.code == "DEPLOYMENT_NOT_READY"
            with pytest.raises(lupa_core.NotFoundError) as nf:
                await lupa.resolve("abc1234567", deployment_id="dep_nope", api_key_environment="live")
            assert nf.value.code == "DEPLOYMENT_NOT_FOUND"
            probe = await lupa.cache_probe()
            assert probe is not None
            assert await probe.get("project:abc1234567:production_deployment") == "dep_new"
            ttl = await probe.ttl("project:abc1234567:production_deployment")
            assert ttl is not None and 3500 < ttl <= 3600
        assert lupa.closed

    asyncio.run(main())


def test_async_cancellation_leaves_the_handle_usable() -> None:
    async def main() -> None:
        lupa = await lupa_core.AsyncLupa().open()
        await lupa.create_project("org", "Docs", id="p1")
        fut = lupa.get_project("p1")
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await fut
        assert (await lupa.get_project("p1")).name == "Docs"
        await lupa.close()

    asyncio.run(main())


def test_no_cache_means_no_probe() -> None:
    with lupa_core.Lupa("memory://", "none") as lupa:
        assert lupa.cache_probe() is None
        assert lupa.health().cache.state == "disabled"


def test_repr_and_logs_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lupa_core")
    secret_url = "postgres://user:hunter2secret@127.0.0.1:1/db"
    lupa = lupa_core.AsyncLupa(secret_url, "none", store_timeout=0.5)
    assert "hunter2secret" not in repr(lupa) and "***" in repr(lupa)

    async def main() -> None:
        with pytest.raises(lupa_core.ServiceUnavailableError) as e:
            await lupa.open()
        assert "hunter2secret" not in str(e.value)

    asyncio.run(main())
    records = [r for r in caplog.records if r.name.startswith("lupa_core")]
    assert records, "no library event reached logging"
    assert all("hunter2secret" not in r.getMessage() for r in records)
    assert any(r.levelno == logging.WARNING and r.name == "lupa_core.store" for r in records)


def test_closing_twice_is_harmless() -> None:
    lupa = lupa_core.Lupa()
    lupa.close()
    lupa.close()
    with pytest.raises(lupa_core.ServiceUnavailableError, match="closed"):
        lupa.get_project("p1")


def test_the_interpreter_exits_cleanly_right_after_async_calls() -> None:
    """Results reach asyncio from the runtime's threads; exiting while one of
    them is still inside Python must not abort the process."""
    import subprocess
    import sys

    script = (
        "import asyncio, lupa_core\n"
        "async def main():\n"
        "    async with lupa_core.AsyncLupa() as l:\n"
        "        await l.create_project('o', 'n', id='p1')\n"
        "        await asyncio.gather(*(l.get_project('p1') for _ in range(20)))\n"
        "asyncio.run(main())\n"
    )
    for _ in range(15):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
