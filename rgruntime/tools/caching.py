"""Caching a tool call: its settings, its key, and the call through a layer.

Used by the ``@cache`` decorator and by the agents' built-in loop (which applies an agent's
``tool_cache_config`` on top of a tool's own settings).

**The key** of a call is ``<name>:k1:<32 hex digits>``: the tool's name, readable, so that a glob
on it selects its results (``invalidate(pattern="weather_*")``), then a hash of the function's
module, the tool's version, the instance's cache scope (methods) and the values of the key
parameters (canonical JSON: ``{"b": 1, "a": 2}`` and ``{"a": 2, "b": 1}`` are one key).

**Context parameters** never enter the key: the first parameter of a method (``self``/``cls``),
parameters annotated with :class:`~rgruntime.RunContext` (or a subclass), and the parameters
named in ``skip_params`` (a request id, a logger, an HTTP client...).
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Literal, get_type_hints

import attrs

from rgruntime.errors import ConfigError, InvalidArgumentError, RuntimeClosedError
from rgruntime.keys import canonical, stable_key
from rgruntime.runtime.arguments import check_tags
from rgruntime.runtime.current import current_runtime
from rgruntime.runtime.dependencies import record_read, recording, taint_current
from rgruntime.units import parse_duration

if TYPE_CHECKING:
    from rgruntime.runtime.layer import Layer
    from rgruntime.runtime.runtime import Runtime

__all__ = [
    "STRATEGIES",
    "CallPlan",
    "NoRuntimeError",
    "ToolCacheSettings",
    "cached_call",
    "passthrough",
]

Strategy = Literal["exact", "semantic", "none"]

#: The tool cache strategies of the guide's table.
STRATEGIES: Final[tuple[Strategy, ...]] = ("exact", "semantic", "none")

#: Tags: a static list, or a callable of the call's (non-context) arguments returning one.
TagsOption = Iterable[str] | Callable[..., Iterable[str]] | None

_passthrough: ContextVar[bool] = ContextVar("rgruntime_tool_passthrough", default=False)


class NoRuntimeError(RuntimeClosedError):
    """A cached tool was called with no runtime open to cache it in (and no pass-through)."""


@contextlib.contextmanager
def passthrough() -> Iterator[None]:
    """Within this block, cached tools called with no runtime open just run (for unit tests).

    With a runtime open they still cache: pass-through only replaces the error.
    """
    token = _passthrough.set(True)
    try:
        yield
    finally:
        _passthrough.reset(token)


def _strategy(value: object, field: str) -> Strategy:
    for strategy in STRATEGIES:
        if value == strategy:
            return strategy
    raise ConfigError(field, value, f"one of {', '.join(map(repr, STRATEGIES))}")


def _names(value: object, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(field, value, "a list of parameter names such as ['location']")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(field, name, "parameter names (identifiers such as 'location')")
    return names


def _tags(value: object, field: str) -> TagsOption:
    if value is None or callable(value):
        return value
    try:
        return tuple(sorted(check_tags(value, field)))  # type: ignore[arg-type]
    except InvalidArgumentError as error:
        raise ConfigError(field, value, error.accepted) from None


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "True or False")
    return value


def _ttl(value: object, field: str) -> float | None:
    return None if value is None else parse_duration(value, field=field)


def _name(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise ConfigError(field, value, "a non-empty name without spaces, such as 'weather_api'")
    return value


def _version(value: object, field: str) -> str | int | None:
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise ConfigError(field, value, "a version number or string, such as 2 or '2024-06'")


def _threshold(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(field, value, "a cosine similarity between 0 and 1, such as 0.92")
    return float(value)


@attrs.frozen(kw_only=True)
class ToolCacheSettings:
    """How one tool's results are cached (the ``@cache`` options; every field validated).

    - ``enabled``: False runs the tool every time (as ``strategy="none"``);
    - ``ttl``: seconds or ``"5m"``; ``None``: the layer's default (``tool``: 5 minutes);
    - ``key_params``: the parameters that make the key (``None``: every non-context parameter);
    - ``skip_params``: more context parameters, never part of the key;
    - ``strategy``: ``exact`` (equal key parameters), ``semantic`` (a similar text parameter,
      through the layer's semantic index), ``none`` (no caching);
    - ``layer``: where results go (``tool`` by default; any layer of the runtime);
    - ``tags``: extra tags (a list, or a callable of the arguments returning one); every result
      is also tagged ``tool:<name>``;
    - ``cache_none``: cache a ``None`` result too (off: ``None`` often means "nothing yet");
    - ``name``: the readable start of the keys (default: the function's qualified name, or
      ``<Tool.name>.<method>`` for methods of a :class:`~rgruntime.tools.Tool`);
    - ``version``: part of the key; bump it when the tool's results change meaning;
    - ``passthrough``: with no runtime open, run the tool instead of raising NoRuntimeError;
    - ``similarity_threshold``, ``embedder``, ``semantic_param``: for ``strategy="semantic"``
      (``semantic_param``: the text parameter; default: the only ``str`` key parameter).
    """

    enabled: bool = True
    ttl: float | None = None
    key_params: tuple[str, ...] | None = None
    skip_params: tuple[str, ...] = ()
    strategy: Strategy = "exact"
    layer: str = "tool"
    tags: TagsOption = None
    cache_none: bool = False
    name: str | None = None
    version: str | int | None = None
    passthrough: bool = False
    similarity_threshold: float | None = None
    embedder: str = "minilm"
    semantic_param: str | None = None

    @classmethod
    def checked(cls, where: str = "cache", **options: Any) -> ToolCacheSettings:
        """Settings from keyword options, each validated (ConfigError names ``where.option``)."""
        parsers: Mapping[str, Callable[[object, str], Any]] = {
            "enabled": _flag,
            "ttl": _ttl,
            "key_params": _names,
            "skip_params": lambda value, field: _names(value, field) or (),
            "strategy": _strategy,
            "layer": lambda value, field: _name(value, field) or "tool",
            "tags": _tags,
            "cache_none": _flag,
            "name": _name,
            "version": _version,
            "passthrough": _flag,
            "similarity_threshold": _threshold,
            "embedder": lambda value, field: _name(value, field) or "minilm",
            "semantic_param": lambda value, field: (
                None if value is None else (_names([value], field) or (None,))[0]
            ),
        }
        parsed: dict[str, Any] = {}
        for option, value in options.items():
            parse = parsers.get(option)
            if parse is None:
                raise ConfigError(
                    f"{where}.{option}", value, f"a known option: {', '.join(parsers)}"
                )
            parsed[option] = parse(value, f"{where}.{option}")
        return cls(**parsed)

    def merged(self, where: str, **options: Any) -> ToolCacheSettings:
        """These settings with ``options`` (validated the same way) on top."""
        overrides = ToolCacheSettings.checked(where, **options)
        return attrs.evolve(self, **{option: getattr(overrides, option) for option in options})


def _is_context_annotation(annotation: Any) -> bool:
    from rgruntime.agents.runner import RunContext  # the agents import this module

    return inspect.isclass(annotation) and issubclass(annotation, RunContext)


def _readable(qualname: str) -> str:
    return re.sub(r"<locals>\.", "", qualname)


@attrs.frozen
class CallPlan:
    """A function's caching plan: which parameters make its keys, and how they are built."""

    function: Callable[..., Awaitable[Any]]
    settings: ToolCacheSettings
    signature: inspect.Signature
    key_params: tuple[str, ...]
    context_params: frozenset[str]
    method: bool
    where: str

    @classmethod
    def of(
        cls,
        function: Callable[..., Awaitable[Any]],
        settings: ToolCacheSettings,
        where: str = "cache",
        key_params_field: str = "key_params",
    ) -> CallPlan:
        """Check ``settings`` against ``function``'s signature."""
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        method = bool(parameters) and parameters[0].name in ("self", "cls")
        try:
            hints = get_type_hints(function)
        except Exception:  # unresolvable forward references: no annotation is a context type
            hints = {}
        context = {parameters[0].name} if method else set()
        context.update(
            name for name in signature.parameters if _is_context_annotation(hints.get(name))
        )
        for name in settings.skip_params:
            if name not in signature.parameters:
                raise ConfigError(
                    f"{where}.skip_params", name, _parameters_of(function, signature, context)
                )
        context.update(settings.skip_params)
        if settings.key_params is None:
            key_params = tuple(name for name in signature.parameters if name not in context)
        else:
            key_params = settings.key_params
            for name in key_params:
                if name not in signature.parameters or name in context:
                    raise ConfigError(
                        f"{where}.{key_params_field}",
                        name,
                        _parameters_of(function, signature, context),
                    )
        plan = cls(function, settings, signature, key_params, frozenset(context), method, where)
        if settings.strategy == "semantic":
            plan.semantic_param()  # refuse now a plan that cannot choose its text
        return plan

    def semantic_param(self) -> str:
        """The key parameter whose text is compared by meaning."""
        chosen = self.settings.semantic_param
        if chosen is not None:
            if chosen not in self.key_params:
                raise ConfigError(
                    f"{self.where}.semantic_param",
                    chosen,
                    f"one of the key parameters: {', '.join(self.key_params)}",
                )
            return chosen
        try:
            hints = get_type_hints(self.function)
        except Exception:
            hints = {}
        texts = [name for name in self.key_params if hints.get(name) is str]
        if len(texts) != 1:
            raise ConfigError(
                f"{self.where}.semantic_param",
                None,
                "the name of the text parameter to compare by meaning (needed when the key "
                f"parameters {list(self.key_params)} do not include exactly one annotated str)",
            )
        return texts[0]

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{self.function.__qualname__}(): {error}") from None
        bound.apply_defaults()
        return bound

    def name_for(self, bound: inspect.BoundArguments) -> str:
        if self.settings.name is not None:
            return self.settings.name
        if self.method:
            from rgruntime.tools import Tool

            owner = next(iter(bound.arguments.values()))
            if isinstance(owner, Tool):
                return f"{owner.name}.{self.function.__name__}"
        return _readable(self.function.__qualname__)

    def key_values(self, bound: inspect.BoundArguments) -> dict[str, Any]:
        return {name: bound.arguments[name] for name in self.key_params}

    def key(self, name: str, bound: inspect.BoundArguments, values: Mapping[str, Any]) -> str:
        scope: Any = None
        if self.method:
            from rgruntime.tools import Tool

            owner = next(iter(bound.arguments.values()))
            if isinstance(owner, Tool):
                # The tool's version and the instance's scope, never the instance itself.
                scope = [owner.version, owner.cache_scope()]
        for parameter, value in values.items():
            try:
                canonical(value)
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"{name}(): key parameter {parameter!r}",
                    value,
                    "JSON data (str, int, float, bool, None, lists and dicts of them); leave "
                    "it out of key_params or add it to skip_params",
                ) from None
        version = self.settings.version
        return stable_key(name, self.function.__module__, version, scope, dict(values))

    def tags_for(self, name: str, bound: inspect.BoundArguments) -> frozenset[str]:
        option = self.settings.tags
        extra: Iterable[str] = ()
        if callable(option):
            arguments = {
                parameter: value
                for parameter, value in bound.arguments.items()
                if parameter not in self.context_params
            }
            extra = option(**arguments)
            field = f"{self.where}.tags({name})"
        elif option is not None:
            extra = option
            field = f"{self.where}.tags"
        else:
            field = f"{self.where}.tags"
        return check_tags([f"tool:{name}", *extra], field)


