"""Exceptions of lupa_core: one base class with the core's stable code, and
one subclass per HTTP status family, so ``except`` clauses read naturally::

    try:
        lupa.promote(project, deployment)
    except lupa_core.NotFoundError:
        ...
    except lupa_core.LupaError as e:
        return Response(e.http_body, status_code=e.http_status)

The codes, their statuses and the HTTP body all come from the core.
"""

from __future__ import annotations

import enum

from . import _native

__all__ = [
    "BadRequestError",
    "ConflictError",
    "ErrorCode",
    "InternalError",
    "InvalidArgumentError",
    "LupaError",
    "NotFoundError",
    "PermissionDeniedError",
    "ServiceUnavailableError",
    "error_class",
]


class ErrorCode(str, enum.Enum):
    """The stable error codes (``semantics.md``); equal to their names as ``str``."""

    INVALID_API_KEY = "INVALID_API_KEY"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    DEPLOYMENT_NOT_FOUND = "DEPLOYMENT_NOT_FOUND"
    NO_PRODUCTION_DEPLOYMENT = "NO_PRODUCTION_DEPLOYMENT"
    NO_STAGING_DEPLOYMENT = "NO_STAGING_DEPLOYMENT"
    DEPLOYMENT_NOT_IN_PROJECT = "DEPLOYMENT_NOT_IN_PROJECT"
    DEPLOYMENT_NOT_READY = "DEPLOYMENT_NOT_READY"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    PROJECT_EXISTS = "PROJECT_EXISTS"
    DEPLOYMENT_EXISTS = "DEPLOYMENT_EXISTS"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    PRODUCTION_CONFLICT = "PRODUCTION_CONFLICT"
    NO_ROLLBACK_TARGET = "NO_ROLLBACK_TARGET"
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
    INTERNAL = "INTERNAL"

    def __str__(self) -> str:
        return str(self.value)


class LupaError(Exception):
    """An error of a Lupa operation.

    ``code`` is the stable code (an :class:`ErrorCode`, equal to its name),
    ``message`` the human text (never a secret), ``http_status`` the status a
    server answers with, ``http_body`` the JSON body
    ``{"error": {"code", "message"}}``.
    """

    code: ErrorCode
    message: str
    http_status: int

    def __init__(self, code: ErrorCode | str, message: str, http_status: int | None = None) -> None:
        self.code = ErrorCode(code)
        self.message = message
        self.http_status = _native.error_http_status(self.code.value) if http_status is None else http_status
        super().__init__(f"{self.code.value}: {message}")

    @property
    def http_body(self) -> str:
        """The JSON text of the HTTP answer: ``{"error": {"code", "message"}}``."""
        return _native.error_http_body(self.code.value, self.message)

    def __reduce__(self) -> tuple[type[LupaError], tuple[str, str, int]]:
        return (type(self), (self.code.value, self.message, self.http_status))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r}, http_status={self.http_status})"


class BadRequestError(LupaError):
    """400: the request cannot be served as asked (no deployment to resolve,
    a deployment not ready, an argument that is wrong)."""


class InvalidArgumentError(BadRequestError, ValueError):
    """400 ``INVALID_ARGUMENT``: an argument is malformed (also a ValueError)."""


class PermissionDeniedError(LupaError):
    """403: the API key is not valid."""


class NotFoundError(LupaError, LookupError):
    """404: the project or deployment does not exist (for this project)."""


class ConflictError(LupaError):
    """409: the change conflicts with the current state."""


class InternalError(LupaError):
    """500: a bug; details are in the ``lupa_core`` log."""


class ServiceUnavailableError(LupaError):
    """503: the store could not be reached in time (or the handle is closed)."""


_FAMILIES: dict[int, type[LupaError]] = {
    400: BadRequestError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    500: InternalError,
    503: ServiceUnavailableError,
}


def error_class(code: ErrorCode | str, http_status: int) -> type[LupaError]:
    """The exception class for a code and its HTTP status."""
    if code == ErrorCode.INVALID_ARGUMENT:
        return InvalidArgumentError
    return _FAMILIES.get(http_status, LupaError)


def _from_native(code: str, message: str, http_status: int) -> LupaError:
    return error_class(code, http_status)(code, message, http_status)
