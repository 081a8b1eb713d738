"""Shared fixtures: the real PostgreSQL and Redis the tests use, and the
per-backend conformance summary printed at the end of the run."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))

DATABASE_URL = os.environ.get("LUPA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("LUPA_TEST_REDIS_URL", "redis://127.0.0.1:6379")
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SUMMARY: list[str] = []


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require_services() -> tuple[str, str]:
    """The PostgreSQL and Redis URLs; a missing service fails on CI and
    skips elsewhere."""
    missing = [
        name
        for name, url, port in (("PostgreSQL", DATABASE_URL, 5432), ("Redis", REDIS_URL, 6379))
        if not _reachable(url, port)
    ]
    if missing:
        message = f"{' and '.join(missing)} not reachable (LUPA_TEST_DATABASE_URL / LUPA_TEST_REDIS_URL)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    return DATABASE_URL, REDIS_URL


@pytest.fixture
def services() -> tuple[str, str]:
    return require_services()


@pytest.fixture
def pg_redis_lupa(services: tuple[str, str]) -> Iterator[object]:
    """A sync handle on PostgreSQL + Redis in its own schema and key prefix,
    dropped afterwards."""
    import secrets

    import lupa_core

    tag = secrets.token_hex(5)
    lupa = lupa_core.Lupa(services[0], services[1], schema=f"lupa_py_{tag}", key_prefix=f"lupa-py-{tag}:")
    try:
        yield lupa
    finally:
        probe = lupa.cache_probe()
        if probe is not None:
            probe.clear()
        lupa.drop_storage()
        lupa.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("lupa_core conformance")
        for line in SUMMARY:
            terminalreporter.write_line(line)
