"""The response cache key: what changes it, what does not, and the tags of a cached answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import attrs
import pytest

from rgruntime import Agent, ResonantGenesis
from rgruntime.agents.execution import response_key
from rgruntime.providers import Message, SimulatedProvider, ToolSpec

BASE_AGENT = Agent(
    id="agent_123",
    name="Research Agent",
    model="sim-small",
    temperature=0.2,
    tools=("web_search",),
    system_prompt="You research carefully.",
)
GOAL = "Summarize the latest cache research"
SCHEMAS = [ToolSpec("web_search", "Search the web").to_dict()]
HISTORY = (Message("user", "Hi"), Message("assistant", "Hello! How can I help?"))


def key_of(
    agent: Agent = BASE_AGENT,
    goal: str = GOAL,
    schemas: list[dict[str, object]] = SCHEMAS,
    history: tuple[Message, ...] = HISTORY,
) -> str:
    return response_key(agent, goal, schemas, history)


VARIANTS = {
    "agent id": lambda: key_of(attrs.evolve(BASE_AGENT, id="agent_456")),
    "goal": lambda: key_of(goal="Summarize the latest cache research!"),
    "model": lambda: key_of(attrs.evolve(BASE_AGENT, model="sim-large")),
    "temperature": lambda: key_of(attrs.evolve(BASE_AGENT, temperature=0.3)),
    "enabled tools": lambda: key_of(attrs.evolve(BASE_AGENT, tools=("web_search", "code_exec"))),
    "agent version": lambda: key_of(attrs.evolve(BASE_AGENT, version=2)),
    "system prompt": lambda: key_of(attrs.evolve(BASE_AGENT, system_prompt="Be brief.")),
    "no system prompt": lambda: key_of(attrs.evolve(BASE_AGENT, system_prompt=None)),
    "tool schema": lambda: key_of(
        schemas=[ToolSpec("web_search", "Search", {"type": "object"}).to_dict()]
    ),
    "session history": lambda: key_of(history=HISTORY[:1]),
    "no history": lambda: key_of(history=()),
}


def test_the_key_is_deterministic_and_readable() -> None:
    assert key_of() == key_of()
    assert key_of().startswith("response:agent_123:k1:")


@pytest.mark.parametrize("what", sorted(VARIANTS))
def test_the_key_changes_with(what: str) -> None:
    assert VARIANTS[what]() != key_of()


def test_every_variant_has_a_key_of_its_own() -> None:
    keys = [key_of(), *(variant() for variant in VARIANTS.values())]
    assert len(set(keys)) == len(keys)


def test_settings_that_do_not_shape_the_answer_leave_the_key_alone() -> None:
    renamed = attrs.evolve(BASE_AGENT, name="Another name", created_at=0.0)
    assert key_of(renamed) == key_of()
    # Integer and float temperatures are the same setting.
    assert key_of(attrs.evolve(BASE_AGENT, temperature=1)) == key_of(
        attrs.evolve(BASE_AGENT, temperature=1.0)
    )


def test_the_key_is_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        """
        import json, sys
        from rgruntime import Agent
        from rgruntime.agents.execution import response_key
        from rgruntime.providers import Message, ToolSpec

        agent = Agent(id="agent_123", name="Research Agent", model="sim-small",
                      temperature=0.2, tools=("web_search",),
                      system_prompt="You research carefully.")
        schemas = [ToolSpec("web_search", "Search the web").to_dict()]
        history = (Message("user", "Hi"), Message("assistant", "Hello! How can I help?"))
        print(json.dumps(response_key(agent, sys.argv[1], schemas, history)))
        """
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    completed = subprocess.run(
        [sys.executable, "-c", script, GOAL],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        timeout=60,
    )
    assert json.loads(completed.stdout) == key_of()


# --- through the client --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_update_registering_a_tool_and_history_give_new_keys(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    async def placeholder(query):  # type: ignore[no-untyped-def]
        return query

    client.tools.register(placeholder, name="web_search", description="")
    agent = await client.agents.create(name="Research Agent", tools=["web_search"])
    first = await client.sessions.execute(agent_id=agent.id, goal=GOAL)

    async def web_search(query: str) -> str:
        """Search the web."""
        return f"results for {query}"

    client.tools.register(web_search)  # the tool's schema is now the function's
    with_schema = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    await client.agents.update(agent.id, system_prompt="Cite your sources.")
    updated = await client.sessions.execute(agent_id=agent.id, goal=GOAL)
    session = await client.sessions.create(agent.id)
    await client.sessions.execute(agent_id=agent.id, goal="Hi", session_id=session.id)
    in_session = await client.sessions.execute(agent_id=agent.id, goal=GOAL, session_id=session.id)

    keys = [first.cache_key, with_schema.cache_key, updated.cache_key, in_session.cache_key]
    assert len(set(keys)) == 4
    assert not any(result.cached for result in (with_schema, updated, in_session))


@pytest.mark.anyio
@pytest.mark.virtual_time
async def test_cache_tags_tag_the_answer(
    client: ResonantGenesis, provider: SimulatedProvider
) -> None:
    await client.agents.create(name="Catalog", agent_id="agent_123")
    # Tag cache entries for grouped invalidation
    result = await client.sessions.execute(
        agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
    )
    assert await client.cache.invalidate(tags=["catalog:shoes"]) == 0
    # Invalidate by tag: the answer and the model output written for it
    assert await client.cache.invalidate(tags=["products"]) == 2
    assert await client.cache.get(result.cache_key) is None
    again = await client.sessions.execute(
        agent_id="agent_123", goal="Get product info", cache_tags=["products", "catalog"]
    )
    assert again.layer != "response"


@pytest.mark.anyio
@pytest.mark.virtual_time
@pytest.mark.parametrize(
    ("invalidated", "removed"),
    [
        (["products"], {"phones", "laptops", "electronics"}),
        (["products:electronics"], {"phones", "laptops", "electronics"}),
        (["products:electronics:phones"], {"phones"}),
        (["products:elec"], set()),
        (["productsX"], set()),
    ],
)
async def test_hierarchical_tags(
    client: ResonantGenesis, invalidated: list[str], removed: set[str]
) -> None:
    agent = await client.agents.create(name="Catalog")
    # Use hierarchical tags
    tagged = {
        "phones": ["products", "products:electronics", "products:electronics:phones"],
        "laptops": ["products:electronics:laptops"],
        "electronics": ["products:electronics"],
    }
    keys = {}
    for goal, cache_tags in tagged.items():
        result = await client.sessions.execute(agent.id, f"List {goal}", cache_tags=cache_tags)
        keys[goal] = result.cache_key

    # Each answer and the model output written for it.
    assert await client.cache.invalidate(tags=invalidated) == 2 * len(removed)
    for goal, key in keys.items():
        assert (await client.cache.get(key) is None) == (goal in removed), goal
