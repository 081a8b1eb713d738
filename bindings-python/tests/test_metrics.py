"""stats() and metrics_text() on both clients: the counters move exactly as a
scripted sequence of calls predicts, and the text is what a Prometheus
server reads (parsed here by prometheus_client's own parser), with the same
values as stats()."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import secrets
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

import lupa_core
from lupa_core import ErrorCode, Source, Stats

from conftest import require_services


def ready_production(lupa: lupa_core.Lupa, project: str, deployment: str) -> None:
    lupa.create_project("org_1", "Stats", id=project)
    # Created for production: promoted the moment it is ready (one promotion).
    lupa.create_deployment(project, "snp1", id=deployment, environment="production")
    lupa.set_status(deployment, "ready")


@pytest.fixture(params=["memory+memory", "memory+none", "postgres+redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[lupa_core.Lupa, bool]]:
    """A fresh sync handle, and whether it has a shared cache."""
    if request.param == "postgres+redis":
        db, redis = require_services()
        tag = secrets.token_hex(5)
        lupa = lupa_core.Lupa(db, redis, schema=f"lupa_pym_{tag}", key_prefix=f"lupa-pym-{tag}:", cache_timeout=2.0)
    else:
        lupa = lupa_core.Lupa("memory://", {"memory+memory": "memory://", "memory+none": "none"}[request.param])
    has_cache = request.param != "memory+none"
    try:
        yield lupa, has_cache
    finally:
        if has_cache:
            probe = lupa.cache_probe()
            assert probe is not None
            probe.clear()
        lupa.drop_storage()
        lupa.close()


def test_counts_move_as_the_sequence_predicts(backend: tuple[lupa_core.Lupa, bool]) -> None:
    lupa, has_cache = backend
    ready_production(lupa, "proj_m", "dep_m")
    before = lupa.stats()
    assert isinstance(before, Stats)
    assert before.promotions == 1 and before.rollbacks == 0
    assert before.resolutions.total() == 0 and before.latency.count() == 0

    # First resolve: misses process memory and the shared cache; the store answers.
    assert lupa.resolve("proj_m", api_key_environment="live").source is Source.STORE
    s = lupa.stats()
    assert (s.local.hits, s.local.misses) == (0, 1)
    assert (s.cache.hits, s.cache.misses) == ((0, 1) if has_cache else (0, 0))
    assert (s.resolutions.local, s.resolutions.cache, s.resolutions.store) == (0, 0, 1)
    if not has_cache:
        # Without a shared cache nothing else asks the store: one statement
        # answered the cold resolve. (With one, the background task that
        # applies pending cache updates also asks the store, on its own
        # schedule.)
        assert s.store.queries == before.store.queries + 1
    else:
        assert s.store.queries >= before.store.queries + 1

    # Second: process memory, nothing more reaches the store.
    assert lupa.resolve("proj_m", api_key_environment="live").source is Source.LOCAL
    s2 = lupa.stats()
    assert (s2.local.hits, s2.local.misses) == (1, 1)
    assert (s2.resolutions.local, s2.resolutions.store) == (1, 1)
    if not has_cache:
        assert s2.store.queries == s.store.queries
    assert [(d.project, d.deployment, d.resolutions) for d in s2.deployments] == [("proj_m", "dep_m", 2)]
    assert s2.local_projects == 1

    # Errors by code: a malformed key fails before any lookup; an unknown
    # project misses every tier once, then its negative answer is held in
    # process memory; staging has no deployment.
    with pytest.raises(lupa_core.PermissionDeniedError):
        lupa.resolve("proj_m", api_key="lupa_sk_nope")
    for _ in range(2):
        with pytest.raises(lupa_core.NotFoundError):
            lupa.resolve("proj_none", api_key_environment="live")
    with pytest.raises(lupa_core.BadRequestError):
        lupa.resolve("proj_m", api_key_environment="test")
    s3 = lupa.stats()
    r = s3.resolutions
    assert [(e.code, e.count) for e in r.errors] == [
        (ErrorCode.INVALID_API_KEY, 1),
        (ErrorCode.PROJECT_NOT_FOUND, 2),
        (ErrorCode.NO_STAGING_DEPLOYMENT, 1),
    ], "only codes that occurred, in the order of semantics.md"
    assert all(isinstance(e.code, ErrorCode) for e in r.errors)
    assert r.errors_with("PROJECT_NOT_FOUND") == 2 and r.errors_with(ErrorCode.DEPLOYMENT_NOT_FOUND) == 0
    assert r.total() == 6
    # Timed: what went past process memory (the first resolve, the first
    # unknown project, the test key); not the answer from memory, the bad key
    # nor the negative answer held in memory.
    assert s3.latency.count() == 3
    assert (s3.local.hits, s3.local.misses) == (2, 3)
    assert (s3.cache.hits, s3.cache.misses) == ((0, 3) if has_cache else (0, 0))
    assert s3.latency.sum_ns > 0 and len(s3.latency.counts) == len(s3.latency.bounds_us) + 1
    assert s3.cache.breaker == ("closed" if has_cache else None)
    assert (s3.cache.errors, s3.cache.timeouts, s3.cache.skipped, s3.cache.breaker_opened) == (0, 0, 0, 0)
    assert s3.store.unavailable == 0

    # A promotion and a rollback; a no-op promotion counts nothing.
    lupa.create_deployment("proj_m", "snp2", id="dep_m2")
    lupa.set_status("dep_m2", "ready")
    lupa.promote("proj_m", "dep_m2")
    lupa.promote("proj_m", "dep_m2")
    lupa.rollback("proj_m")
    s4 = lupa.stats()
    assert (s4.promotions, s4.rollbacks) == (2, 1)
    # The change dropped the answer held in memory: the store answers again.
    assert lupa.resolve("proj_m", api_key_environment="live").deployment == "dep_m"
    assert lupa.stats().resolutions.store == 2

    check_text(lupa.stats(), lupa.metrics_text())


def test_the_shared_cache_answers_without_the_in_process_tier() -> None:
    with lupa_core.Lupa("memory://", "memory://", local_cache=False) as lupa:
        ready_production(lupa, "proj_m", "dep_m")
        sources = [lupa.resolve("proj_m", api_key_environment="live").source for _ in range(3)]
        assert sources == [Source.STORE, Source.CACHE, Source.CACHE]
        s = lupa.stats()
        assert (s.cache.hits, s.cache.misses) == (2, 1)
        assert (s.resolutions.cache, s.resolutions.store, s.resolutions.local) == (2, 1, 0)
        assert (s.local.hits, s.local.misses, s.local_projects) == (0, 0, None)
        check_text(s, lupa.metrics_text())


def check_text(s: Stats, text: str) -> None:
    """Parses the text with prometheus_client and compares every sample
    with the snapshot `s` (taken just before, with no resolution or change
    in between)."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in families.values() for x in f.samples}
    assert all(name.startswith("lupa_") for name, _ in samples)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    kinds = {name: f.type for name, f in families.items()}
    # prometheus_client names a counter family without its `_total`.
    assert kinds["lupa_resolutions"] == "counter"
    assert kinds["lupa_resolve_duration_seconds"] == "histogram"
    assert kinds["lupa_store_queries"] == "counter"

    r = s.resolutions
    for source in ("local", "cache", "store"):
        assert value("lupa_resolutions_total", source=source) == getattr(r, source)
    for e in r.errors:
        assert value("lupa_resolution_errors_total", code=str(e.code)) == e.count
    assert len(families["lupa_resolution_errors"].samples) == len(r.errors)
    assert value("lupa_cache_hits_total", tier="local") == s.local.hits
    assert value("lupa_cache_misses_total", tier="local") == s.local.misses
    assert value("lupa_cache_hits_total", tier="shared") == s.cache.hits
    assert value("lupa_cache_misses_total", tier="shared") == s.cache.misses
    for kind, n in (("error", s.cache.errors), ("timeout", s.cache.timeouts), ("skipped", s.cache.skipped)):
        assert value("lupa_cache_failures_total", kind=kind) == n
    assert value("lupa_cache_breaker_opened_total") == s.cache.breaker_opened
    if s.cache.breaker is None:
        assert "lupa_cache_breaker_state" not in families
    else:
        assert kinds["lupa_cache_breaker_state"] == "gauge"
        states = {x.labels["state"]: x.value for x in families["lupa_cache_breaker_state"].samples}
        assert states == {b: float(b == s.cache.breaker) for b in ("closed", "open", "half_open")}
    if s.local_projects is None:
        assert "lupa_local_projects" not in families
    else:
        assert value("lupa_local_projects") == s.local_projects
    # The background task may have asked the store since the snapshot.
    assert value("lupa_store_queries_total") >= s.store.queries
    assert value("lupa_store_unavailable_total") == s.store.unavailable

    h = s.latency
    buckets = {
        float(x.labels["le"]): x.value
        for x in families["lupa_resolve_duration_seconds"].samples
        if x.name == "lupa_resolve_duration_seconds_bucket"
    }
    cumulative = 0
    expected = {}
    for bound, n in zip(h.bounds_us, h.counts):
        cumulative += n
        expected[bound / 1e6] = cumulative
    expected[float("inf")] = h.count()
    assert buckets == expected
    assert value("lupa_resolve_duration_seconds_count") == h.count()
    assert value("lupa_resolve_duration_seconds_sum") == pytest.approx(h.sum_ns / 1e9)

    for d in s.deployments:
        assert value("lupa_deployment_resolutions_total", project=d.project, deployment=d.deployment) == d.resolutions
    assert len(families["lupa_deployment_resolutions"].samples) == len(s.deployments)
    assert value("lupa_untracked_deployment_resolutions_total") == s.untracked_deployment_resolutions
    assert value("lupa_promotions_total") == s.promotions
    assert value("lupa_rollbacks_total") == s.rollbacks


