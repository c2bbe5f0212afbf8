"""The price table: the bundled data, forgiving but careful lookups, extension and validation."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rgruntime.errors import ConfigError
from rgruntime.providers import Completion, ModelPrice, PriceTable, UnknownModelError, Usage

PRICES = PriceTable.default()


def test_the_bundled_table_is_package_data_in_litellm_shape() -> None:
    text = importlib.resources.files("rgruntime.providers").joinpath("model_prices.json")
    data = json.loads(text.read_text(encoding="utf-8"))
    assert "indicative" in data["_source"].lower()
    assert data["_updated"]
    models = {k: v for k, v in data.items() if not k.startswith("_")}
    assert len(models) >= 25
    for entry in models.values():
        assert {"input_cost_per_token", "output_cost_per_token", "litellm_provider", "mode"} <= set(
            entry
        )
    assert len(PRICES) == len(models)
    assert PriceTable.default() is PRICES  # loaded once


def test_the_one_liner_from_the_docs_works_in_a_fresh_interpreter() -> None:
    script = (
        "import rgruntime.providers.pricing as p\n"
        "from rgruntime.providers import Usage\n"
        "print(p.PriceTable.default().cost('gpt-4o', Usage(1000, 1000)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert float(result.stdout) == pytest.approx(0.0125)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "claude-3-5-sonnet",
        "claude-3-7-sonnet",
        "claude-sonnet-4",
        "claude-opus-4",
        "claude-3-5-haiku",
        "gemini-1.5-flash",
        "gemini-1.5-pro",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "mistral/mistral-large-latest",
        "groq/llama-3.3-70b-versatile",
        "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "sim-small",
        "sim-large",
    ],
)
def test_common_models_are_known(model: str) -> None:
    assert PRICES.known(model)
    assert model in PRICES
    assert PRICES.cost(model, Usage(1000, 1000)) > 0


def test_cost_is_input_plus_output() -> None:
    price = PRICES.price("gpt-4o")
    assert price is not None
    assert (price.input_cost_per_token, price.output_cost_per_token) == (2.5e-06, 1e-05)
    assert PRICES.cost("gpt-4o", Usage(1_000_000, 0)) == pytest.approx(2.5)
    assert PRICES.cost("gpt-4o", Usage(0, 1_000_000)) == pytest.approx(10.0)
    assert PRICES.cost("gpt-4o", Usage(0, 0)) == 0.0
    completion = Completion("hi", usage=Usage(100, 10), model="gpt-4o-mini")
    assert PRICES.completion_cost(completion) == pytest.approx(100 * 0.15e-6 + 10 * 0.6e-6)


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o-2024-11-20", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # an exact entry wins: it has its own price
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic/claude-3-5-sonnet-20240620", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("vertex_ai/claude-3-7-sonnet@20250219", "claude-3-7-sonnet"),
        ("gemini/gemini-1.5-pro-002", "gemini-1.5-pro"),
        ("mistral-large-latest", "mistral/mistral-large-latest"),
        ("llama-3.1-8b-instant", "groq/llama-3.1-8b-instant"),
        (
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ),
        ("openrouter/openai/gpt-4.1-mini", "gpt-4.1-mini"),
    ],
)
def test_prefixes_and_version_suffixes_are_forgiven(asked: str, found: str) -> None:
    assert PRICES.resolve(asked) == found


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o-mini-foo",  # not gpt-4o-mini, and certainly not gpt-4o
        "gpt-5-turbo",
        "o1-pro",
        "claude",
        "gemini-3.0-ultra",
        "my-fine-tune",
        "",
        "/",
        "openai/",
    ],
)
def test_unknown_models_are_not_guessed(model: str) -> None:
    assert PRICES.resolve(model) is None
    assert not PRICES.known(model)
    assert PRICES.cost(model, Usage(1000, 1000)) == 0.0
    with pytest.raises(UnknownModelError, match="extend"):
        PRICES.cost(model, Usage(1, 1), strict=True)


def test_an_ambiguous_unprefixed_name_is_not_guessed() -> None:
    table = PriceTable.default().extend(
        {
            "groq/shared-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
            "together_ai/shared-model": {
                "input_cost_per_token": 2e-6,
                "output_cost_per_token": 2e-6,
            },
        }
    )
    assert table.resolve("shared-model") is None
    assert table.resolve("groq/shared-model") == "groq/shared-model"


def test_extend_adds_and_overrides_without_changing_the_original() -> None:
    table = PRICES.extend(
        {
            "my-model": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "max_input_tokens": 8192,
                "litellm_provider": "custom",
                "mode": "chat",
                "supports_function_calling": True,  # other LiteLLM keys are accepted
            },
            "gpt-4o": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        }
    )
    assert table.cost("my-model", Usage(1000, 1000)) == pytest.approx(0.003)
    assert table.price("my-model") == ModelPrice(1e-6, 2e-6, 8192, None, "custom", "chat")
    assert table.cost("gpt-4o", Usage(1000, 1000)) == 0.0
    assert PRICES.cost("gpt-4o", Usage(1000, 1000)) > 0
    assert not PRICES.known("my-model")


def test_with_prices() -> None:
    table = PRICES.with_prices(
        "local-llama", input_cost_per_token=0, output_cost_per_token=1e-7, mode="chat"
    )
    assert table.price("local-llama") == ModelPrice(0.0, 1e-7, mode="chat")
    with pytest.raises(ConfigError) as caught:
        PRICES.with_prices("x", input_cost_per_token=1, output_cost_per_token=1, colour="red")
    assert caught.value.value == "colour"


def test_to_dict_round_trips() -> None:
    assert PriceTable.from_dict(PRICES.to_dict()).to_dict() == PRICES.to_dict()


def test_load_and_skip_incomplete(tmp_path: Path) -> None:
    data = {
        "sample_spec": {"input_cost_per_token": "USD per token"},  # LiteLLM's own documentation
        "dall-e-3": {"output_cost_per_image": 0.04, "mode": "image_generation"},
        "chat-model": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 1e-6,
            "max_tokens": 4096.0,
        },
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        PriceTable.load(path)
    assert caught.value.field == "prices['dall-e-3'].input_cost_per_token"
    table = PriceTable.load(path, skip_incomplete=True)
    assert table.models == ("chat-model",)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([1, 2], "prices"),
        ({"m": 3}, "prices['m']"),
        ({"m": {"output_cost_per_token": 1e-6}}, "prices['m'].input_cost_per_token"),
        (
            {"m": {"input_cost_per_token": -1, "output_cost_per_token": 0}},
            "prices['m'].input_cost_per_token",
        ),
        (
            {"m": {"input_cost_per_token": "2.5", "output_cost_per_token": 0}},
            "prices['m'].input_cost_per_token",
        ),
        (
            {"m": {"input_cost_per_token": 0, "output_cost_per_token": float("nan")}},
            "prices['m'].output_cost_per_token",
        ),
        (
            {"m": {"input_cost_per_token": 0, "output_cost_per_token": True}},
            "prices['m'].output_cost_per_token",
        ),
        (
            {"m": {"input_cost_per_token": 0, "output_cost_per_token": 0, "max_input_tokens": 0}},
            "prices['m'].max_input_tokens",
        ),
        (
            {
                "m": {
                    "input_cost_per_token": 0,
                    "output_cost_per_token": 0,
                    "max_output_tokens": 1.5,
                }
            },
            "prices['m'].max_output_tokens",
        ),
        (
            {"m": {"input_cost_per_token": 0, "output_cost_per_token": 0, "mode": 3}},
            "prices['m'].mode",
        ),
        ({"": {"input_cost_per_token": 0, "output_cost_per_token": 0}}, "prices"),
    ],
)
def test_bad_price_data_names_the_field(data: Any, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PriceTable.from_dict(data)
    assert caught.value.field == field
    with pytest.raises(ConfigError):
        PRICES.extend(data)


def test_bad_json_and_bad_usage() -> None:
    with pytest.raises(ConfigError, match="invalid JSON"):
        PriceTable.from_json("{")
    with pytest.raises(ConfigError):
        PRICES.cost("gpt-4o", (1, 2))  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PriceTable({"m": {"input_cost_per_token": 1}})  # type: ignore[dict-item]


def test_an_empty_table_knows_nothing() -> None:
    table = PriceTable()
    assert len(table) == 0
    assert table.cost("gpt-4o", Usage(1, 1)) == 0.0
    assert list(table) == []
    assert "PriceTable of 0 models" in repr(table)
