"""The native part of lupa_core (private: import from ``lupa_core``)."""

import asyncio
from datetime import datetime
from typing import Final, final

from typing_extensions import Self

from lupa_core._types import (
    ApiKeyInfo,
    Change,
    DeploymentChange,
    DeploymentPage,
    Deployment,
    Environment,
    Health,
    HistoryPage,
    KeyEnvironment,
    Project,
    ProjectPage,
    Promotion,
    Resolution,
    Stats,
    Status,
)

__all__ = [
    "__version__",
    "MAX_PAGE",
    "MAX_ID_LEN",
    "Lupa",
    "AsyncLupa",
    "CacheProbe",
    "AsyncCacheProbe",
    "parse_api_key",
    "api_key_from_authorization",
    "project_from_host",
    "error_codes",
    "error_http_status",
    "error_http_body",
]

__version__: Final[str]
MAX_PAGE: Final[int]
MAX_ID_LEN: Final[int]

def parse_api_key(key: str) -> ApiKeyInfo: ...
def api_key_from_authorization(header: str | None) -> str: ...
def project_from_host(host: str, root_domain: str) -> str: ...
def error_codes() -> list[tuple[str, int]]: ...
def error_http_status(name: str) -> int: ...
def error_http_body(name: str, message: str) -> str: ...

@final
class Lupa:
    """A Lupa handle whose calls block, with the GIL released while they wait.

    Opens on construction (applying the store's migrations). ``store``:
    ``postgres://…``, ``sqlite://path``, ``sqlite::memory:`` or ``memory://``
    (default); ``cache``: ``redis://…``, ``rediss://…``, ``memory://``
    (default) or ``none``. Times are in seconds. ``metrics=False`` turns
    counting off (``stats()`` then answers all zero).
    """

    def __new__(
        cls,
        store: str | None = None,
        cache: str | None = None,
        *,
        key_prefix: str | None = None,
        schema: str | None = None,
        pool_size: int | None = None,
        cache_timeout: float | None = None,
        store_timeout: float | None = None,
        breaker_threshold: int | None = None,
        breaker_cooldown: float | None = None,
        outbox_interval: float | None = None,
        local_cache: bool | None = None,
        local_capacity: int | None = None,
        local_bound: float | None = None,
        metrics: bool | None = None,
    ) -> Self: ...
    @property
    def closed(self) -> bool: ...
    def as_async(self) -> AsyncLupa: ...
    def cache_probe(self) -> CacheProbe | None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *_exc: object) -> None: ...
    def close(self) -> None: ...
    def create_project(self, org_id: str, name: str, *, id: str | None = None) -> Project: ...
    def get_project(self, id: str) -> Project: ...
    def list_projects(self, *, limit: int | None = None, cursor: str | None = None) -> ProjectPage: ...
    def delete_project(self, id: str) -> Change: ...
    def create_deployment(
        self,
        project: str,
        snapshot: str,
        *,
        id: str | None = None,
        environment: Environment | str | None = None,
        created_at: datetime | str | None = None,
    ) -> DeploymentChange: ...
    def get_deployment(self, id: str) -> Deployment: ...
    def list_deployments(
        self, project: str, *, limit: int | None = None, cursor: str | None = None
    ) -> DeploymentPage: ...
    def set_status(self, deployment: str, status: Status | str, message: str | None = None) -> DeploymentChange: ...
    def promote(self, project: str, deployment: str) -> Promotion: ...
    def set_environment(self, project: str, deployment: str, environment: Environment | str) -> DeploymentChange: ...
    def delete_deployment(self, project: str, deployment: str) -> DeploymentChange: ...
    def rollback(self, project: str) -> Promotion: ...
    def history(self, project: str, *, limit: int | None = None, cursor: str | None = None) -> HistoryPage: ...
    def resolve(
        self,
        project: str,
        *,
        deployment_id: str | None = None,
        requires_deployment: bool = True,
        api_key_environment: KeyEnvironment | str | None = None,
        api_key: str | None = None,
        internal: bool = False,
        target_environment: Environment | str | None = None,
    ) -> Resolution: ...
    def resolve_headers(
        self,
        project: str,
        authorization: str | None,
        deployment_id: str | None = None,
        *,
        requires_deployment: bool = True,
    ) -> Resolution: ...
    def health(self) -> Health: ...
    def stats(self) -> Stats: ...
    def metrics_text(self) -> str: ...
    def apply_pending_cache_updates(self) -> int: ...
    def drop_storage(self) -> None: ...

