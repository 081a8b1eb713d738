"""The exceptions: one class per HTTP family, codes that cannot drift from
the core's."""

from __future__ import annotations

import json
import pickle

import pytest

import lupa_core
from lupa_core import _native

FAMILIES = {
    400: lupa_core.BadRequestError,
    403: lupa_core.PermissionDeniedError,
    404: lupa_core.NotFoundError,
    409: lupa_core.ConflictError,
    500: lupa_core.InternalError,
    503: lupa_core.ServiceUnavailableError,
}


def test_python_codes_are_exactly_the_core_codes() -> None:
    core = [code for code, _ in lupa_core.error_codes()]
    assert core, "the core lists no code"
    assert [c.value for c in lupa_core.ErrorCode] == core


@pytest.mark.parametrize("code, status", _native.error_codes())
def test_every_core_code_has_its_family_class(code: str, status: int) -> None:
    assert status in FAMILIES, f"{code}: HTTP {status} has no exception class"
    cls = lupa_core.error_class(code, status)
    assert issubclass(cls, FAMILIES[status])
    e = cls(code, "text")
    assert e.code == code and e.code is lupa_core.ErrorCode(code)
    assert e.http_status == status
    assert json.loads(e.http_body) == {"error": {"code": code, "message": "text"}}
    assert str(e) == f"{code}: text"
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is cls and again.code == code and again.http_status == status


def test_every_family_is_used() -> None:
    assert {s for _, s in lupa_core.error_codes()} == set(FAMILIES)


def test_exceptions_raised_by_the_core_are_the_family_classes() -> None:
    with lupa_core.Lupa() as lupa:
        with pytest.raises(lupa_core.NotFoundError) as nf:
            lupa.get_project("nope")
        assert nf.value.code == "PROJECT_NOT_FOUND" and nf.value.http_status == 404
        assert isinstance(nf.value, LookupError)
        with pytest.raises(lupa_core.InvalidArgumentError) as ia:
            lupa.get_project("not an id")
        assert isinstance(ia.value, ValueError) and isinstance(ia.value, lupa_core.BadRequestError)
        with pytest.raises(lupa_core.PermissionDeniedError):
            lupa.resolve("p1", api_key="nonsense")
        lupa.create_project("org", "Docs", id="p1")
        with pytest.raises(lupa_core.ConflictError) as c:
            lupa.create_project("org", "Docs", id="p1")
        assert c.value.message == "Project already exists"
    with pytest.raises(lupa_core.ServiceUnavailableError):
        lupa.get_project("p1")


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(ValueError):
        lupa_core.LupaError("NOT_A_CODE", "x")
