"""The exceptions a model provider raises.

Every one is a :class:`~rgruntime.RGRuntimeError`, so ``except RGRuntimeError`` still catches
everything rgruntime raises. Messages never contain an API key: the HTTP provider scrubs it from
response bodies before they reach an error.
"""

from __future__ import annotations

from rgruntime.errors import RGRuntimeError

__all__ = [
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderProtocolError",
    "ProviderTimeout",
    "UnknownModelError",
]


class ProviderError(RGRuntimeError):
    """A model provider could not produce a completion. ``provider`` is the provider's name."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        self.provider = provider
        super().__init__(f"{provider}: {message}" if provider else message)


class ProviderHTTPError(ProviderError):
    """The provider answered with an HTTP error status.

    ``status`` is the HTTP status, ``body_excerpt`` the start of the response body (the error
    message of an OpenAI-style ``{"error": {"message": ...}}`` body when there is one), and
    ``retry_after`` the delay in seconds the server asked for, if it did.
    """

    def __init__(
        self,
        status: int,
        body_excerpt: str,
        *,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        detail = f": {body_excerpt}" if body_excerpt else ""
        super().__init__(f"HTTP {status}{detail}", provider=provider)

    @property
    def retryable(self) -> bool:
        """Rate limits (429) and server errors (5xx) may pass; other client errors will not."""
        return self.status == 429 or self.status >= 500


class ProviderTimeout(ProviderError, TimeoutError):
    """The provider did not answer within the timeout."""


class ProviderConnectionError(ProviderError, ConnectionError):
    """The provider could not be reached, or dropped the connection mid-answer."""


class ProviderProtocolError(ProviderError):
    """The provider's answer is malformed: not JSON, missing fields, a broken event stream."""


class UnknownModelError(RGRuntimeError, LookupError):
    """A strict price lookup named a model the price table does not know."""

    def __init__(self, model: str, hint: str) -> None:
        self.model = model
        super().__init__(f"no price for model {model!r}; {hint}")
