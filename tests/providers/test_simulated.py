"""The simulated provider: determinism, token counts, scripted tool calls, injected failures."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import attrs
import pytest

from rgruntime.errors import InvalidArgumentError
from rgruntime.providers import (
    Completion,
    CompletionRequest,
    Message,
    ModelProvider,
    PriceTable,
    ProviderHTTPError,
    SimulatedProvider,
    ToolSpec,
    collect,
    estimate_prompt_tokens,
    estimate_tokens,
)

pytestmark = pytest.mark.anyio

WEATHER = ToolSpec("get_weather", "Weather in a city", {"type": "object"})
SEARCH = ToolSpec("search", "Web search", {"type": "object"})


def ask(text: str = "What is a cache?", **options: Any) -> CompletionRequest:
    return CompletionRequest("sim-small", [Message("user", text)], **options)


def instant(**options: Any) -> SimulatedProvider:
    return SimulatedProvider(latency=0, **options)


def test_it_is_a_model_provider() -> None:
    provider = instant()
    assert isinstance(provider, ModelProvider)
    assert provider.name == "simulated"
    assert instant(name="sim").name == "sim"


async def test_answers_are_deterministic_across_instances() -> None:
    first = await instant().complete(ask())
    second = await instant().complete(ask())
    assert first == second
    assert (first.finish_reason, first.model) == ("stop", "sim-small")
    assert first.text[0].isupper()
    assert first.text.endswith(".")


async def test_the_answer_depends_on_everything_in_the_key_and_on_the_seed() -> None:
    base = await instant().complete(ask())
    assert (await instant().complete(ask("Another question"))).text != base.text
    assert (await instant().complete(ask(temperature=0.5))).text != base.text
    assert (await instant().complete(ask(tools=[WEATHER]))).text != base.text
    assert (await instant(seed=1).complete(ask())).text != base.text


async def test_the_answer_is_fixed_by_the_request_not_by_call_order() -> None:
    provider = instant()
    a1 = await provider.complete(ask("a"))
    await provider.complete(ask("b"))
    assert await provider.complete(ask("a")) == a1


async def test_token_counts_follow_the_documented_estimate() -> None:
    request = CompletionRequest(
        "sim-small",
        [Message("system", "Be brief."), Message("user", "What is a cache?")],
        tools=[WEATHER],
    )
    completion = await instant().complete(request)
    assert completion.usage.completion_tokens == math.ceil(len(completion.text) / 4)
    tools = math.ceil(len(json.dumps(WEATHER.to_dict())) / 4)
    expected_prompt = (4 + 3) + (4 + 4) + tools + 3  # per-message overhead, text, tools, priming
    assert completion.usage.prompt_tokens == expected_prompt == estimate_prompt_tokens(request)
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcde") == 2


async def test_words_bound_the_answer_length() -> None:
    completion = await instant(words=(3, 3)).complete(ask())
    assert len(completion.text.split()) == 3


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    completion = await instant(words=(40, 40)).complete(ask(max_tokens=5))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    assert len(completion.text) == 20


async def test_a_stop_string_ends_the_answer() -> None:
    full = (await instant(words=(40, 40)).complete(ask())).text
    word = full.split()[3]
    stopped = await instant(words=(40, 40)).complete(ask(stop=[word]))
    # The stop string is part of the key, so the text differs; it never contains the stop string.
    assert word not in stopped.text


async def test_streaming_gives_the_same_completion() -> None:
    for request in (ask(), ask(max_tokens=3), ask(tools=[WEATHER])):
        provider = instant(chunk_size=7, tool_script={"get_weather": {"city": "Oslo"}})
        assert await collect(provider.stream(request)) == await provider.complete(request)


async def test_calls_are_counted_and_a_stream_counts_when_iterated() -> None:
    provider = instant()
    await provider.complete(ask())
    stream = provider.stream(ask("x"))
    assert provider.calls == 1
    async with contextlib.aclosing(stream) as chunks:
        async for _ in chunks:
            break
    assert provider.calls == 2
    assert provider.last_request == ask("x")


# --- scripted tool calls -------------------------------------------------------------------------


async def test_a_mapping_script_calls_offered_tools_then_answers_after_the_result() -> None:
    provider = instant(tool_script={"get_weather": {"city": "Paris"}, "unoffered": {}})
    request = ask("Weather in Paris?", tools=[WEATHER, SEARCH])
    first = await provider.complete(request)
    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    (call,) = first.tool_calls
    assert (call.name, call.parse_arguments()) == ("get_weather", {"city": "Paris"})
    assert first.usage.completion_tokens == estimate_tokens(call.name) + estimate_tokens(
        call.arguments
    )
    # The agent loop: record the call, run the tool, send the result back.
    follow_up = attrs.evolve(
        request,
        messages=[
            *request.messages,
            first.to_message(),
            Message("tool", '{"temp": 21}', tool_call_id=call.id),
        ],
    )
    second = await provider.complete(follow_up)
    assert second.tool_calls == ()
    assert second.text
    assert second.finish_reason == "stop"
    # Deterministic ids, distinct per request.
    assert (await provider.complete(request)).tool_calls == first.tool_calls
    other = await provider.complete(ask("Weather in Rome?", tools=[WEATHER]))
    assert other.tool_calls[0].id != call.id


async def test_a_mapping_script_respects_tool_choice() -> None:
    provider = instant(tool_script={"get_weather": {}, "search": lambda r: {"q": r.model}})
    both = await provider.complete(ask(tools=[WEATHER, SEARCH]))
    assert [c.name for c in both.tool_calls] == ["get_weather", "search"]
    assert both.tool_calls[1].parse_arguments() == {"q": "sim-small"}
    none = await provider.complete(ask(tools=[WEATHER, SEARCH], tool_choice="none"))
    assert none.tool_calls == ()
    named = await provider.complete(ask(tools=[WEATHER, SEARCH], tool_choice="search"))
    assert [c.name for c in named.tool_calls] == ["search"]
    assert (await provider.complete(ask())).tool_calls == ()  # no tools offered


async def test_a_function_script_decides_freely() -> None:
    def script(request: CompletionRequest) -> list[tuple[str, Any]]:
        question = request.messages[-1].content or ""
        return [("search", {"q": question}), ("search", '{"q": "raw"}')] if "?" in question else []

    provider = instant(tool_script=script)
    completion = await provider.complete(ask("cats?", tools=[SEARCH]))
    assert [c.arguments for c in completion.tool_calls] == ['{"q": "cats?"}', '{"q": "raw"}']
    assert len({c.id for c in completion.tool_calls}) == 2
    assert (await provider.complete(ask("cats", tools=[SEARCH]))).tool_calls == ()


async def test_a_script_may_only_call_offered_tools() -> None:
    provider = instant(tool_script=lambda request: [("launch", {})])
    with pytest.raises(InvalidArgumentError) as caught:
        await provider.complete(ask(tools=[SEARCH]))
    assert caught.value.field == "tool_script"


# --- failure injection ---------------------------------------------------------------------------


async def test_fail_first_fails_the_first_calls_then_answers() -> None:
    provider = instant(fail_first=2, error_status=429)
    for _ in range(2):
        with pytest.raises(ProviderHTTPError) as caught:
            await provider.complete(ask())
        assert caught.value.status == 429
        assert caught.value.retryable
        assert caught.value.provider == "simulated"
    assert (await provider.complete(ask())).text
    assert provider.calls == 3


async def outcomes(provider: SimulatedProvider, count: int) -> list[str]:
    results = []
    for i in range(count):
        try:
            completion = await provider.complete(ask(f"question {i}"))
        except ProviderHTTPError:
            results.append("error")
        else:
            results.append("empty" if not completion.text else completion.finish_reason or "none")
    return results


async def test_failure_rates_follow_a_seeded_rng() -> None:
    options = {"error_rate": 0.2, "empty_rate": 0.2, "truncate_rate": 0.2}
    first = await outcomes(instant(seed=3, **options), 200)
    assert first == await outcomes(instant(seed=3, **options), 200)
    assert first != await outcomes(instant(seed=4, **options), 200)
    # 20% each, 40% plain answers (fixed by the seed: these bounds only catch a broken split).
    for outcome, expected in (("error", 40), ("empty", 40), ("length", 40), ("stop", 80)):
        assert abs(first.count(outcome) - expected) <= 20, (outcome, first.count(outcome))


async def test_a_truncated_answer_is_half_the_answer() -> None:
    full = await instant().complete(ask())
    cut = await instant(truncate_rate=1).complete(ask())
    assert cut.finish_reason == "length"
    assert cut.text == full.text[: len(full.text) // 2]
    empty = await instant(empty_rate=1).complete(ask())
    assert empty == Completion(
        "", (), attrs.evolve(full.usage, completion_tokens=0), "stop", "sim-small"
    )


async def test_a_failing_stream_fails_at_its_first_chunk() -> None:
    provider = instant(error_rate=1)
    with pytest.raises(ProviderHTTPError):
        await collect(provider.stream(ask()))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"latency": -1}, "latency"),
        ({"latency": float("inf")}, "latency"),
        ({"tokens_per_second": 0}, "tokens_per_second"),
        ({"seed": -1}, "seed"),
        ({"words": (5, 2)}, "words"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"tool_script": 3}, "tool_script"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": 0.6, "empty_rate": 0.6}, "error_rate + empty_rate + truncate_rate"),
        ({"fail_first": -1}, "fail_first"),
        ({"error_status": 200}, "error_status"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        SimulatedProvider(**options)
    assert caught.value.field == field


async def test_simulated_models_have_prices() -> None:
    prices = PriceTable.default()
    completion = await instant().complete(ask())
    assert prices.completion_cost(completion) > 0
    large = await instant().complete(attrs.evolve(ask(), model="sim-large"))
    assert prices.cost("sim-large", large.usage) > prices.cost("sim-small", large.usage)