def _parameters_of(
    function: Callable[..., Any], signature: inspect.Signature, context: set[str]
) -> str:
    names = [name for name in signature.parameters if name not in context]
    return f"a parameter of {function.__qualname__}: {', '.join(names) or 'none'}"


class _NotCached(Exception):
    """Carries a result to every caller sharing the load, but keeps it out of the cache."""

    def __init__(self, value: Any) -> None:
        self.value = value


def find_runtime(plan: CallPlan) -> Runtime | None:
    """The runtime to cache in; None to run the tool as it is (pass-through)."""
    runtime = current_runtime()
    if runtime is not None:
        return runtime
    if plan.settings.passthrough or _passthrough.get():
        return None
    raise NoRuntimeError(
        f"{plan.function.__qualname__}() is cached (@cache) but no runtime is open here: call it "
        "inside `async with ResonantGenesis(...)` or `async with rgruntime.open_runtime()` (or "
        "`with rgruntime.tools.use_runtime(runtime)`); in tests without a runtime, use "
        "`with rgruntime.tools.passthrough():` or @cache(..., passthrough=True)"
    )


async def cached_call(
    plan: CallPlan,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    runtime: Runtime | None = None,
    name: str | None = None,
    version: str | int | None = None,
) -> Any:
    """Call ``plan.function(*args, **kwargs)`` through the cache its settings describe.

    ``runtime``: None finds the current one (see :func:`find_runtime`). ``name`` and ``version``
    override the plan's (the agent loop names results after the registered tool).
    """
    settings = plan.settings
    function = plan.function
    if not settings.enabled or settings.strategy == "none":
        return await function(*args, **kwargs)
    if runtime is None:
        runtime = find_runtime(plan)
        if runtime is None:
            return await function(*args, **kwargs)
    bound = plan.bind(args, kwargs)
    name = name or plan.name_for(bound)
    values = plan.key_values(bound)
    if version is not None:
        values = {**values, "__tool_version__": version}
    key = plan.key(name, bound, values)
    tags = plan.tags_for(name, bound)
    layer = runtime.layer(settings.layer)
    if settings.strategy == "semantic":
        return await _semantic_lookup(runtime, layer, plan, name, key, values, bound, tags=tags)
    return await _exact(runtime, layer, plan, key, tags, args, kwargs)


