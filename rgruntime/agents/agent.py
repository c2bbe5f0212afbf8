"""Agents: what runs for a goal (model, temperature, tools, system prompt, runner) and how its
answers are cached. ``client.agents`` is the :class:`AgentRegistry`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs

from rgruntime.agents.arguments import check_id, shown
from rgruntime.agents.config import (
    AgentCacheConfig,
    MemoryConfig,
    ToolCacheOverride,
    parse_tool_cache_config,
)
from rgruntime.errors import ConfigError, InvalidArgumentError, RGRuntimeError
from rgruntime.providers import Usage

__all__ = [
    "Agent",
    "AgentNotFoundError",
    "AgentOutput",
    "AgentRegistry",
    "AnyRunner",
    "merged_cache_config",
]

#: What an agent keeps as its runner. Its exact type, :data:`rgruntime.agents.runner.Runner`,
#: names the ``RunContext`` it is given, which is defined beside the loop that builds it; this
#: module, which that one imports, only needs to know that a runner is an async callable.
AnyRunner = Callable[[Any], Awaitable["str | AgentOutput"]]


@attrs.frozen(kw_only=True)
class AgentOutput:
    """A runner's answer. ``usage`` is for tokens the runner spent outside ``context.complete``."""

    text: str
    finish_reason: str | None = "stop"
    usage: Usage = attrs.field(factory=Usage)


class AgentNotFoundError(RGRuntimeError, LookupError):
    """No agent has this id."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        super().__init__(f"no agent with id {shown(agent_id)}")


def _temperature(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise InvalidArgumentError("temperature", value, "a number from 0 to 2")
    return float(value)


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(field, value, "a non-empty string")
    return value


def _name(value: object) -> str:
    return _text("name", value)


def _model(value: object) -> str:
    return _text("model", value)


def _tools(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidArgumentError("tools", value, "a list of tool names such as ['web_search']")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("tools", name, "tool names (non-empty strings)")
    return names


@attrs.frozen(kw_only=True)
class Agent:
    """One agent. Immutable: ``client.agents.update`` makes a new version."""

    id: str
    name: str = attrs.field(converter=_name)
    version: int = 1
    model: str = attrs.field(converter=_model)
    temperature: float = attrs.field(default=0.0, converter=_temperature)
    tools: tuple[str, ...] = attrs.field(default=(), converter=_tools)
    system_prompt: str | None = None
    cache_config: AgentCacheConfig = attrs.field(factory=AgentCacheConfig)
    memory_config: MemoryConfig = attrs.field(factory=MemoryConfig)
    #: Per-tool overrides of the tools' own cache settings, for this agent.
    tool_cache_config: Mapping[str, ToolCacheOverride] = attrs.field(factory=dict, hash=False)
    runner: AnyRunner | None = attrs.field(default=None, eq=False, repr=False)
    created_at: float = attrs.field(factory=time.time, eq=False)
    updated_at: float = attrs.field(factory=time.time, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise InvalidArgumentError("system_prompt", self.system_prompt, "a string or None")
        if self.runner is not None and not callable(self.runner):
            raise InvalidArgumentError("runner", self.runner, "an async callable or None")


def merged_cache_config(
    current: AgentCacheConfig, changes: Mapping[str, Any] | AgentCacheConfig | None
) -> Mapping[str, Any] | AgentCacheConfig | None:
    """``changes`` (a partial ``cache_config`` dict) on top of ``current``, in the dict form.

    Keys not given keep their value; nested dicts (``response_cache``, ``semantic_cache``,
    ``auto_invalidate``) merge key by key. ``response_ttl`` sets ``response_cache.ttl`` (giving
    both, they must agree). The result is validated as a whole by the caller; anything but a
    dict (an :class:`AgentCacheConfig`, ``None`` for the defaults) replaces the config.
    """
    if not isinstance(changes, Mapping):
        return changes
    merged: dict[str, Any] = attrs.asdict(current, recurse=True)
    if "response_ttl" in changes:
        # The alias replaces the TTL: the old response_cache.ttl must not contradict it.
        merged["response_cache"].pop("ttl", None)
    return _merged(merged, changes)


def merged_memory_config(
    current: MemoryConfig, changes: Mapping[str, Any] | MemoryConfig | None
) -> Mapping[str, Any] | MemoryConfig | None:
    """``changes`` (a partial ``memory_config`` dict) on top of ``current``, in the dict form:
    ``{"cache": {"ttl": 60}}`` changes the TTL and keeps the other cache settings and the agent's
    ``search``. Anything but a dict replaces the config, as for :func:`merged_cache_config`."""
    if not isinstance(changes, Mapping):
        return changes
    return _merged({"cache": attrs.asdict(current.cache), "search": current.search}, changes)


def _merged(current: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` on top of ``current``: nested dicts merge key by key, other values replace."""
    merged = dict(current)
    for key, value in changes.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, Mapping):
            merged[key] = {**base, **value}
        else:
            merged[key] = value  # a scalar, or a bad value left for validation to name
    return merged


_UPDATABLE = (
    "name",
    "model",
    "temperature",
    "tools",
    "system_prompt",
    "cache_config",
    "runner",
    "memory_config",
    "tool_cache_config",
)


