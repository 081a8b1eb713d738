"""Passwords in store and cache URLs, and API keys, never show: not in an
exception's ``str``/``repr``/arguments/traceback, not in the ``repr`` of a
handle or of what it returns, not in any ``logging`` record of the library.

Nothing listens on 127.0.0.1:1, so every connection there fails: the
failures are the point."""

from __future__ import annotations

import asyncio
import logging
import traceback

import pytest

import lupa_core

PASSWORD = "S3cretPw"
STORE_URL = "postgres://user:S3cretPw@127.0.0.1:1/db"
CACHE_URL = "redis://:S3cretPw@127.0.0.1:1"
KEY_SECRET = "K3ySecretPartK3ySecretPart42"
VALID_KEY = "lupa_sk_live_" + KEY_SECRET
MALFORMED_KEY = "lupa_xx_live_" + KEY_SECRET


def hidden(what: str, text: str) -> None:
    assert PASSWORD not in text, f"{what} shows the password: {text}"
    assert KEY_SECRET not in text, f"{what} shows the API key: {text}"


def exception_hidden(what: str, e: BaseException) -> None:
    hidden(f"{what} str", str(e))
    hidden(f"{what} repr", repr(e))
    hidden(f"{what} args", repr(e.args))
    hidden(f"{what} traceback", "".join(traceback.format_exception(e)))
    if isinstance(e, lupa_core.LupaError):
        hidden(f"{what} message", e.message)
    cause = e.__cause__ or e.__context__
    if cause is not None:
        exception_hidden(f"{what} cause", cause)


def log_hidden(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if r.name.startswith("lupa_core")]
    for r in records:
        hidden("log message", r.getMessage())
        hidden("log record", repr(vars(r)))
    hidden("log text", caplog.text)
    return records


def test_unreachable_store_sync_and_async(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lupa_core")
    with pytest.raises(lupa_core.ServiceUnavailableError) as e:
        lupa_core.Lupa(STORE_URL, CACHE_URL, store_timeout=0.5, cache_timeout=0.2)
    assert e.value.code == "STORAGE_UNAVAILABLE"
    exception_hidden("Lupa() on an unreachable PostgreSQL", e.value)

    lupa = lupa_core.AsyncLupa(STORE_URL, CACHE_URL, store_timeout=0.5, cache_timeout=0.2)
    hidden("AsyncLupa repr", repr(lupa))
    hidden("AsyncLupa str", str(lupa))

    async def main() -> None:
        with pytest.raises(lupa_core.LupaError) as e:
            await lupa.resolve("p1", api_key=VALID_KEY)
        exception_hidden("AsyncLupa.resolve on an unreachable PostgreSQL", e.value)

    asyncio.run(main())
    records = log_hidden(caplog)
    assert records, "the failure was logged"


def test_unreachable_cache_degrades_without_its_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lupa_core")
    try:
        lupa = lupa_core.Lupa("memory://", CACHE_URL, cache_timeout=0.2, breaker_threshold=2)
    except lupa_core.LupaError as e:
        exception_hidden("Lupa() on an unreachable Redis", e)
        log_hidden(caplog)
        return
    with lupa:
        hidden("Lupa repr", repr(lupa))
        hidden("Lupa str", str(lupa))
        lupa.create_project("org_1", "Docs", id="p1")
        for _ in range(4):
            with pytest.raises(lupa_core.LupaError) as e:
                lupa.resolve("p1", api_key=VALID_KEY)
            assert e.value.code == "NO_PRODUCTION_DEPLOYMENT"
            exception_hidden("resolve behind an unreachable Redis", e.value)
        hidden("health", repr(lupa.health()))
        hidden("Lupa repr after failures", repr(lupa))
        hidden("as_async repr", repr(lupa.as_async()))
    records = log_hidden(caplog)
    assert any(r.name.startswith("lupa_core.cache") for r in records), [r.name for r in records]


def test_api_keys_never_show(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lupa_core")
    with pytest.raises(lupa_core.PermissionDeniedError) as e:
        lupa_core.parse_api_key(MALFORMED_KEY)
    exception_hidden("parse_api_key", e.value)
    hidden("ApiKeyInfo repr", repr(lupa_core.parse_api_key(VALID_KEY)))
    for header in ("Basic " + VALID_KEY, VALID_KEY, "Bearer" + VALID_KEY):
        with pytest.raises(lupa_core.PermissionDeniedError) as e:
            lupa_core.api_key_from_authorization(header)
        exception_hidden("api_key_from_authorization", e.value)
    with lupa_core.Lupa("memory://", "memory://") as lupa:
        lupa.create_project("org_1", "Docs", id="p1")
        for kwargs in (
            {"api_key": MALFORMED_KEY},
            {"api_key": MALFORMED_KEY + "\n", "deployment_id": "bad id"},
            {"api_key": VALID_KEY},
        ):
            with pytest.raises(lupa_core.LupaError) as e:
                lupa.resolve("p1", **kwargs)  # type: ignore[arg-type]
            exception_hidden(f"resolve {kwargs}", e.value)
        for header in ("Bearer " + MALFORMED_KEY, "Bearer  " + VALID_KEY, "Basic " + VALID_KEY):
            with pytest.raises(lupa_core.PermissionDeniedError) as e:
                lupa.resolve_headers("p1", header)
            exception_hidden(f"resolve_headers {header[:7]!r}", e.value)
        with pytest.raises(lupa_core.LupaError) as e:
            lupa.resolve("p1", api_key_environment=KEY_SECRET)
        exception_hidden("resolve with a secret as the key environment", e.value)
        hidden("Lupa repr", repr(lupa))
    log_hidden(caplog)
