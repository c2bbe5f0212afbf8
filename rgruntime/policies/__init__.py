"""Eviction policies: pure, synchronous data structures that a layer's actor drives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rgruntime.policies.base import EvictionPolicy
from rgruntime.policies.lru import LRUPolicy
from rgruntime.policies.ttl import TTLPolicy

__all__ = ["POLICIES", "EvictionPolicy", "LRUPolicy", "TTLPolicy", "make_policy"]

#: Strategy name (as in ``cache_config["strategy"]``) to policy factory.
POLICIES: Final[dict[str, Callable[[], EvictionPolicy[str]]]] = {
    "lru": LRUPolicy,
    "ttl": TTLPolicy,
}


def make_policy(strategy: str) -> EvictionPolicy[str]:
    """A new policy for ``strategy`` (validated by the config, so a bad name is a bug here)."""
    return POLICIES[strategy]()
