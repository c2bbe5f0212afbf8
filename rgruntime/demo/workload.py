"""A simulated agent platform, run through the real client on the embedded runtime.

Four agents answer goals through the offline :class:`~rgruntime.providers.SimulatedProvider`
(real latency, token counts and prices; no network):

- two support bots (``support_eu``, ``support_us``) configured alike, so their identical model
  prompts share the ``model`` layer even though their answers are cached apart;
- a research agent whose model calls a ``web_search`` tool before answering;
- an analyst on a larger, slower, dearer model.

The support bots cache by meaning too (semantic caching, with the ``semantic`` extra, in its
static mode at the similarity 0.91): a reworded goal is answered from the cache when it means the
same.

The traffic mixes what real users send: popular goals asked again and again (Zipf-distributed),
reworded variants of them (a few common phrasings each), brand-new goals, and multi-turn sessions
following common flows. The report shows, per layer, the lookups, the hit rate and what the hits
saved in tokens, dollars and work (hits times the layer's measured mean load time, summed over
requests: concurrent requests overlap, so it is work avoided, not wall-clock time).

A conversation whose session does not fit in the session layer's budget (a small ``max_size``:
sessions are never evicted for space) is refused and counted, and the run goes on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs
import sniffio

from rgruntime.agents.client import ResonantGenesis
from rgruntime.agents.execution import ExecutionResult
from rgruntime.agents.sessions import SessionCapacityError
from rgruntime.extras import missing_packages
from rgruntime.providers import CompletionRequest, SimulatedProvider

__all__ = ["DemoReport", "LayerReport", "WorkloadSettings", "run_workload"]

_TOPICS = (
    "business hours", "password reset", "return policy", "shipping times", "invoice copy",
    "plan upgrade", "refund status", "account deletion", "two-factor login", "API limits",
    "data export", "team seats", "billing address", "trial extension", "SSO setup",
    "webhook retries", "outage status", "pricing tiers", "GDPR request", "mobile app sync",
)  # fmt: skip
_TEMPLATES = (
    "What are your {}?",
    "How do I handle {}?",
    "Explain {} in two sentences.",
    "Summarize the latest on {}.",
)
_REWORDINGS = ("Quick question: {}", "{} Thanks!", "Hi, {}")
#: The support bots' static similarity threshold (rgruntime.semantic's DEFAULT_THRESHOLD, which
#: this module cannot import: the semantic extra is optional).
DEFAULT_SIMILARITY_THRESHOLD = 0.91
_FLOWS = (
    ("I cannot log in.", "I tried resetting my password.", "The email never arrived."),
    ("I want to upgrade.", "What does the next tier cost?", "Can I pay yearly?"),
    ("Where is my order?", "It has been a week.", "Can you refund it?"),
)


@attrs.frozen(kw_only=True)
class WorkloadSettings:
    """What the demo runs. Latencies are seconds, multiplied by ``latency_scale``."""

    requests: int = 3000
    concurrency: int = 32
    seed: int = 0
    latency_scale: float = 1.0
    model_latency: float = 0.6
    tool_latency: float = 0.3
    reworded_share: float = 0.15
    new_share: float = 0.10
    session_share: float = 0.20
    max_size: str = "64MB"
    #: Semantic caching for the support bots: None turns it on when the extra is installed.
    semantic: bool | None = None
    #: The client's ``cache_backend`` (the caching guide's dicts); None: the embedded cache.
    cache_backend: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen(kw_only=True)
class LayerReport:
    name: str
    requests: int
    hits: int
    hit_rate: float
    tokens_saved: int
    cost_saved: float
    time_saved: float


@attrs.frozen(kw_only=True)
class DemoReport:
    backend: str
    requests: int
    model_calls: int
    elapsed: float
    tokens_saved: int
    cost_saved: float
    layers: tuple[LayerReport, ...]
    #: Whether the support bots cached by meaning, and how many answers matched that way.
    semantic: bool = False
    semantic_hits: int = 0
    #: Conversations refused because their session did not fit the session layer's budget,
    #: and the requests they would have made.
    sessions_refused: int = 0
    requests_refused: int = 0
    latency_scale: float = 1.0
    #: Requests answered without a model call, and how many of those were answers this process
    #: had not computed itself: computed by another process on the same store.
    answered_from_cache: int = 0
    from_other_processes: int = 0


@attrs.frozen
class _Single:
    agent: str
    goal: str


@attrs.frozen
class _Conversation:
    agent: str
    goals: tuple[str, ...]


def _zipf_index(rng: random.Random, population: int, skew: float = 1.2) -> int:
    """An index in [0, population) with Zipf-like popularity (index 0 the most popular)."""
    # Inverse-CDF sampling of a truncated power law: cheap and good enough for a demo.
    return min(population - 1, int(population ** (rng.random() ** skew)) - 1)


def _plan(settings: WorkloadSettings) -> list[_Single | _Conversation]:
    """The requests, decided up front from the seed, so a run is reproducible."""
    rng = random.Random(settings.seed)
    goals = [template.format(topic) for topic in _TOPICS for template in _TEMPLATES]
    rng.shuffle(goals)
    agents = ("support_eu", "support_us", "research", "analyst")
    plan: list[_Single | _Conversation] = []
    planned = 0
    while planned < settings.requests:
        agent = rng.choice(agents)
        kind = rng.random()
        if kind < settings.session_share:
            flow = rng.choice(_FLOWS)
            turns = flow[: min(len(flow), settings.requests - planned)]
            plan.append(_Conversation(agent, turns))
            planned += len(turns)
            continue
        kind -= settings.session_share
        goal = goals[_zipf_index(rng, len(goals))]
        if kind < settings.new_share:
            goal = f"{goal} (ticket {planned})"
        elif kind < settings.new_share + settings.reworded_share:
            goal = rng.choice(_REWORDINGS).format(goal)
        plan.append(_Single(agent, goal))
        planned += 1
    return plan


def _layer_reports(client: ResonantGenesis) -> list[LayerReport]:
    savings = client.cache.get_savings("1d")
    stats = client.cache.get_stats()
    layers = []
    for name in ("response", "model", "session", "tool", "memory"):
        layer = stats.layers[name]
        saved = savings.layers.get(name)
        layers.append(
            LayerReport(
                name=name,
                requests=layer.requests,
                hits=layer.hits,
                hit_rate=layer.hit_rate,
                tokens_saved=saved.tokens_saved if saved else 0,
                cost_saved=saved.cost_saved if saved else 0.0,
                time_saved=layer.hits * layer.average_load_time,
            )
        )
    return layers


def _search_query(request: CompletionRequest) -> dict[str, str]:
    return {"query": request.messages[-1].content or ""}


async def run_workload(
    settings: WorkloadSettings, *, progress: Callable[[int], None] | None = None
) -> DemoReport:
    """Run the workload on a fresh client; report per layer."""
    scale = settings.latency_scale
    provider = SimulatedProvider(
        latency=settings.model_latency * scale,
        seed=settings.seed,
        tool_script={"web_search": _search_query},
    )
    semantic = settings.semantic
    if semantic is None:
        semantic = not missing_packages("semantic")
    support_cache: dict[str, object] = {"response_cache": {"ttl": 86400}}
    if semantic:
        # The static mode: the default mode (max_error_rate) serves by meaning only once 100
        # judged outcomes in a row were right at a similarity (its probation), and answered 0
        # reworded goals by meaning in a 3,000-request run (7 December); docs/semantic.md
        # explains both.
        support_cache["semantic_cache"] = {
            "enabled": True,
            "similarity_threshold": DEFAULT_SIMILARITY_THRESHOLD,
        }
    async with ResonantGenesis(
        cache_config={"max_size": settings.max_size},
        provider=provider,
        cache_backend=None if settings.cache_backend is None else dict(settings.cache_backend),
    ) as client:
        await _create_agents(client, settings, support_cache)
        limiter = anyio.CapacityLimiter(settings.concurrency)
        counts = {
            "semantic_hits": 0,
            "sessions_refused": 0,
            "requests_refused": 0,
            "answered_from_cache": 0,
            "from_other_processes": 0,
        }
        # The answers this process computed: an exact response hit under any other key was
        # computed by another process sharing the store. (A model-layer hit may come from a
        # sibling agent in this process, a semantic one from another goal: neither is counted.)
        computed: set[str | None] = set()

        def done(result: ExecutionResult | None, requests: int = 1) -> None:
            if result is not None:
                counts["semantic_hits"] += result.match == "semantic"
                if not result.cached:
                    computed.add(result.cache_key)
                else:
                    counts["answered_from_cache"] += 1
                    counts["from_other_processes"] += (
                        result.layer == "response"
                        and result.match == "exact"
                        and result.cache_key not in computed
                    )
            if progress is not None:
                progress(requests)

        async def single(request: _Single) -> None:
            async with limiter:
                result = await client.sessions.execute(agent_id=request.agent, goal=request.goal)
            done(result)

        async def conversation(request: _Conversation) -> None:
            async with limiter:
                answered = 0
                try:
                    session = await client.sessions.create(request.agent)
                    for goal in request.goals:
                        result = await client.sessions.execute(
                            agent_id=request.agent, goal=goal, session_id=session.id
                        )
                        answered += 1
                        done(result)
                except SessionCapacityError:
                    # The session layer's budget is full of live sessions (never evicted for
                    # space): this conversation cannot be kept; the others go on.
                    counts["sessions_refused"] += 1
                    counts["requests_refused"] += len(request.goals) - answered
                    done(None, len(request.goals) - answered)

        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            for request in _plan(settings):
                if isinstance(request, _Single):
                    group.start_soon(single, request)
                else:
                    group.start_soon(conversation, request)
        elapsed = anyio.current_time() - started

        savings = client.cache.get_savings("1d")
        layers = _layer_reports(client)
        return DemoReport(
            backend=sniffio.current_async_library(),
            requests=settings.requests,
            model_calls=provider.calls,
            elapsed=elapsed,
            tokens_saved=savings.tokens_saved,
            cost_saved=savings.cost_saved,
            layers=tuple(layers),
            semantic=semantic,
            latency_scale=settings.latency_scale,
            **counts,
        )


async def _create_agents(
    client: ResonantGenesis, settings: WorkloadSettings, support_cache: dict[str, object]
) -> None:
    """Two support bots configured alike, a research agent with a web search, an analyst."""
    scale = settings.latency_scale
    support_prompt = "You are ACME's support assistant. Answer briefly and kindly."
    for agent_id in ("support_eu", "support_us"):
        await client.agents.create(
            "Support Bot",
            agent_id=agent_id,
            model="sim-small",
            system_prompt=support_prompt,
            cache_config=support_cache,
        )

    async def web_search(query: str) -> dict[str, list[str]]:
        """Search the web (simulated)."""
        await anyio.sleep(settings.tool_latency * scale)
        return {"results": [f"result about {query[:40]}"]}

    client.tools.register(web_search)
    await client.agents.create(
        "Research Agent", agent_id="research", model="sim-large", tools=["web_search"]
    )
    await client.agents.create(
        "Analyst", agent_id="analyst", model="sim-large", system_prompt="You analyse data."
    )
