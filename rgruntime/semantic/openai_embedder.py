"""Embeddings from any server that speaks OpenAI's ``/v1/embeddings`` (OpenAI, Azure OpenAI
behind a compatible gateway, vLLM, Ollama, LiteLLM's proxy...), over ``httpx`` (asyncio and trio).

It needs a base URL and an API key, given as arguments or in ``OPENAI_BASE_URL`` and
``OPENAI_API_KEY``; without either it refuses to be built, naming what is missing, rather than
sending the texts somewhere by default. The HTTP client is created at the first call (never in
``__init__``: an object made before an event loop runs must not be bound to one); close it with
:meth:`OpenAIEmbedder.aclose`. Failures are not retried here: a failed embedding is a cache miss
for the caller, which is cheaper than waiting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final

import httpx
import numpy as np

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers.errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeout,
)
from rgruntime.semantic.embedder import Vectors, check_texts, normalize_rows
from rgruntime.semantic.errors import EmbedderUnavailableError, EmbeddingError

__all__ = ["KNOWN_DIMENSIONS", "OpenAIEmbedder"]

#: Output sizes of OpenAI's embedding models (others are learned from the first answer).
KNOWN_DIMENSIONS: Final = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_EXCERPT: Final = 300


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` with ``{"model": model, "input": texts}``.

    ``base_url`` is the API root before ``/embeddings`` (``"https://api.openai.com/v1"``).
    ``dimensions`` asks models that support it (``text-embedding-3-*``) for shorter vectors.
    """

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise InvalidArgumentError("model", model, "an embedding model name")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not base_url:
            raise EmbedderUnavailableError(
                model,
                "the API base URL",
                "pass base_url='https://api.openai.com/v1' (or your server's) or set "
                "OPENAI_BASE_URL",
            )
        if not api_key:
            raise EmbedderUnavailableError(
                model, "the API key", "pass api_key=... or set OPENAI_API_KEY"
            )
        if dimensions is not None and (
            isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
        ):
            raise InvalidArgumentError("dimensions", dimensions, "a positive whole number")
        self.name = model if dimensions is None else f"{model}@{dimensions}"
        self.model = model
        self.dimension = dimensions or KNOWN_DIMENSIONS.get(model, 0)
        self._dimensions = dimensions
        self._url = base_url.rstrip("/") + "/embeddings"
        self._api_key = api_key
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEmbedder(model={self.model!r}, url={self._url!r})"

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        checked = check_texts(texts)
        if not checked:
            return np.empty((0, self.dimension), dtype=np.float32)
        body: dict[str, Any] = {"model": self.model, "input": checked}
        if self._dimensions is not None:
            body["dimensions"] = self._dimensions
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._client.post(
                self._url, json=body, headers={"Authorization": f"Bearer {self._api_key}"}
            )
        except httpx.TimeoutException as error:
            raise ProviderTimeout(f"embedding timed out: {error}", provider=self.model) from None
        except httpx.TransportError as error:
            raise ProviderConnectionError(
                f"cannot reach {self._url}: {error}", provider=self.model
            ) from None
        if response.status_code >= 400:
            excerpt = response.text[:_EXCERPT].replace(self._api_key, "***")
            raise ProviderHTTPError(response.status_code, excerpt, provider=self.model)
        return self._parse(response, len(checked))

    def _parse(self, response: httpx.Response, count: int) -> Vectors:
        try:
            rows = sorted(response.json()["data"], key=lambda row: row["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as error:
            raise EmbeddingError(f"{self.model}: malformed embeddings answer ({error})") from None
        if vectors.ndim != 2 or vectors.shape[0] != count:
            raise EmbeddingError(
                f"{self.model}: asked for {count} embeddings, got shape {vectors.shape}"
            )
        if self.dimension == 0:
            self.dimension = int(vectors.shape[1])
        return normalize_rows(vectors)


def make_openai(**options: Any) -> OpenAIEmbedder:
    return OpenAIEmbedder(**options)
