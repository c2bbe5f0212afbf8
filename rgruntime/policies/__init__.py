"""Eviction policies: pure, synchronous data structures that a layer's actor drives.

=========  ====================================================================================
strategy   policy
=========  ====================================================================================
``lru``    :class:`LRUPolicy`: exact least recently used
``lfu``    :class:`LFUPolicy`: W-TinyLFU (frequency sketch with aging, admission, adaptive window)
``ttl``    :class:`TTLPolicy`: nearest deadline first
``tiered`` :class:`TieredPolicy`: hot/warm/cold tiers with their own sizes and TTLs
``cost``   :class:`CostAwarePolicy`: GreedyDual-Size-Frequency, for entries with a miss cost
=========  ====================================================================================

See ``docs/policies.md`` for measurements and for when to pick which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from rgruntime.errors import ConfigError
from rgruntime.policies.base import EvictionPolicy
from rgruntime.policies.cost import CostAwarePolicy
from rgruntime.policies.lfu import LFUPolicy
from rgruntime.policies.lru import LRUPolicy
from rgruntime.policies.tiered import DEFAULT_TIERS, Tier, TieredPolicy, parse_tiers
from rgruntime.policies.ttl import TTLPolicy

__all__ = [
    "DEFAULT_TIERS",
    "POLICIES",
    "STRATEGY_OPTIONS",
    "CostAwarePolicy",
    "EvictionPolicy",
    "LFUPolicy",
    "LRUPolicy",
    "TTLPolicy",
    "Tier",
    "TieredPolicy",
    "make_policy",
    "parse_tiers",
]

#: Strategy name (as in ``cache_config["strategy"]``) to policy class. Every class takes
#: ``max_size`` and ``max_entries`` (the layer's bounds), and the options below.
POLICIES: Final[Mapping[str, Callable[..., EvictionPolicy[Any]]]] = {
    "lru": LRUPolicy,
    "lfu": LFUPolicy,
    "ttl": TTLPolicy,
    "tiered": TieredPolicy,
    "cost": CostAwarePolicy,
}

#: The options each strategy accepts besides ``max_size`` and ``max_entries``.
STRATEGY_OPTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "lru": (),
    "lfu": ("window", "adaptive"),
    "ttl": (),
    "tiered": ("tiers", "track_moves", "window", "adaptive"),
    "cost": (),
}


def make_policy(
    strategy: str,
    *,
    max_size: int | None = None,
    max_entries: int | None = None,
    **options: Any,
) -> EvictionPolicy[str]:
    """A new policy for ``strategy``, sized for a layer bounded by ``max_size`` bytes and/or
    ``max_entries`` entries (either may be None).

    ``make_policy("tiered", tiers=[{"name": "hot", "size": "10MB", "ttl": 300}, ...],
    max_size=260_000_000)``. An unknown strategy or option, or a bad tier, raises
    :class:`~rgruntime.errors.ConfigError`.
    """
    factory = POLICIES.get(strategy)
    if factory is None:
        raise ConfigError("strategy", strategy, f"one of {', '.join(map(repr, POLICIES))}")
    accepted = STRATEGY_OPTIONS[strategy]
    for name, value in options.items():
        if name not in accepted:
            raise ConfigError(
                f"{strategy}.{name}",
                value,
                f"only the options {', '.join(accepted)}" if accepted else "no option",
            )
    policy: EvictionPolicy[str] = factory(max_size=max_size, max_entries=max_entries, **options)
    return policy
