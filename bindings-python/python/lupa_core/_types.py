"""Enums and result types of lupa_core.

The native module builds these from the core's answers; they are plain,
frozen dataclasses (``repr``, ``==``, ``dataclasses.asdict``, pickling) and
``str`` enums (``Environment.PRODUCTION == "production"``), so they go
straight into JSON responses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ApiKeyInfo",
    "Change",
    "ComponentHealth",
    "Deployment",
    "DeploymentChange",
    "DeploymentPage",
    "DeploymentSummary",
    "Environment",
    "Health",
    "HistoryEntry",
    "HistoryPage",
    "KeyEnvironment",
    "KeyType",
    "Project",
    "ProjectPage",
    "Promotion",
    "Resolution",
    "Source",
    "Status",
]


class _StrEnum(str, enum.Enum):
    def __str__(self) -> str:
        return str(self.value)


class Environment(_StrEnum):
    """Where a deployment serves."""

    PRODUCTION = "production"
    STAGING = "staging"


class Status(_StrEnum):
    """How far processing has come."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class KeyType(_StrEnum):
    """An API key's type: secret (``sk``) or public, read-only (``pk``)."""

    SECRET = "sk"
    PUBLIC = "pk"


class KeyEnvironment(_StrEnum):
    """An API key's environment: ``live`` resolves production, ``test`` staging."""

    LIVE = "live"
    TEST = "test"


class Source(_StrEnum):
    """Which tier answered a resolution."""

    LOCAL = "local"
    CACHE = "cache"
    STORE = "store"


@dataclass(frozen=True)
class Project:
    """A project: the owner of deployments."""

    id: str
    org_id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Deployment:
    """A version of a project's knowledge base."""

    id: str
    project_id: str
    snapshot_id: str
    environment: Environment
    status: Status
    created_at: datetime
    updated_at: datetime
    failure_message: str | None
    promote_when_ready: bool


@dataclass(frozen=True)
class DeploymentSummary:
    """``{id, environment, status}``: what promote and rollback answer with."""

    id: str
    environment: Environment
    status: Status


@dataclass(frozen=True)
class Change:
    """A change that returns nothing but whether the cache update is pending."""

    cache_pending: bool


@dataclass(frozen=True)
class DeploymentChange:
    """A deployment after a change. ``cache_pending``: the shared cache could
    not be reached; the change stands and the cache update is applied as soon
    as it is back."""

    deployment: Deployment
    cache_pending: bool


@dataclass(frozen=True)
class Promotion:
    """The answer of promote and rollback (the seed's ``{success, deployment}``)."""

    deployment: DeploymentSummary
    demoted: str | None
    cache_pending: bool

    @property
    def success(self) -> bool:
        return True


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded environment change of a project."""

    seq: int
    deployment_id: str
    from_environment: Environment
    to_environment: Environment
    at: datetime


@dataclass(frozen=True)
class ProjectPage:
    """A page of projects; pass ``next_cursor`` for the next one."""

    items: list[Project]
    next_cursor: str | None


@dataclass(frozen=True)
class DeploymentPage:
    """A page of deployments, newest first; pass ``next_cursor`` for the next one."""

    items: list[Deployment]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryPage:
    """A page of history, newest first; pass ``next_cursor`` for the next one."""

    items: list[HistoryEntry]
    next_cursor: str | None


@dataclass(frozen=True)
class Resolution:
    """Which deployment a request reaches (None for a route that requires none)."""

    deployment: str | None
    source: Source


@dataclass(frozen=True)
class ApiKeyInfo:
    """What an API key string says about itself (the secret is not kept)."""

    key_type: KeyType
    environment: KeyEnvironment


@dataclass(frozen=True)
class ComponentHealth:
    """``state`` is ``ok``, ``disabled`` or ``unavailable`` (with a detail)."""

    state: str
    detail: str | None


@dataclass(frozen=True)
class Health:
    """The answer of ``health()``."""

    store: ComponentHealth
    cache: ComponentHealth
    breaker: str
    pending_cache_updates: int | None