def test_async_stats_are_plain_methods_and_count_the_same() -> None:
    async def main() -> None:
        lupa = lupa_core.AsyncLupa("memory://", "memory://")
        # Not open yet: nothing counted, and the same histogram shape.
        unopened = lupa.stats()
        assert not inspect.isawaitable(unopened)
        assert unopened.resolutions.total() == 0 and unopened.promotions == 0
        assert unopened.local_projects is None and unopened.cache.breaker is None
        assert "lupa_resolutions_total{source=\"store\"} 0" in lupa.metrics_text()
        async with lupa:
            assert lupa.stats().latency.bounds_us == unopened.latency.bounds_us
            assert len(lupa.stats().latency.counts) == len(unopened.latency.counts)
            await asyncio.to_thread(ready_production, lupa.as_sync(), "proj_m", "dep_m")
            assert (await lupa.resolve("proj_m", api_key_environment="live")).source is Source.STORE
            assert (await lupa.resolve("proj_m", api_key_environment="live")).source is Source.LOCAL
            s = lupa.stats()
            assert (s.resolutions.store, s.resolutions.local, s.promotions) == (1, 1, 1)
            assert (s.local.hits, s.local.misses, s.cache.misses) == (1, 1, 1)
            # One handle, two clients: the same counters.
            assert lupa.as_sync().stats().resolutions == s.resolutions
            text = lupa.metrics_text()
            assert isinstance(text, str)
            check_text(s, text)
        with pytest.raises(lupa_core.ServiceUnavailableError):
            lupa.stats()

    asyncio.run(main())


