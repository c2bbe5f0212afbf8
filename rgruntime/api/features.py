"""Routes served by features of "Operations, part 1" (issue 15): metrics over time, analysis,
diagnosis and alerts. Each is looked up on the client by name when a request comes; where this
build has none the route answers ``501`` naming the missing method.

This table is the one place to change when those methods land (or change names).
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from rgruntime.api.problems import ApiError

__all__ = ["FEATURES", "call_feature", "has_feature"]

#: Route feature -> (client namespace, method).
FEATURES: Final[dict[str, tuple[str, str]]] = {
    "metrics": ("cache", "get_metrics"),
    "analyze": ("cache", "analyze"),
    "diagnose": ("cache", "diagnose"),
    "alerts": ("alerts", "list"),
    "memory": ("cache", "memory_usage"),
}


def _method(client: object, feature: str) -> Any:
    namespace_name, method_name = FEATURES[feature]
    namespace = getattr(client, namespace_name, None)
    return getattr(namespace, method_name, None) if namespace is not None else None


def has_feature(client: object, feature: str) -> bool:
    return callable(_method(client, feature))


async def call_feature(client: object, feature: str, **arguments: Any) -> Any:
    """``client.<namespace>.<method>(**arguments)``, awaited if it is async; 501 if absent."""
    method = _method(client, feature)
    if not callable(method):
        namespace_name, method_name = FEATURES[feature]
        raise ApiError(
            501,
            "not_implemented",
            f"{feature}: client.{namespace_name}.{method_name}() is not in this build "
            "(metrics, analysis, diagnosis and alerts come with 'Operations, part 1')",
        )
    result = method(**arguments)
    return await result if inspect.isawaitable(result) else result
