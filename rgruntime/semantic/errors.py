"""Errors of the semantic cache beyond the package-wide ones (:mod:`rgruntime.errors`)."""

from __future__ import annotations

from rgruntime.errors import RGRuntimeError

__all__ = ["EmbedderUnavailableError", "EmbeddingError", "EmbeddingFailedError"]


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


class EmbeddingFailedError(RGRuntimeError):
    """The embedder failed to embed a text (its server unreachable, an error of its own...).

    Raised by :class:`~rgruntime.semantic.SemanticCache`'s ``lookup`` and ``add``, with the
    embedder's error as its cause. A layer's semantic index takes it as a miss, or as an entry
    left unindexed (a cache that cannot embed must not fail the request it was asked to spare).
    """

    def __init__(self, embedder: str, error: Exception) -> None:
        self.embedder = embedder
        self.error = error
        super().__init__(f"embedder {embedder!r} failed: {type(error).__name__}: {error}")
