"""The FastAPI example (examples/python/app.py) through its real ASGI app."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import lupa_core

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "app.py"
HOST = "abc1234567.lupa.build"
LIVE = "Bearer lupa_sk_live_fastapi"
TEST = "Bearer lupa_pk_test_fastapi"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("lupa_example_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lupa_example_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client() -> Iterator[TestClient]:
    example = _load()
    lupa = lupa_core.AsyncLupa("memory://", "memory://")
    setup = lupa.as_sync()
    setup.create_project("org", "Docs", id="abc1234567")
    setup.create_project("org", "Empty", id="empty00001")
    for dep in ("dep_prod", "dep_stage", "dep_wip"):
        setup.create_deployment("abc1234567", "snp", id=dep)
    setup.set_status("dep_prod", "ready")
    setup.set_status("dep_stage", "ready")
    setup.promote("abc1234567", "dep_prod")
    with TestClient(example.create_app(lupa), base_url=f"http://{HOST}") as c:
        yield c
    assert lupa.closed, "the lifespan closes the handle"


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and body["error"]["message"]


def test_live_key_reaches_production(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "hello"}, headers={"Authorization": LIVE})
    assert r.status_code == 200 and r.json()["deployment"] == "dep_prod"


def test_test_key_reaches_staging(client: TestClient) -> None:
    r = client.get("/v1/search", headers={"Authorization": TEST})
    assert r.status_code == 200 and r.json()["deployment"] == "dep_stage"


def test_deployment_id_wins_over_the_key(client: TestClient) -> None:
    r = client.get("/v1/search", headers={"Authorization": LIVE, "Deployment-Id": "dep_stage"})
    assert r.json()["deployment"] == "dep_stage"
    r = client.get("/v1/search", headers={"Authorization": LIVE, "Deployment-Id": ""})
    assert r.json()["deployment"] == "dep_prod", "an empty header is none"


def test_a_route_without_a_deployment(client: TestClient) -> None:
    r = client.get("/v1/project", headers={"Authorization": LIVE}, )
    assert r.status_code == 200 and r.json() == {"project": "abc1234567", "deployment": None}


@pytest.mark.parametrize(
    "host, headers, path, status, code",
    [
        (HOST, {}, "/v1/search", 403, "INVALID_API_KEY"),
        (HOST, {"Authorization": "Basic abc"}, "/v1/search", 403, "INVALID_API_KEY"),
        (HOST, {"Authorization": "Bearer lupa_sk_live_abc\n"}, "/v1/search", 403, "INVALID_API_KEY"),
        ("nope000001.lupa.build", {"Authorization": LIVE}, "/v1/search", 404, "PROJECT_NOT_FOUND"),
        (HOST, {"Authorization": LIVE, "Deployment-Id": "dep_missing"}, "/v1/search", 404, "DEPLOYMENT_NOT_FOUND"),
        ("empty00001.lupa.build", {"Authorization": LIVE}, "/v1/search", 400, "NO_PRODUCTION_DEPLOYMENT"),
        ("empty00001.lupa.build", {"Authorization": TEST}, "/v1/search", 400, "NO_STAGING_DEPLOYMENT"),
        (HOST, {"Authorization": LIVE, "Deployment-Id": "dep_wip"}, "/v1/search", 400, "DEPLOYMENT_NOT_READY"),
        (HOST, {"Authorization": LIVE, "Deployment-Id": "bad id!"}, "/v1/search", 400, "INVALID_ARGUMENT"),
        ("lupa.build", {"Authorization": LIVE}, "/v1/search", 400, "INVALID_ARGUMENT"),
    ],
)
def test_errors_answer_with_status_and_body(
    client: TestClient, host: str, headers: dict[str, str], path: str, status: int, code: str
) -> None:
    _error(client.get(path, headers={"host": host, **headers}), status, code)


def test_admin_errors(client: TestClient) -> None:
    _error(client.post("/admin/projects/abc1234567/deployments/dep_wip/promote"), 400, "DEPLOYMENT_NOT_READY")
    _error(client.post("/admin/projects/empty00001/deployments/dep_prod/promote"), 400, "DEPLOYMENT_NOT_IN_PROJECT")
    _error(client.post("/admin/projects/empty00001/rollback"), 409, "NO_ROLLBACK_TARGET")
    r = client.post("/admin/projects/abc1234567/deployments/dep_stage/promote")
    assert r.json() == {"success": True, "deployment": {"id": "dep_stage", "environment": "production", "status": "ready"}}
    r = client.get("/v1/search", headers={"Authorization": LIVE})
    assert r.json()["deployment"] == "dep_stage"
    r = client.post("/admin/projects/abc1234567/rollback")
    assert r.json()["deployment"]["id"] == "dep_prod"


@pytest.mark.parametrize("code, status", lupa_core.error_codes())
def test_every_code_maps_to_its_status_and_body(code: str, status: int) -> None:
    example = _load()
    r = example.error_response(lupa_core.error_class(code, status)(code, "why"))
    assert r.status_code == status
    assert json.loads(r.body) == {"error": {"code": code, "message": "why"}}
    assert r.headers["content-type"] == "application/json"


def test_storage_unavailable_is_503() -> None:
    example = _load()
    lupa = lupa_core.AsyncLupa("postgres://nobody:secret@127.0.0.1:1/none", "none", store_timeout=0.5)
    app = example.create_app(lupa)
    # No lifespan: the handle opens on the first request and fails.
    c = TestClient(app, base_url=f"http://{HOST}")
    r = c.get("/v1/search", headers={"Authorization": LIVE})
    _error(r, 503, "STORAGE_UNAVAILABLE")
    assert "secret" not in r.text