class AgentRegistry:
    """``client.agents``: create, get, list, update and delete agents."""

    def __init__(
        self,
        default_model: str,
        *,
        on_update: Callable[[Agent, Agent], Awaitable[None]] | None = None,
        on_delete: Callable[[Agent], Awaitable[None]] | None = None,
        on_create: Callable[[Agent], Awaitable[None]] | None = None,
        max_response_ttl: float | None = None,
        max_tool_ttl: float | None = None,
        check: Callable[[Agent], None] | None = None,
    ) -> None:
        self._agents: dict[str, Agent] = {}
        # What only the client can check (registered tools, embedders that can run): raises
        # ConfigError before the agent (or its new version) is stored.
        self._check = check
        self._max_response_ttl = max_response_ttl
        self._max_tool_ttl = max_tool_ttl
        self._default_model = default_model
        self._on_update = on_update
        self._on_delete = on_delete
        self._on_create = on_create

    async def create(
        self,
        name: str,
        *,
        model: str | None = None,
        temperature: float = 0.0,
        tools: Iterable[str] = (),
        system_prompt: str | None = None,
        cache_config: Mapping[str, Any] | AgentCacheConfig | None = None,
        runner: AnyRunner | None = None,
        agent_id: str | None = None,
        memory_config: Mapping[str, Any] | MemoryConfig | None = None,
        tool_cache_config: Mapping[str, Any] | None = None,
    ) -> Agent:
        """A new agent (version 1). ``agent_id`` defaults to a fresh ``agent_<hex>``."""
        if agent_id is None:
            agent_id = f"agent_{secrets.token_hex(6)}"
        elif not isinstance(agent_id, str) or not agent_id.isidentifier():
            raise InvalidArgumentError("agent_id", agent_id, "an identifier such as 'agent_123'")
        if agent_id in self._agents:
            raise InvalidArgumentError("agent_id", agent_id, "an id no other agent has")
        agent = Agent(
            id=agent_id,
            name=name,
            model=model or self._default_model,
            temperature=temperature,
            tools=tools,
            system_prompt=system_prompt,
            cache_config=self._cache_config(cache_config),
            runner=runner,
            memory_config=MemoryConfig.from_mapping(memory_config),
            tool_cache_config=parse_tool_cache_config(
                tool_cache_config, _tools(tools), max_ttl=self._max_tool_ttl
            ),
        )
        if self._check is not None:
            self._check(agent)
        self._agents[agent.id] = agent
        if self._on_create is not None:
            await self._on_create(agent)
        return agent

    def _cache_config(
        self, options: Mapping[str, Any] | AgentCacheConfig | None
    ) -> AgentCacheConfig:
        config = AgentCacheConfig.from_mapping(options)
        ttl, longest = config.response_ttl, self._max_response_ttl
        if ttl is not None and longest is not None and ttl > longest:
            # Refused here rather than on every execute() that would try to store the answer.
            raise ConfigError(
                "cache_config.response_cache.ttl",
                ttl,
                f"at most the response layer's max_ttl ({longest:g} s)",
            )
        return config

    def get(self, agent_id: str) -> Agent:
        """The agent ``agent_id``; :class:`AgentNotFoundError` if there is none."""
        check_id("agent_id", agent_id, "agent_123")
        try:
            return self._agents[agent_id]
        except KeyError:
            raise AgentNotFoundError(agent_id) from None

    def list(self) -> list[Agent]:
        return list(self._agents.values())

    async def update(self, agent_id: str, **changes: Any) -> Agent:
        """A new version of the agent with ``changes`` (the same keywords as :meth:`create`).

        The version is part of the response cache key, so answers cached for the old version
        are never served for the new one. A ``cache_config`` or ``memory_config`` dict is
        *merged* into the agent's (see :func:`merged_cache_config`):
        ``cache_config={"auto_invalidate": {...}}`` changes that and keeps the rest; an
        :class:`AgentCacheConfig` or :class:`MemoryConfig` replaces it whole.
        """
        old = self.get(agent_id)
        for key, value in changes.items():
            if key not in _UPDATABLE:
                raise InvalidArgumentError(key, value, f"one of {', '.join(_UPDATABLE)}")
        if "cache_config" in changes:
            changes["cache_config"] = self._cache_config(
                merged_cache_config(old.cache_config, changes["cache_config"])
            )
        if "memory_config" in changes:
            changes["memory_config"] = MemoryConfig.from_mapping(
                merged_memory_config(old.memory_config, changes["memory_config"])
            )
        if "tools" in changes or "tool_cache_config" in changes:
            # Checked against the tools the agent will have.
            changes["tool_cache_config"] = parse_tool_cache_config(
                changes.get("tool_cache_config", old.tool_cache_config),
                _tools(changes.get("tools", old.tools)),
                max_ttl=self._max_tool_ttl,
            )
        new = attrs.evolve(old, version=old.version + 1, updated_at=time.time(), **changes)
        if self._check is not None:
            self._check(new)
        self._agents[agent_id] = new
        if self._on_update is not None:
            await self._on_update(old, new)
        return new

    async def delete(self, agent_id: str) -> bool:
        """Forget the agent (and, through the client, its cached answers); True if it existed."""
        check_id("agent_id", agent_id, "agent_123")
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return False
        if self._on_delete is not None:
            await self._on_delete(agent)
        return True
