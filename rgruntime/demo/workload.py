"""A simulated agent platform's cache traffic, run through a real runtime.

Each request is what an agent platform does for one goal: look up the final answer in the
``response`` layer and, on a miss, produce it: recall memories (``memory`` layer), call tools
(``tool`` layer), call the model (``model`` layer), and keep the session state (``session``
layer). Every producer is a ``get_or_load`` whose loader sleeps for a realistic latency; the
report's "time saved" is each layer's hits times its measured mean load time. Keys follow
Zipf-like popularity (a few goals are asked often, most rarely), which is what makes caching pay
off in practice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import attrs

from rgruntime.runtime.layer import Layer
from rgruntime.runtime.runtime import Runtime

__all__ = ["DemoReport", "LayerReport", "WorkloadSettings", "run_workload"]


@attrs.frozen(kw_only=True)
class WorkloadSettings:
    """What the demo runs. Latencies are seconds per loader call, before ``latency_scale``."""

    requests: int = 2000
    concurrency: int = 32
    agents: int = 4
    goals_per_agent: int = 400
    sessions: int = 200
    seed: int = 0
    latency_scale: float = 1.0
    model_latency: float = 0.400
    tool_latency: float = 0.080
    memory_latency: float = 0.020
    session_latency: float = 0.010


@attrs.frozen(kw_only=True)
class LayerReport:
    name: str
    requests: int
    hits: int
    hit_rate: float
    loads: int
    time_saved: float
    entries: int


@attrs.frozen(kw_only=True)
class DemoReport:
    backend: str
    requests: int
    elapsed: float
    layers: tuple[LayerReport, ...]


def _zipf_choice(rng: random.Random, population: int, skew: float = 1.1) -> int:
    """An index in [0, population) with Zipf-like popularity (index 0 the most popular)."""
    # Inverse-CDF sampling of a truncated power law: cheap and good enough for a demo.
    u = rng.random()
    return min(population - 1, int(population ** (u**skew)) - 1)


async def run_workload(
    runtime: Runtime,
    settings: WorkloadSettings,
    *,
    progress: Callable[[int], None] | None = None,
) -> DemoReport:
    """Run ``settings.requests`` simulated requests through ``runtime``; report per layer."""
    rng = random.Random(settings.seed)
    plans = [_plan_request(rng, settings) for _ in range(settings.requests)]
    limiter = anyio.CapacityLimiter(settings.concurrency)
    response, model, tool, memory, session = (
        runtime.layer(name) for name in ("response", "model", "tool", "memory", "session")
    )
    scale = settings.latency_scale

    async def loader(value: Any, latency: float) -> Any:
        await anyio.sleep(latency * scale)
        return value

    async def produce_answer(plan: _Plan) -> str:
        await session.get_or_load(
            plan.session, partial(loader, {"turns": 0}, settings.session_latency)
        )
        for query in plan.memory_queries:
            await memory.get_or_load(query, partial(loader, [query], settings.memory_latency))
        for call in plan.tool_calls:
            await tool.get_or_load(call, partial(loader, {"result": call}, settings.tool_latency))
        answer = partial(loader, f"answer {plan.goal}", settings.model_latency)
        return str(await model.get_or_load(plan.model_key, answer))

    async def one_request(plan: _Plan) -> None:
        async with limiter:
            await response.get_or_load(plan.goal, lambda: produce_answer(plan))
        if progress is not None:
            progress(1)

    started = anyio.current_time()
    async with anyio.create_task_group() as group:
        for plan in plans:
            group.start_soon(one_request, plan)
    elapsed = anyio.current_time() - started

    layers: list[Layer] = [response, model, tool, memory, session]
    return DemoReport(
        backend=_backend_name(),
        requests=settings.requests,
        elapsed=elapsed,
        layers=tuple(_layer_report(layer) for layer in layers),
    )


@attrs.frozen
class _Plan:
    goal: str
    model_key: str
    session: str
    tool_calls: tuple[str, ...]
    memory_queries: tuple[str, ...]


def _plan_request(rng: random.Random, settings: WorkloadSettings) -> _Plan:
    agent = rng.randrange(settings.agents)
    goal = _zipf_choice(rng, settings.goals_per_agent)
    # Reworded goals miss the response cache but reach the same model prompt half the time.
    reworded = rng.random() < 0.15
    goal_key = f"agent-{agent}:goal-{goal}" + (f":v{rng.randrange(1000)}" if reworded else "")
    tools = tuple(f"web_search:q-{_zipf_choice(rng, 300)}" for _ in range(rng.choice((0, 1, 1, 2))))
    memories = tuple(f"agent-{agent}:mem-{_zipf_choice(rng, 100)}" for _ in range(2))
    return _Plan(
        goal=goal_key,
        model_key=f"sim-model:agent-{agent}:goal-{goal}",
        session=f"session-{_zipf_choice(rng, settings.sessions)}",
        tool_calls=tools,
        memory_queries=memories,
    )


def _layer_report(layer: Layer) -> LayerReport:
    """The layer's counters; time saved is its hits times its measured mean load time."""
    stats = layer.stats()
    return LayerReport(
        name=layer.name,
        requests=stats.requests,
        hits=stats.hits,
        hit_rate=stats.hit_rate,
        loads=stats.load_successes + stats.load_failures,
        time_saved=stats.hits * stats.average_load_time,
        entries=stats.entries,
    )


def _backend_name() -> str:
    import sniffio

    return sniffio.current_async_library()
