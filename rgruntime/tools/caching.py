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
from rgruntime.keys import canonical, digest, stable_key
from rgruntime.runtime.arguments import check_tags
from rgruntime.runtime.dependencies import ReadSet, record_read_of, record_reads, recording
from rgruntime.runtime.runtime import current_runtime
from rgruntime.tools.base import Tool, ToolContext
from rgruntime.tools.scope import current_request, write_tags
from rgruntime.units import parse_duration
from rgruntime.validation import optional, similarity

if TYPE_CHECKING:
    from rgruntime.runtime.layer import Layer
    from rgruntime.runtime.runtime import Runtime
    from rgruntime.semantic.judges import Judge

__all__ = [
    "STRATEGIES",
    "CallPlan",
    "NoRuntimeError",
    "ToolCacheSettings",
    "cached_call",
    "passthrough",
]

#: The error bound of ``strategy="semantic"`` without a ``similarity_threshold`` or a
#: ``max_error_rate``: at most 2% of the results served by meaning wrong (docs/semantic.md).
TOOL_MAX_ERROR_RATE: Final = 0.02

#: What a tool's ``judge`` may be. Not ``"model"``: it asks an agent's model about its answers,
#: and a tool has no model.
_JUDGE_ACCEPTED: Final = (
    '"answer" or an async function (query, cached_result, fresh_result) -> bool (async def, or '
    'an object whose __call__ is async def); "model" judges an agent\'s answers with its model, '
    "and a tool has none"
)

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


def _as_for_agents(value: object, field: str) -> Any:
    """``value`` checked as an agent's ``semantic_cache`` checks the same option: one definition
    of the bounds and judges accepted."""
    # Imported here: rgruntime.agents imports this package (its loop caches tools through it).
    from rgruntime.agents.config import SemanticCacheConfig

    where, _, option = field.rpartition(".")
    return getattr(SemanticCacheConfig.from_mapping({option: value}, where), option)


def _check_mode(settings: ToolCacheSettings, where: str) -> ToolCacheSettings:
    """A threshold (the static mode) with what belongs to the error-bound mode is refused as for
    agents (a bound: ConfigError naming both fields)."""
    if settings.similarity_threshold is not None:
        from rgruntime.agents.config import SemanticCacheConfig

        SemanticCacheConfig.from_mapping(
            {
                "similarity_threshold": settings.similarity_threshold,
                "max_error_rate": settings.max_error_rate,
                "judge": settings.judge,
            },
            where,
        )
    return settings


def _judge(value: object, field: str) -> object:
    # Refused here, not at the first verified candidate: the tool would have run by then.
    if not (isinstance(value, str) and value == "model"):
        try:
            return _as_for_agents(value, field)
        except ConfigError:
            pass  # the agents' message offers "model": say what a tool accepts instead
    raise ConfigError(field, value, _JUDGE_ACCEPTED)


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
      (``semantic_param``: the text parameter; default: the only ``str`` key parameter);
    - ``max_error_rate``: for ``strategy="semantic"`` without a threshold, at most this share of
      results served by meaning may be wrong, in (0, 0.5] (``None``: 0.02); a threshold and a
      bound together are refused, as for agents;
    - ``judge``: who says whether a verified candidate's result would have been right:
      ``"answer"`` (the answer judge, comparing the two results), or an async callable
      ``(query, cached_result_text, fresh_result_text) -> bool``; its evidence is its own.
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
    max_error_rate: float | None = None
    judge: Literal["answer"] | Judge = attrs.field(default="answer", eq=False)

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
            "similarity_threshold": optional(similarity),
            "embedder": lambda value, field: _name(value, field) or "minilm",
            "semantic_param": lambda value, field: (
                None if value is None else (_names([value], field) or (None,))[0]
            ),
            "max_error_rate": _as_for_agents,
            "judge": _judge,
        }
        parsed: dict[str, Any] = {}
        for option, value in options.items():
            parse = parsers.get(option)
            if parse is None:
                raise ConfigError(
                    f"{where}.{option}", value, f"a known option: {', '.join(parsers)}"
                )
            parsed[option] = parse(value, f"{where}.{option}")
        return _check_mode(cls(**parsed), where)

    def merged(self, where: str, **options: Any) -> ToolCacheSettings:
        """These settings with ``options`` (validated the same way) on top.

        An override that chooses a mode replaces the mode of these settings: an agent's
        ``tool_cache_config`` can set the bound of a tool whose ``@cache`` set a threshold, and
        cannot unset that threshold otherwise. A ``max_error_rate`` drops the threshold; a
        ``similarity_threshold`` drops the bound and the judge (the static mode judges nothing).
        """
        overrides = ToolCacheSettings.checked(where, **options)
        changes = {option: getattr(overrides, option) for option in options}
        if changes.get("max_error_rate") is not None:
            changes.setdefault("similarity_threshold", None)
        if changes.get("similarity_threshold") is not None:
            changes.setdefault("max_error_rate", None)
            changes.setdefault("judge", "answer")
        return _check_mode(attrs.evolve(self, **changes), where)