def test_results_are_frozen_dataclasses_with_a_repr() -> None:
    with lupa_core.Lupa("memory://", "none") as lupa:
        ready_production(lupa, "proj_m", "dep_m")
        lupa.resolve("proj_m", api_key_environment="live")
        s = lupa.stats()
    assert repr(s).startswith("Stats(resolutions=ResolutionCounts(local=0, cache=0, store=1, errors=[]), ")
    assert "DeploymentResolutions(project='proj_m', deployment='dep_m', resolutions=1)" in repr(s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.promotions = 0  # type: ignore[misc]
    as_json = json.loads(json.dumps(dataclasses.asdict(s)))
    assert as_json["resolutions"]["store"] == 1 and as_json["cache"]["breaker"] is None
    assert s == dataclasses.replace(s)


def test_metrics_off_counts_nothing() -> None:
    with lupa_core.Lupa("memory://", "memory://", metrics=False) as lupa:
        ready_production(lupa, "proj_m", "dep_m")
        lupa.resolve("proj_m", api_key_environment="live")
        lupa.resolve("proj_m", api_key_environment="live")
        s = lupa.stats()
        assert s.resolutions.total() == 0 and s.latency.count() == 0
        assert (s.promotions, s.store.queries, s.local.hits, s.cache.misses) == (0, 0, 0, 0)
        assert s.local_projects == 1, "gauges still read the live state"
        check_text(s, lupa.metrics_text())
    with pytest.raises(TypeError):
        lupa_core.Lupa("memory://", "memory://", metrics="no")  # type: ignore[arg-type]


def test_a_closed_handle_answers_no_stats() -> None:
    lupa = lupa_core.Lupa("memory://", "memory://")
    lupa.close()
    for call in (lupa.stats, lupa.metrics_text):
        with pytest.raises(lupa_core.ServiceUnavailableError) as e:
            call()
        assert e.value.code == "STORAGE_UNAVAILABLE"