@final
class AsyncLupa:
    """A Lupa handle whose calls return asyncio awaitables.

    Construction does no I/O; the handle opens on ``await open()``,
    ``async with`` or the first call. Arguments as :class:`Lupa`.
    ``stats()`` and ``metrics_text()`` never block: they are plain methods,
    not awaitables (before the handle opens, every count is zero).
    """

    def __new__(
        cls,
        store: str | None = None,
        cache: str | None = None,
        *,
        key_prefix: str | None = None,
        schema: str | None = None,
        pool_size: int | None = None,
        cache_timeout: float | None = None,
        store_timeout: float | None = None,
        breaker_threshold: int | None = None,
        breaker_cooldown: float | None = None,
        outbox_interval: float | None = None,
        local_cache: bool | None = None,
        local_capacity: int | None = None,
        local_bound: float | None = None,
        metrics: bool | None = None,
    ) -> Self: ...
    @property
    def closed(self) -> bool: ...
    def as_sync(self) -> Lupa: ...
    def open(self) -> asyncio.Future[Self]: ...
    def cache_probe(self) -> asyncio.Future[AsyncCacheProbe | None]: ...
    def __aenter__(self) -> asyncio.Future[Self]: ...
    def __aexit__(self, *_exc: object) -> asyncio.Future[None]: ...
    def close(self) -> asyncio.Future[None]: ...
    def create_project(self, org_id: str, name: str, *, id: str | None = None) -> asyncio.Future[Project]: ...
    def get_project(self, id: str) -> asyncio.Future[Project]: ...
    def list_projects(self, *, limit: int | None = None, cursor: str | None = None) -> asyncio.Future[ProjectPage]: ...
    def delete_project(self, id: str) -> asyncio.Future[Change]: ...
    def create_deployment(
        self,
        project: str,
        snapshot: str,
        *,
        id: str | None = None,
        environment: Environment | str | None = None,
        created_at: datetime | str | None = None,
    ) -> asyncio.Future[DeploymentChange]: ...
    def get_deployment(self, id: str) -> asyncio.Future[Deployment]: ...
    def list_deployments(
        self, project: str, *, limit: int | None = None, cursor: str | None = None
    ) -> asyncio.Future[DeploymentPage]: ...
    def set_status(
        self, deployment: str, status: Status | str, message: str | None = None
    ) -> asyncio.Future[DeploymentChange]: ...
    def promote(self, project: str, deployment: str) -> asyncio.Future[Promotion]: ...
    def set_environment(
        self, project: str, deployment: str, environment: Environment | str
    ) -> asyncio.Future[DeploymentChange]: ...
    def delete_deployment(self, project: str, deployment: str) -> asyncio.Future[DeploymentChange]: ...
    def rollback(self, project: str) -> asyncio.Future[Promotion]: ...
    def history(
        self, project: str, *, limit: int | None = None, cursor: str | None = None
    ) -> asyncio.Future[HistoryPage]: ...
    def resolve(
        self,
        project: str,
        *,
        deployment_id: str | None = None,
        requires_deployment: bool = True,
        api_key_environment: KeyEnvironment | str | None = None,
        api_key: str | None = None,
        internal: bool = False,
        target_environment: Environment | str | None = None,
    ) -> asyncio.Future[Resolution]: ...
    def resolve_headers(
        self,
        project: str,
        authorization: str | None,
        deployment_id: str | None = None,
        *,
        requires_deployment: bool = True,
    ) -> asyncio.Future[Resolution]: ...
    def health(self) -> asyncio.Future[Health]: ...
    def stats(self) -> Stats: ...
    def metrics_text(self) -> str: ...
    def apply_pending_cache_updates(self) -> asyncio.Future[int]: ...
    def drop_storage(self) -> asyncio.Future[None]: ...

@final
class CacheProbe:
    """Test hook: the shared cache by the seed's key names (without the
    handle's key prefix), bypassing the circuit breaker. TTLs in seconds."""

    def get(self, key: str) -> str | None: ...
    def ttl(self, key: str) -> float | None: ...
    def set(self, key: str, value: str, ttl: float) -> None: ...
    def clear(self) -> None: ...

@final
class AsyncCacheProbe:
    """:class:`CacheProbe` with asyncio awaitables."""

    def get(self, key: str) -> asyncio.Future[str | None]: ...
    def ttl(self, key: str) -> asyncio.Future[float | None]: ...
    def set(self, key: str, value: str, ttl: float) -> asyncio.Future[None]: ...
    def clear(self) -> asyncio.Future[None]: ...
