"""Errors of the semantic cache beyond the package-wide ones (:mod:`rgruntime.errors`)."""

from __future__ import annotations

from rgruntime.errors import RGRuntimeError

__all__ = ["EmbedderUnavailableError", "EmbeddingError"]


class EmbedderUnavailableError(RGRuntimeError, RuntimeError):
    """An embedder cannot run here: a package or a setting it needs is missing.

    ``missing`` names what is missing (a distribution, an environment variable) and the message
    says how to provide it.
    """

    def __init__(self, embedder: str, missing: str, remedy: str) -> None:
        self.embedder = embedder
        self.missing = missing
        self.remedy = remedy
        super().__init__(f"embedder {embedder!r} cannot run: {missing} is missing; {remedy}")


class EmbeddingError(RGRuntimeError):
    """An embedding service answered, but not with one vector per text of the request."""
