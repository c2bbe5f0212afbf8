"""Fixtures of the framework adapter tests (run by ``nox -s adapters`` only).

The frameworks run on asyncio only (each calls asyncio directly), so these tests run on asyncio;
``test_common.py`` shows that an adapter used on trio says so. The model is the project's fake
OpenAI-compatible server (``tests/providers/fake_openai.py``) on a loopback socket.
"""

from __future__ import annotations

import os

# LiteLLM (and DSPy through it) would fetch a model price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator
from typing import Any

import pytest

import rgruntime
from tests.providers.fake_openai import API_KEY, FakeOpenAI, serve

__all__ = ["API_KEY", "PARAPHRASE", "QUESTION", "UNRELATED"]

#: A question, a paraphrase of it (served by meaning), and one close in wording but another
#: question (never served by meaning): the pairs of examples/guide_semantic_caching.py.
QUESTION = "How do I reset my password?"
PARAPHRASE = "How can I reset my password?"
UNRELATED = "How do I reset my router?"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
async def base_url(fake: FakeOpenAI) -> AsyncIterator[str]:
    async with serve(fake) as url:
        yield url


@pytest.fixture
async def runtime() -> AsyncIterator[rgruntime.Runtime]:
    async with rgruntime.open_runtime({"max_size": "64MB"}) as opened:
        yield opened


@pytest.fixture
async def openai_client(base_url: str) -> AsyncIterator[Any]:
    """An ``openai.AsyncOpenAI`` on the fake server, closed after the test."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    async with client:
        yield client


def user_texts(fake: FakeOpenAI) -> list[Any]:
    """The last message of each chat request the fake server received."""
    return [request.body["messages"][-1].get("content") for request in fake.requests]
