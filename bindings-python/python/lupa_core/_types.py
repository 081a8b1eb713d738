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

from ._errors import ErrorCode

__all__ = [
    "ApiKeyInfo",
    "Change",
    "ComponentHealth",
    "Deployment",
    "DeploymentChange",
    "DeploymentPage",
    "DeploymentResolutions",
    "DeploymentSummary",
    "Environment",
    "ErrorCount",
    "Health",
    "HistoryEntry",
    "HistoryPage",
    "KeyEnvironment",
    "KeyType",
    "LatencyHistogram",
    "Project",
    "ProjectPage",
    "Promotion",
    "Resolution",
    "ResolutionCounts",
    "SharedCacheCounts",
    "Source",
    "Stats",
    "Status",
    "StoreCounts",
    "TierCounts",
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


@dataclass(frozen=True)
class ErrorCount:
    """How many resolutions failed with one code."""

    code: ErrorCode
    count: int


@dataclass(frozen=True)
class ResolutionCounts:
    """Finished resolutions: answered from process memory (``local``), the
    shared cache or the store, and failures by code (only codes that
    occurred, in the order of ``semantics.md``)."""

    local: int
    cache: int
    store: int
    errors: list[ErrorCount]

    def total(self) -> int:
        """Every finished resolution, answered or failed."""
        return self.local + self.cache + self.store + sum(e.count for e in self.errors)

    def errors_with(self, code: ErrorCode | str) -> int:
        """Failures with ``code``."""
        return next((e.count for e in self.errors if e.code == code), 0)


@dataclass(frozen=True)
class TierCounts:
    """Lookups a cache tier answered (``hits``) and could not (``misses``)."""

    hits: int
    misses: int


@dataclass(frozen=True)
class SharedCacheCounts:
    """The shared cache, as resolution used it (all zero without one).

    ``hits`` and ``misses`` are lookups (a miss: missing, or a value that
    does not parse); ``errors``, ``timeouts`` and ``skipped`` (not asked: the
    circuit breaker was open) are calls of any kind. ``breaker`` is the
    breaker's state now (``closed``, ``open`` or ``half_open``; None without a
    shared cache); ``breaker_opened``, how often it opened."""

    hits: int
    misses: int
    errors: int
    timeouts: int
    skipped: int
    breaker: str | None
    breaker_opened: int


@dataclass(frozen=True)
class StoreCounts:
    """Operations sent to the store (one statement for a resolution's
    lookup, one transaction for a change, and the background work that
    applies pending cache updates), and those that failed as
    ``STORAGE_UNAVAILABLE``."""

    queries: int
    unavailable: int


@dataclass(frozen=True)
class LatencyHistogram:
    """How long the resolutions took that process memory could not answer
    (answered by the shared cache or the store, or failed there), from the
    in-process miss to the answer; answers from process memory and malformed
    requests are counted in ``Stats.resolutions`` but not timed.
    ``counts[i]`` of them took at most ``bounds_us[i]`` microseconds (and
    more than the bound before); the last count, one past the bounds, is
    everything slower. ``sum_ns``: their durations added up, in
    nanoseconds."""

    bounds_us: list[int]
    counts: list[int]
    sum_ns: int

    def count(self) -> int:
        """How many resolutions the histogram holds."""
        return sum(self.counts)


@dataclass(frozen=True)
class DeploymentResolutions:
    """Successful resolutions that reached one deployment."""

    project: str
    deployment: str
    resolutions: int


@dataclass(frozen=True)
class Stats:
    """What a handle has counted since it was opened (``stats()``). Every
    count only grows: take two snapshots and subtract for a rate.
    ``metrics_text()`` renders the same in the Prometheus text format.

    ``local``: the in-process tier's lookups; ``local_projects``: projects it
    holds now (None when it is off). ``deployments``: successful resolutions
    per deployment, most resolved first, for a bounded number of
    deployments; ``untracked_deployment_resolutions`` counts the rest.
    ``promotions``: promotions that changed production (``promote``, and a
    deployment promoted the moment it was ready)."""

    resolutions: ResolutionCounts
    local: TierCounts
    local_projects: int | None
    cache: SharedCacheCounts
    store: StoreCounts
    latency: LatencyHistogram
    deployments: list[DeploymentResolutions]
    untracked_deployment_resolutions: int
    promotions: int
    rollbacks: int