def _is_context_annotation(annotation: Any) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, ToolContext)


def _readable(qualname: str) -> str:
    return re.sub(r"<locals>\.", "", qualname)


_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_KEYWORD: Final = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_VARIADIC: Final = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@attrs.frozen
class CallPlan:
    """A function's caching plan: which parameters make its keys, and how they are built.

    Everything that depends only on the function and the settings is worked out once, here, so
    that a call (a cache hit above all) only maps its arguments and hashes the key once.
    """

    function: Callable[..., Awaitable[Any]]
    settings: ToolCacheSettings
    signature: inspect.Signature
    key_params: tuple[str, ...]
    context_params: frozenset[str]
    method: bool
    where: str
    # Precomputed from the above (see __attrs_post_init__).
    _positional: tuple[str, ...] = attrs.field(init=False, repr=False)
    _keywords: frozenset[str] = attrs.field(init=False, repr=False)
    _defaults: Mapping[str, Any] = attrs.field(init=False, repr=False)
    _simple: bool = attrs.field(init=False, repr=False)
    _count: int = attrs.field(init=False, repr=False)
    _readable: str = attrs.field(init=False, repr=False)
    # Caches filled as calls come: tags by tool name, names by Tool class.
    _tags: dict[str, frozenset[str]] = attrs.field(init=False, repr=False, eq=False)
    _tool_names: dict[type, str] = attrs.field(init=False, repr=False, eq=False)
    _keys: dict[tuple[Any, ...], str] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        parameters = self.signature.parameters.values()
        set_ = object.__setattr__  # a frozen class: set the derived fields once, here
        set_(self, "_positional", tuple(p.name for p in parameters if p.kind in _POSITIONAL))
        set_(self, "_keywords", frozenset(p.name for p in parameters if p.kind in _KEYWORD))
        set_(
            self,
            "_defaults",
            {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty},
        )
        set_(self, "_simple", not any(p.kind in _VARIADIC for p in parameters))
        set_(self, "_count", len(self.signature.parameters))
        set_(self, "_readable", _readable(self.function.__qualname__))
        set_(self, "_tags", {})
        set_(self, "_tool_names", {})
        set_(self, "_keys", {})

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

    def arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied.

        What ``Signature.bind`` and ``apply_defaults`` give, mapped directly for signatures
        without ``*args``/``**kwargs`` (several times faster); any other signature, and any call
        that does not fit (which must raise bind's TypeError), goes through :meth:`bind`.
        """
        positional = self._positional
        if self._simple and len(args) <= len(positional):
            arguments = dict(zip(positional, args, strict=False))
            keywords = self._keywords
            for name, value in kwargs.items():
                if name in arguments or name not in keywords:
                    break  # given twice, or unknown: bind says so
                arguments[name] = value
            else:
                count = self._count
                if len(arguments) < count:
                    for name, default in self._defaults.items():
                        arguments.setdefault(name, default)
                if len(arguments) == count:
                    return arguments
        return dict(self.bind(args, kwargs).arguments)

    def name_for(self, arguments: Mapping[str, Any]) -> str:
        """The readable start of the call's key: the settings' name, ``<Tool.name>.<method>``,
        or the function's qualified name."""
        if self.settings.name is not None:
            return self.settings.name
        if self.method:
            owner = arguments[self._positional[0]]
            owner_class = owner if isinstance(owner, type) else type(owner)
            name = self._tool_names.get(owner_class)
            if name is None:
                if isinstance(owner, Tool):
                    name = f"{owner.name}.{self.function.__name__}"
                else:
                    name = self._readable
                self._tool_names[owner_class] = name
            return name
        return self._readable

    def scope_of(self, arguments: Mapping[str, Any]) -> Any:
        """What tells a method's instances apart: the Tool's version and ``cache_scope()``,
        never the instance itself (None for functions and other classes)."""
        if self.method:
            owner = arguments[self._positional[0]]
            if isinstance(owner, Tool):
                return [owner.version, owner.cache_scope()]
        return None

    def key(self, name: str, scope: Any, values: Mapping[str, Any]) -> str:
        """The call's key (one canonical encoding of its parts, remembered for scalar values)."""
        token = _memo_token(name, scope, values)
        if token is not None:
            key = self._keys.get(token)
            if key is not None:
                return key
        key = self._encoded_key(name, scope, values)
        if token is not None:
            if len(self._keys) >= _KEY_MEMO_SIZE:
                self._keys.clear()  # bounded; the next calls refill it with what is used now
            self._keys[token] = key
        return key

    def _encoded_key(self, name: str, scope: Any, values: Mapping[str, Any]) -> str:
        try:
            return stable_key(name, self.function.__module__, self.settings.version, scope, values)
        except (TypeError, ValueError):
            # Only a refused call pays for finding which parameter is not JSON data.
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
            raise InvalidArgumentError(
                f"{name}(): cache_scope()", scope, "JSON data (str, int, None...)"
            ) from None

    def tags_for(self, name: str, arguments: Mapping[str, Any]) -> frozenset[str]:
        option = self.settings.tags
        if not callable(option):
            # Static: validated at decoration; the set for each name is built once.
            tags = self._tags.get(name)
            if tags is None:
                tags = self._tags[name] = check_tags(
                    [f"tool:{name}", *(option or ())], f"{self.where}.tags"
                )
            return tags
        extra = option(
            **{
                parameter: value
                for parameter, value in arguments.items()
                if parameter not in self.context_params
            }
        )
        return check_tags([f"tool:{name}", *extra], f"{self.where}.tags({name})")


#: Keys remembered per plan: calls repeat their arguments (that is why they are cached), and
#: encoding a key's parts costs several times a dictionary lookup.
_KEY_MEMO_SIZE: Final = 1024

#: Values a memo token may hold as they are: hashable, and equal exactly when their JSON is
#: (with the type alongside: 1, 1.0 and True are equal in Python, not in JSON).
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _memo_token(name: str, scope: Any, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable stand-in for a key's parts, or None when a part is not a plain scalar."""
    parts: list[Any] = [name]
    if scope is not None:  # [Tool.version, cache_scope()]
        for part in scope:
            if type(part) not in _SCALARS:
                return None
            parts.append(type(part))
            parts.append(part)
    parts.append(len(values))
    for value in values.values():
        if type(value) not in _SCALARS:
            return None
        parts.append(type(value))
        parts.append(value)
    return tuple(parts)


def _parameters_of(
    function: Callable[..., Any], signature: inspect.Signature, context: set[str]
) -> str:
    names = [name for name in signature.parameters if name not in context]
    return f"a parameter of {function.__qualname__}: {', '.join(names) or 'none'}"


class _NotCached(Exception):
    """Carries a result to every caller sharing the load, but keeps it out of the cache.

    ``reads``: what it was computed from; each caller depends on that directly.
    """

    def __init__(self, value: Any, reads: ReadSet) -> None:
        self.value = value
        self.reads = reads


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
    arguments = plan.arguments(args, kwargs)
    name = name or plan.name_for(arguments)
    values = {parameter: arguments[parameter] for parameter in plan.key_params}
    if version is not None:
        values["__tool_version__"] = version
    # The tool's version and the instance's scope: computed once, for the key and the partition.
    scope = plan.scope_of(arguments)
    key = plan.key(name, scope, values)
    tags = plan.tags_for(name, arguments)
    layer = runtime.layer(settings.layer)
    if settings.strategy == "semantic":
        return await _semantic_lookup(
            runtime,
            layer,
            plan,
            args,
            kwargs,
            name=name,
            key=key,
            scope=scope,
            values=values,
            tags=tags,
        )
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
    scope = current_request()
    if scope is not None and scope.take_refresh(layer.name, key):
        # An answer recomputed after an invalidation runs its tools again (see tools.scope).
        await layer.delete(key)

    async def load() -> Any:
        # What the tool reads (memory lookups, other cached tools) becomes what its result
        # depends on.
        with recording(graph) as reads:
            value = await plan.function(*args, **kwargs)
            if value is None and not settings.cache_none:
                raise _NotCached(value, reads)
            # False when something it read went while it ran: returned, never cached.
            if not graph.depend((layer.name, key), reads):
                raise _NotCached(value, reads)
        return value

    try:
        value = await layer.get_or_load(key, load, ttl=settings.ttl, tags=write_tags(tags))
    except _NotCached as uncached:
        # Every caller sharing the result depends on what it was computed from.
        record_reads(uncached.reads)
        return uncached.value
    # The caller depends on the result; if an invalidation kept it out of the cache (or removed
    # it since), whoever uses it now must not be cached as if it were current.
    record_read_of(layer, key, value)
    return value


async def _semantic_lookup(
    runtime: Runtime,
    layer: Layer,
    plan: CallPlan,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    name: str,
    key: str,
    scope: Any,
    values: Mapping[str, Any],
    tags: frozenset[str],
) -> Any:
    """``strategy="semantic"``: a result cached for a similar text answers; else run it exactly.

    The partition is everything in the key but the text (tool, module, the decorator's version,
    the Tool's version and the instance's ``cache_scope()``, the other key parameters), so a
    similar query never crosses to other arguments, instances or versions.
    """
    text_param = plan.semantic_param()
    text = values[text_param]
    if not isinstance(text, str) or not text.strip():
        # Nothing to compare by meaning: an exact match is all there is.
        return await _exact(runtime, layer, plan, key, tags, args, kwargs)
    from rgruntime.semantic import semantic_index

    index = await semantic_index(runtime, layer.name, embedder=plan.settings.embedder)
    others = {parameter: value for parameter, value in values.items() if parameter != text_param}
    partition = f"{name}:{digest(plan.function.__module__, plan.settings.version, scope, others)}"
    settings = plan.settings
    threshold = settings.similarity_threshold
    pending = None
    if threshold is not None:
        hit = await index.lookup(partition, text, threshold=threshold)
    else:
        # No threshold: the error-bound mode, as for agents' answers (docs/semantic.md), taught
        # by the tool's judge only (its evidence is kept apart from other judges').
        from rgruntime.semantic.bounded import bounded_lookup
        from rgruntime.semantic.judges import judge_identity

        bound = settings.max_error_rate or TOOL_MAX_ERROR_RATE
        # model="": a tool's judge is never "model" (refused by the settings).
        judge = judge_identity(settings.judge, model="")
        found = await bounded_lookup(index, bound, partition, text, judge)
        hit, pending = found.hit, found.pending
    if hit is not None:
        record_read_of(layer, hit.key, hit.value)
        return hit.value
    value = await _exact(runtime, layer, plan, key, tags, args, kwargs)
    if key in layer:
        await index.add(partition, key, text)
    if pending is not None:
        from rgruntime.semantic.bounded import answer_text, settle
        from rgruntime.semantic.judges import AnswerJudge

        chosen = settings.judge
        verdict = AnswerJudge(index.cache.embedder) if isinstance(chosen, str) else chosen
        cached = answer_text(pending.hit.value)
        await settle(pending, lambda: verdict(text, cached, answer_text(value)))
    return value
