"""lupa_core: which deployment of a Lupa knowledge base a request reaches,
and the changes that move it (promote, rollback, status, environment).

Two clients over the same core:

* :class:`Lupa` blocks (releasing the GIL while it waits);
* :class:`AsyncLupa` returns asyncio awaitables.

Both are context managers (``with`` / ``async with``) and have ``close()``.
Errors are :class:`LupaError` subclasses with the core's stable ``code``,
``message`` and ``http_status``. Library events go to the ``lupa_core``
logger. A handle opened before ``fork()`` works in the child: it opens its
own connections there.
"""

from __future__ import annotations

from ._errors import (
    BadRequestError,
    ConflictError,
    ErrorCode,
    InternalError,
    InvalidArgumentError,
    LupaError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    error_class,
)
from ._native import (
    MAX_ID_LEN,
    MAX_PAGE,
    AsyncCacheProbe,
    AsyncLupa,
    CacheProbe,
    Lupa,
    __version__,
    api_key_from_authorization,
    error_codes,
    parse_api_key,
    project_from_host,
)
from ._types import (
    ApiKeyInfo,
    Change,
    ComponentHealth,
    Deployment,
    DeploymentChange,
    DeploymentPage,
    DeploymentResolutions,
    DeploymentSummary,
    Environment,
    ErrorCount,
    Health,
    HistoryEntry,
    HistoryPage,
    KeyEnvironment,
    KeyType,
    LatencyHistogram,
    Project,
    ProjectPage,
    Promotion,
    Resolution,
    ResolutionCounts,
    SharedCacheCounts,
    Source,
    Stats,
    Status,
    StoreCounts,
    TierCounts,
)

__all__ = [
    "MAX_ID_LEN",
    "MAX_PAGE",
    "ApiKeyInfo",
    "AsyncCacheProbe",
    "AsyncLupa",
    "BadRequestError",
    "CacheProbe",
    "Change",
    "ComponentHealth",
    "ConflictError",
    "Deployment",
    "DeploymentChange",
    "DeploymentPage",
    "DeploymentResolutions",
    "DeploymentSummary",
    "Environment",
    "ErrorCode",
    "ErrorCount",
    "Health",
    "HistoryEntry",
    "HistoryPage",
    "InternalError",
    "InvalidArgumentError",
    "KeyEnvironment",
    "KeyType",
    "LatencyHistogram",
    "Lupa",
    "LupaError",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "ProjectPage",
    "Promotion",
    "Resolution",
    "ResolutionCounts",
    "ServiceUnavailableError",
    "SharedCacheCounts",
    "Source",
    "Stats",
    "Status",
    "StoreCounts",
    "TierCounts",
    "__version__",
    "api_key_from_authorization",
    "error_class",
    "error_codes",
    "parse_api_key",
    "project_from_host",
]
