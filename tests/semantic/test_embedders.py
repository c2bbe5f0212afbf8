"""Embedders: the default model (all-MiniLM-L6-v2 int8, installed by the test extra), the hashing
embedder, the OpenAI-compatible one (over a mock transport) and the registry."""

from __future__ import annotations

import json
import time

import anyio
import httpx
import numpy as np
import pytest

from rgruntime.errors import ConfigError, InvalidArgumentError
from rgruntime.providers.errors import ProviderHTTPError
from rgruntime.semantic import (
    DEFAULT_EMBEDDER,
    EmbedderUnavailableError,
    HashingEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    SemanticCache,
    embedder_names,
    make_embedder,
    register_embedder,
)


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    embedder = make_embedder()
    assert isinstance(embedder, MiniLMEmbedder)
    embedder.load()
    return embedder


def test_the_default_is_minilm() -> None:
    assert DEFAULT_EMBEDDER == "minilm"
    assert {"minilm", "hashing", "openai", "text-embedding-3-small"} <= set(embedder_names())


def test_minilm_vectors(minilm: MiniLMEmbedder) -> None:
    texts = [
        "What's the weather in Paris?",
        "How's the weather in Paris today?",
        "What's the weather in London?",
        "A man is playing a guitar.",
    ]
    vectors = minilm.encode(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    # all-MiniLM-L6-v2's float32 weights give 0.9229 and 0.7032; int8 stays within 0.01.
    assert similarity[0, 1] == pytest.approx(0.9229, abs=0.01)
    assert similarity[0, 2] == pytest.approx(0.7032, abs=0.01)
    assert similarity[0, 3] < 0.1
    # Batching (and padding inside a batch) does not change a text's vector.
    alone = np.stack([minilm.encode([text])[0] for text in texts])
    np.testing.assert_allclose(alone, vectors, atol=1e-5)


def test_minilm_handles_long_and_odd_texts(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.encode(["", "word " * 2000, "Ünïcödé café — 東京 🙂"])
    assert vectors.shape == (3, 384)
    assert np.isfinite(vectors).all()


@pytest.mark.anyio
async def test_minilm_embeds_off_the_event_loop(minilm: MiniLMEmbedder) -> None:
    """The loop keeps ticking while texts are embedded in worker threads.

    Measured in the event loop thread's own CPU time (``time.thread_time``), not on the wall
    clock: what matters is that the model's work runs in another thread, and a wall-clock gap
    also counts the time a busy machine gave the CPU to other processes (this test once failed
    at 105 ms of wall clock under a shared CI machine's load). Embedding four texts takes tens
    of milliseconds of CPU: on the loop's thread it would show as a gap of that size.
    """
    gaps: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        last = time.thread_time()
        while not done.is_set():
            await anyio.sleep(0.001)
            now = time.thread_time()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        for number in range(20):
            vectors = await minilm.embed([f"question number {number} about the weather"] * 4)
            assert vectors.shape == (4, 384)
        done.set()
    assert len(gaps) > 20  # the loop kept turning while the texts were embedded
    assert max(gaps) < 0.01


@pytest.mark.anyio
async def test_semantic_cache_on_the_real_model() -> None:
    cache = SemanticCache()  # the defaults: minilm, threshold 0.91, verification on
    async with anyio.create_task_group() as group:
        await group.start(cache.run)
        await cache.add("weather-agent", "paris", "What's the weather in Paris?")
        await cache.add("weather-agent", "score", "How do I increase my credit score?")
        hit = await cache.lookup("weather-agent", "How's the weather in Paris?")
        assert hit is not None
        assert hit.key == "paris"
        assert hit.similarity >= 0.91
        assert await cache.lookup("weather-agent", "What's the weather in London?") is None
        assert await cache.lookup("weather-agent", "How do I decrease my credit score?") is None
        assert await cache.lookup("other-tenant", "What's the weather in Paris?") is None
        group.cancel_scope.cancel()


@pytest.mark.anyio
async def test_hashing_embedder_is_deterministic() -> None:
    embedder = HashingEmbedder(dimension=64)
    first = await embedder.embed(["hello world", "hello world", ""])
    assert first.shape == (3, 64)
    np.testing.assert_array_equal(first[0], first[1])
    assert not first[2].any()  # no words: a zero vector
    np.testing.assert_array_equal(
        first, HashingEmbedder(dimension=64).encode(["hello world"] * 2 + [""])
    )
    with pytest.raises(InvalidArgumentError, match="dimension"):
        HashingEmbedder(dimension=2)
    with pytest.raises(InvalidArgumentError, match="texts"):
        await embedder.embed("one string")


def test_registry() -> None:
    with pytest.raises(ConfigError, match="known embedder"):
        make_embedder("nope")
    register_embedder("tiny-hashing", lambda **options: HashingEmbedder(dimension=16))
    assert make_embedder("tiny-hashing").dimension == 16
    with pytest.raises(InvalidArgumentError, match="not registered yet"):
        register_embedder("tiny-hashing", HashingEmbedder)


def test_openai_needs_a_base_url_and_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbedderUnavailableError, match="base URL"):
        make_embedder("text-embedding-3-small")
    with pytest.raises(EmbedderUnavailableError, match=r"API key.*OPENAI_API_KEY"):
        make_embedder("openai", base_url="http://localhost:1/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    embedder = make_embedder("text-embedding-3-large")
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.dimension == 3072
    assert "sk-test" not in repr(embedder)


@pytest.mark.anyio
async def test_openai_embeddings_over_http() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = json.loads(request.content)
        if body["input"] == ["fail"]:
            return httpx.Response(401, json={"error": {"message": "bad key sk-secret"}})
        data = [
            {"index": i, "embedding": [float(len(text)), 1.0, 0.0]}
            for i, text in enumerate(body["input"])
        ]
        return httpx.Response(200, json={"data": list(reversed(data))})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        embedder = OpenAIEmbedder(
            model="my-embedder", base_url="http://server/v1/", api_key="sk-secret", client=client
        )
        vectors = await embedder.embed(["a", "abc"])
        assert vectors.shape == (2, 3)
        assert embedder.dimension == 3
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
        assert vectors[1, 0] > vectors[0, 0]  # rows in the order of the texts
        assert str(requests[0].url) == "http://server/v1/embeddings"
        assert requests[0].headers["Authorization"] == "Bearer sk-secret"
        assert json.loads(requests[0].content)["model"] == "my-embedder"
        with pytest.raises(ProviderHTTPError) as raised:
            await embedder.embed(["fail"])
        assert raised.value.status == 401
        assert "sk-secret" not in str(raised.value)
