"""A FastAPI service that resolves which deployment each request reaches.

The middleware takes the project from the Host header's subdomain
(``abc1234567.lupa.build``), the caller from ``Authorization: Bearer <key>``
and an explicit deployment from ``Deployment-Id``; errors are answered with
the core's status and body ``{"error": {"code", "message"}}``.

Run it::

    LUPA_STORE=postgres://postgres@127.0.0.1:5432/postgres \\
    LUPA_CACHE=redis://127.0.0.1:6379 \\
    uvicorn app:app --workers 4
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

import lupa_core

ROOT_DOMAIN = os.environ.get("LUPA_ROOT_DOMAIN", "lupa.build")

# Routes that answer without a deployment (they still check the project and
# the key).
NO_DEPLOYMENT_NEEDED = frozenset({"/v1/project"})


def error_response(e: lupa_core.LupaError) -> Response:
    return Response(e.http_body, status_code=e.http_status, media_type="application/json")


def create_app(lupa: lupa_core.AsyncLupa) -> FastAPI:
    """The app over a handle (opened lazily, so it can be made before the
    server forks its workers)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await lupa.open()
        yield
        await lupa.close()

    app = FastAPI(title="Lupa search", lifespan=lifespan)

    @app.exception_handler(lupa_core.LupaError)
    async def lupa_error(_: Request, e: Exception) -> Response:
        assert isinstance(e, lupa_core.LupaError)
        return error_response(e)

    @app.middleware("http")
    async def resolve_deployment(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/admin/"):
            return await call_next(request)
        try:
            project = lupa_core.project_from_host(request.headers.get("host", ""), ROOT_DOMAIN)
            resolution = await lupa.resolve_headers(
                project,
                request.headers.get("authorization"),
                request.headers.get("deployment-id"),
                requires_deployment=request.url.path not in NO_DEPLOYMENT_NEEDED,
            )
        except lupa_core.LupaError as e:
            return error_response(e)
        request.state.project = project
        request.state.deployment = resolution.deployment
        return await call_next(request)

    @app.get("/v1/search")
    async def search(request: Request, q: str = "") -> dict[str, str | None]:
        # A real service queries the resolved deployment's index here.
        return {"project": request.state.project, "deployment": request.state.deployment, "query": q}

    @app.get("/v1/project")
    async def project_info(request: Request) -> dict[str, str | None]:
        return {"project": request.state.project, "deployment": request.state.deployment}

    @app.post("/admin/projects/{project}/deployments/{deployment}/promote")
    async def promote(project: str, deployment: str) -> JSONResponse:
        p = await lupa.promote(project, deployment)
        body = {
            "success": p.success,
            "deployment": {"id": p.deployment.id, "environment": p.deployment.environment.value,
                           "status": p.deployment.status.value},
        }
        return JSONResponse(body)

    @app.post("/admin/projects/{project}/rollback")
    async def rollback(project: str) -> JSONResponse:
        p = await lupa.rollback(project)
        return JSONResponse({"success": p.success, "deployment": {"id": p.deployment.id}})

    return app


app = create_app(
    lupa_core.AsyncLupa(os.environ.get("LUPA_STORE", "memory://"), os.environ.get("LUPA_CACHE", "memory://"))
)