async def _exact(
    runtime: Runtime,
    layer: Layer,
    plan: CallPlan,
    key: str,
    tags: frozenset[str],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> Any:
    graph = runtime.dependencies
    settings = plan.settings

    async def load() -> Any:
        # What the tool reads (memory lookups, other cached tools) becomes what its result
        # depends on.
        with recording(graph) as reads:
            value = await plan.function(*args, **kwargs)
            if (value is None and not settings.cache_none) or reads.tainted:
                raise _NotCached(value)
            graph.depend((layer.name, key), reads)
        return value

    try:
        value = await layer.get_or_load(key, load, ttl=settings.ttl, tags=tags)
    except _NotCached as uncached:
        return uncached.value
    if key in layer:
        record_read(layer.name, key)
    elif layer.config.enabled:
        # The result was kept out of the cache by an invalidation that ran while it was being
        # computed: whoever uses it now must not be cached as if it were current.
        taint_current()
    return value


async def _semantic_lookup(
    runtime: Runtime,
    layer: Layer,
    plan: CallPlan,
    name: str,
    key: str,
    values: Mapping[str, Any],
    bound: inspect.BoundArguments,
    *,
    tags: frozenset[str],
) -> Any:
    """``strategy="semantic"``: a result cached for a similar text answers; else run it exactly.

    The partition is everything in the key but the text (tool, module, version, the other key
    parameters), so a similar query never crosses to other arguments.
    """
    from rgruntime.keys import digest

    text_param = plan.semantic_param()
    text = values[text_param]
    if not isinstance(text, str) or not text.strip():
        # Nothing to compare by meaning: an exact match is all there is.
        return await _exact(runtime, layer, plan, key, tags, bound.args, bound.kwargs)
    index = await runtime.semantic_index(layer.name, embedder=plan.settings.embedder)
    others = {parameter: value for parameter, value in values.items() if parameter != text_param}
    partition = f"{name}:{digest(plan.function.__module__, plan.settings.version, others)}"
    hit = await index.lookup(partition, text, threshold=plan.settings.similarity_threshold)
    if hit is not None:
        record_read(layer.name, hit.key)
        return hit.value
    value = await _exact(runtime, layer, plan, key, tags, bound.args, bound.kwargs)
    if key in layer:
        await index.add(partition, key, text)
    return value
