"""Wrong types, None, huge strings, NULs, surrogates: a TypeError or a
LupaError with a clear message, never a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import lupa_core

HUGE = "a" * 10_000_000
WEIRD_TEXT: list[Any] = ["", "x\0y", "\0", HUGE, "\ud800", "é" * 300, " p1", "p1\n"]
WRONG_TYPES: list[Any] = [None, 1, 1.5, b"p1", ["p1"], {"p": 1}, object(), True]


@pytest.fixture
def lupa() -> Iterator[lupa_core.Lupa]:
    with lupa_core.Lupa() as l:
        l.create_project("org", "Docs", id="p1")
        l.create_deployment("p1", "snp", id="d1")
        yield l


CALLS: list[tuple[str, Any]] = [
    ("get_project", lambda l, v: l.get_project(v)),
    ("create_project id", lambda l, v: l.create_project("org", "n", id=v)),
    ("create_project org", lambda l, v: l.create_project(v, "n")),
    ("create_project name", lambda l, v: l.create_project("org", v)),
    ("delete_project", lambda l, v: l.delete_project(v)),
    ("create_deployment project", lambda l, v: l.create_deployment(v, "snp")),
    ("create_deployment snapshot", lambda l, v: l.create_deployment("p1", v)),
    ("create_deployment env", lambda l, v: l.create_deployment("p1", "snp", environment=v)),
    ("create_deployment created_at", lambda l, v: l.create_deployment("p1", "snp", created_at=v)),
    ("get_deployment", lambda l, v: l.get_deployment(v)),
    ("list_deployments", lambda l, v: l.list_deployments(v)),
    ("list_deployments cursor", lambda l, v: l.list_deployments("p1", cursor=v)),
    ("set_status", lambda l, v: l.set_status("d1", v)),
    ("set_status id", lambda l, v: l.set_status(v, "ready")),
    ("promote", lambda l, v: l.promote("p1", v)),
    ("set_environment", lambda l, v: l.set_environment("p1", "d1", v)),
    ("delete_deployment", lambda l, v: l.delete_deployment(v, "d1")),
    ("rollback", lambda l, v: l.rollback(v)),
    ("history", lambda l, v: l.history(v)),
    ("resolve project", lambda l, v: l.resolve(v, api_key_environment="live")),
    ("resolve deployment_id", lambda l, v: l.resolve("p1", deployment_id=v, api_key_environment="live")),
    ("resolve key", lambda l, v: l.resolve("p1", api_key=v)),
    ("resolve key env", lambda l, v: l.resolve("p1", api_key_environment=v)),
    ("resolve target", lambda l, v: l.resolve("p1", internal=True, target_environment=v)),
    ("resolve requires", lambda l, v: l.resolve("p1", requires_deployment=v, internal=True)),
    ("resolve_headers", lambda l, v: l.resolve_headers("p1", v)),
    ("parse_api_key", lambda l, v: lupa_core.parse_api_key(v)),
    ("api_key_from_authorization", lambda l, v: lupa_core.api_key_from_authorization(v)),
    ("project_from_host", lambda l, v: lupa_core.project_from_host(v, "lupa.build")),
]


@pytest.mark.parametrize("value", WEIRD_TEXT + WRONG_TYPES, ids=lambda v: repr(v)[:20])
@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
def test_bad_values_raise_clear_errors(lupa: lupa_core.Lupa, name: str, call: Any, value: Any) -> None:
    try:
        call(lupa, value)
    except TypeError as e:
        assert str(e), name
    except lupa_core.LupaError as e:
        assert e.code in ("INVALID_ARGUMENT", "INVALID_API_KEY", "PROJECT_NOT_FOUND", "DEPLOYMENT_NOT_FOUND",
                          "NO_PRODUCTION_DEPLOYMENT", "NO_STAGING_DEPLOYMENT", "DEPLOYMENT_NOT_READY",
                          "PROJECT_EXISTS", "DEPLOYMENT_NOT_IN_PROJECT"), (name, e)
        assert e.message and len(e.message) < 500, "messages never echo the (huge) value"
        assert "\0" not in e.message
    # Success is fine too (None where None is allowed, a str enum name).
    assert lupa.get_project("p1").id == "p1", "the handle still works"


def test_none_where_a_string_is_required_is_a_type_error(lupa: lupa_core.Lupa) -> None:
    with pytest.raises(TypeError, match="expected str, got NoneType"):
        lupa.get_project(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lupa.resolve("p1", requires_deployment=1, internal=True)  # type: ignore[arg-type]


def test_options_are_checked(lupa: lupa_core.Lupa) -> None:
    with pytest.raises(lupa_core.InvalidArgumentError):
        lupa_core.Lupa(store="nosuch://x")
    with pytest.raises(lupa_core.InvalidArgumentError):
        lupa_core.Lupa(store_timeout=-1.0)
    with pytest.raises(lupa_core.InvalidArgumentError):
        lupa_core.Lupa(store_timeout=float("nan"))
    with pytest.raises(lupa_core.InvalidArgumentError):
        lupa_core.Lupa(pool_size=-3)
    with pytest.raises(lupa_core.InvalidArgumentError):
        lupa_core.Lupa(schema="Bad-Schema")
    with pytest.raises(TypeError):
        lupa_core.Lupa(store=5)  # type: ignore[arg-type]
    for bad in (-1, 0, 10**30):
        with pytest.raises((lupa_core.InvalidArgumentError, OverflowError)):
            lupa.list_deployments("p1", limit=bad)


def test_async_bad_input() -> None:
    async def main() -> None:
        async with lupa_core.AsyncLupa() as lupa:
            with pytest.raises(TypeError):
                lupa.get_project(3)  # type: ignore[arg-type]
            with pytest.raises(lupa_core.InvalidArgumentError):
                await lupa.get_project("x\0")
            with pytest.raises(lupa_core.InvalidArgumentError):
                await lupa.get_project(HUGE)

    asyncio.run(main())
