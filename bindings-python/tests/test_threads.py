"""16 threads share one handle while another thread promotes back and
forth: every answer is one of the two deployments, nothing fails, and the
last promotion wins once it has returned."""

from __future__ import annotations

import threading
import time

import pytest

import lupa_core

READERS = 16
SECONDS = 3.0


def _run(lupa: lupa_core.Lupa) -> None:
    lupa.create_project("org", "Docs", id="abc1234567")
    for dep in ("dep_a", "dep_b"):
        lupa.create_deployment("abc1234567", "snp", id=dep)
        lupa.set_status(dep, "ready")
    lupa.promote("abc1234567", "dep_a")

    stop = threading.Event()
    errors: list[BaseException] = []
    wrong: list[object] = []
    counts = [0] * READERS

    def reader(i: int) -> None:
        try:
            while not stop.is_set():
                got = lupa.resolve("abc1234567", api_key="lupa_sk_live_threads").deployment
                if got not in ("dep_a", "dep_b"):
                    wrong.append(got)
                counts[i] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    promotions = 0
    last = "dep_a"

    def promoter() -> None:
        nonlocal promotions, last
        try:
            while not stop.is_set():
                target = "dep_b" if last == "dep_a" else "dep_a"
                lupa.promote("abc1234567", target)
                last = target
                promotions += 1
                # After the change returned, no reader may see the old answer.
                assert lupa.resolve("abc1234567", api_key_environment="live").deployment == target
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=promoter))
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]
    assert not wrong, wrong[:3]
    assert promotions > 0 and all(c > 0 for c in counts), (promotions, counts)
    assert lupa.resolve("abc1234567", api_key_environment="live").deployment == last
    print(f"threads: {sum(counts)} resolutions by {READERS} threads, {promotions} promotions")


@pytest.mark.timeout(120)
def test_threads_postgres_redis(pg_redis_lupa: lupa_core.Lupa) -> None:
    _run(pg_redis_lupa)


@pytest.mark.timeout(120)
def test_threads_memory() -> None:
    with lupa_core.Lupa() as lupa:
        _run(lupa)
