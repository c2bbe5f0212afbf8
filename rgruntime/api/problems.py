"""The API's errors: one exception, one JSON shape ``{"error", "message", "field"?}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from rgruntime.agents.agent import AgentNotFoundError
from rgruntime.errors import (
    CapacityError,
    ConfigError,
    InvalidArgumentError,
    LayerNotFoundError,
    RuntimeClosedError,
    describe_value,
)

__all__ = ["ApiError", "error_response", "from_exception"]


class ApiError(Exception):
    """An answer other than success: ``status``, a short ``error`` code, a ``message``."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


def invalid(field: str, value: object, accepted: str) -> ApiError:
    """422 naming the field, the value (cut to 200 characters) and what is accepted."""
    shown = describe_value(value)
    return ApiError(
        422,
        "invalid_argument",
        f"{field}: {shown} is not accepted; expected {accepted}",
        field=field,
    )


def from_exception(error: Exception) -> ApiError | None:
    """The answer for an exception the cache raised about the request, or None (a bug: 500)."""
    if isinstance(error, ConfigError | InvalidArgumentError):
        return invalid(error.field, error.value, error.accepted)
    if isinstance(error, LayerNotFoundError):
        return ApiError(404, "layer_not_found", str(error), field="layer")
    if isinstance(error, AgentNotFoundError):
        return ApiError(404, "agent_not_found", str(error), field="agent_id")
    if isinstance(error, CapacityError):
        return ApiError(507, "capacity", str(error))
    if isinstance(error, RuntimeClosedError):
        return ApiError(503, "closed", str(error))
    return None


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)
