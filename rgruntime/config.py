"""Configuration of the runtime and its layers.

Two equivalent forms are accepted everywhere: the attrs classes below, and the plain dicts the
caching guide writes (``{"enabled": True, "default_ttl": 3600, "max_size": "100MB", "strategy":
"lru"}``). Dicts are validated key by key: an unknown key, a bad unit, a negative TTL or an unknown
strategy raises :class:`~rgruntime.ConfigError` naming the field, the value and what is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from rgruntime.errors import ConfigError
from rgruntime.policies.tiered import Tier, parse_tiers
from rgruntime.stores.base import RemoteStore
from rgruntime.stores.config import StoreConfig, parse_store_config
from rgruntime.validation import (
    boolean,
    optional_count,
    optional_duration,
    optional_size,
    positive_int,
)

__all__ = [
    "BUILTIN_LAYERS",
    "STRATEGIES",
    "Backend",
    "LayerConfig",
    "RuntimeConfig",
    "parse_backend",
]

#: Where a layer keeps its entries: ``None`` in this process only (the embedded default), else
#: the settings of a remote store (or a store object) with the layer's own map as a near cache.
Backend = StoreConfig | RemoteStore | None

#: Eviction strategies (see docs/policies.md): exact-ish LRU, W-TinyLFU, nearest deadline first,
#: the guide's hot/warm/cold tiers, and GreedyDual-Size-Frequency.
STRATEGIES: Final = ("lru", "lfu", "ttl", "tiered", "cost")


def _check_name(name: object, field: str) -> str:
    if not isinstance(name, str) or not name or not name.isidentifier():
        raise ConfigError(field, name, "a non-empty identifier such as 'response' or 'embeddings'")
    return name


def _strategy(value: object, field: str) -> str:
    if value not in STRATEGIES:
        raise ConfigError(field, value, f"one of {', '.join(map(repr, STRATEGIES))}")
    return str(value)


def _share(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(field, value, "a positive number (a relative share of max_size)")
    return float(value)


def _fraction(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(field, value, "a fraction between 0 and 1, such as 0.05")
    return float(value)


def _tiers(value: object, field: str) -> tuple[Tier, ...] | None:
    return None if value is None else parse_tiers(value, field=field)


def parse_backend(value: object, field: str = "cache_backend") -> Backend:
    """The guide's ``cache_backend`` dict: ``{"type": "memory"}`` (or None) is the embedded
    default; ``redis``, ``redis_cluster`` and ``memcached`` dicts name a remote store (see
    :mod:`rgruntime.stores.config`); an unopened store object is used as it is."""
    if value is None or isinstance(value, RemoteStore):
        return value
    if isinstance(value, Mapping) and value.get("type") == "memory":
        for key, setting in value.items():
            if key != "type":
                raise ConfigError(
                    f"{field}.{key}", setting, "no other setting for the embedded 'memory' backend"
                )
        return None
    try:
        return parse_store_config(value)
    except ConfigError as error:  # name the field from where it was given
        where = error.field.replace("cache_backend", field, 1)
        raise ConfigError(where, error.value, error.accepted) from None


def _positive_seconds(value: object, field: str) -> float:
    seconds = optional_duration(value, field)
    if seconds is None or seconds <= 0:
        raise ConfigError(field, value, "a duration above zero, such as 30 or '30s'")
    return seconds


_LAYER_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "ttl": optional_duration,
    "default_ttl": optional_duration,
    "max_ttl": optional_duration,
    "max_entries": optional_count,
    "max_size": optional_size,
    "strategy": _strategy,
    "sliding_ttl": boolean,
    "enabled": boolean,
    "budget_share": _share,
    "min_share": _fraction,
    "tiers": _tiers,
    "write_buffer_size": positive_int,
    "evictable": boolean,
    "stale_if_error": optional_duration,
    "cache_backend": parse_backend,
    "near_cache": boolean,
    "near_ttl": optional_duration,
    "strict": boolean,
    "lease_ttl": _positive_seconds,
    "write_back_limit": positive_int,
}


@attrs.frozen(kw_only=True)
class LayerConfig:
    """The settings of one cache layer, fully resolved.

    ``ttl`` is the default time to live in seconds (``None``: entries never expire on their own);
    ``max_ttl`` caps the TTL a single entry may ask for. ``max_entries`` and ``max_size`` (bytes)
    bound the layer; ``strategy`` picks what leaves first when it is over a bound. With
    ``sliding_ttl`` a hit restarts the entry's TTL. ``enabled=False`` makes the layer a
    pass-through: loads run, nothing is stored. ``evictable=False`` (the ``session`` layer's
    default: session state is data, not a copy of something recomputable) never evicts for
    space: only a TTL, an invalidation or a delete removes an entry, and a write of a new value
    that does not fit raises :class:`~rgruntime.CapacityError` instead.

    With a remote ``cache_backend`` (docs/stores.md), the layer's own map is a near cache in
    front of the store: ``near_cache=False`` sends every read to the server; ``near_ttl`` bounds
    how long a near copy is served without asking the server (default: as long as the entry
    lives where the store publishes invalidations, 1 s on Memcached); ``strict=True`` raises
    :class:`~rgruntime.stores.StoreUnavailableError` when the server is away instead of serving
    from the near cache and running loaders; ``lease_ttl`` bounds how long other processes wait
    for one process's load of a key; ``write_back_limit`` bounds the writes kept in process
    while the server is away (the oldest beyond it are dropped and counted).
    """

    name: str
    ttl: float | None = None
    max_ttl: float | None = None
    max_entries: int | None = None
    max_size: int | None = None
    strategy: str = "lru"
    sliding_ttl: bool = False
    enabled: bool = True
    budget_share: float = 1.0
    #: The least share of its starting budget that rebalancing may leave this layer.
    min_share: float = 0.25
    #: Set when the layer's max_size is its share of the runtime's: such layers are rebalanced.
    shared_budget: bool = False
    #: With ``strategy="tiered"``: the tiers, hottest first (default: the policy's 10:50:200).
    tiers: tuple[Tier, ...] | None = None
    #: Pending writes after which a writer waits for the actor to catch up (backpressure).
    write_buffer_size: int = 4096
    evictable: bool = True
    #: Seconds an expired entry is kept to answer a load of its key whose loader fails
    #: (stale-if-error; None: off). See rgruntime.runtime.stale.
    stale_if_error: float | None = None
    cache_backend: Backend = attrs.field(default=None, eq=False)
    near_cache: bool = True
    near_ttl: float | None = None
    strict: bool = False
    lease_ttl: float = 30.0
    write_back_limit: int = 10_000

    @property
    def remote(self) -> bool:
        """Whether the layer keeps its entries in a remote store (its map is a near cache)."""
        return self.cache_backend is not None

    def __attrs_post_init__(self) -> None:
        where = f"layers.{self.name}"
        _check_name(self.name, f"{where}.name")
        # Built directly (not from a dict), the fields have not been through the parsers yet:
        # parse them, and keep what they return ("5m" is 300.0 from here on).
        for field in attrs.fields(LayerConfig):
            if field.name in _LAYER_KEYS:
                parsed = _LAYER_KEYS[field.name](getattr(self, field.name), f"{where}.{field.name}")
                object.__setattr__(self, field.name, parsed)
        if self.ttl is not None and self.max_ttl is not None and self.ttl > self.max_ttl:
            raise ConfigError(f"{where}.ttl", self.ttl, f"at most max_ttl ({self.max_ttl:g} s)")
        if self.sliding_ttl and self.remote:
            # A hit would have to move the server's deadline too: a write per read.
            raise ConfigError(
                f"{where}.sliding_ttl", True, "False on a layer with a remote cache_backend"
            )

    @classmethod
    def parse_overrides(cls, name: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Validate a layer's dict form into keyword arguments (``default_ttl`` means ``ttl``)."""
        if not isinstance(options, Mapping):
            raise ConfigError(where, options, "a dict of layer settings")
        parsed: dict[str, Any] = {}
        for key, value in options.items():
            parse = _LAYER_KEYS.get(key)
            if parse is None:
                known = ", ".join(sorted(_LAYER_KEYS))
                raise ConfigError(f"{where}.{key}", value, f"a known layer setting: {known}")
            parsed["ttl" if key == "default_ttl" else key] = parse(value, f"{where}.{key}")
        return parsed


#: The guide's five layers and their defaults (TTL and the longest TTL an entry may ask for).
BUILTIN_LAYERS: Final[Mapping[str, Mapping[str, Any]]] = {
    "response": {"ttl": 3600.0, "max_ttl": 86400.0},
    "session": {"ttl": None, "max_ttl": None, "evictable": False},
    "model": {"ttl": 86400.0, "max_ttl": 7 * 86400.0},
    "tool": {"ttl": 300.0, "max_ttl": 3600.0},
    "memory": {"ttl": 900.0, "max_ttl": None},
}

_RUNTIME_KEYS: Final = (
    "enabled",
    "default_ttl",
    "max_size",
    "max_entries",
    "strategy",
    "sliding_ttl",
    "tiers",
    "rebalance_interval",
    "cascade_on_expiry",
    "persist",
    "cache_backend",
    "layers",
)


@attrs.frozen(kw_only=True)
class RuntimeConfig:
    """The settings of a runtime: global defaults and one :class:`LayerConfig` per layer.

    Build it from the guide's dict with :meth:`from_mapping`, or let :func:`open_runtime` do it.
    Global settings are defaults that a layer's own settings override:

    - ``default_ttl``: the TTL of custom layers that set none (the built-in layers keep the
      guide's table: response 1 h, session none, model 1 d, tool 5 min, memory 15 min);
    - ``max_size``: the byte budget of the whole runtime, split across the layers that set no
      ``max_size`` of their own in proportion to their ``budget_share``;
    - ``max_entries``, ``strategy``, ``sliding_ttl``: per-layer defaults;
    - ``cascade_on_expiry``: an entry that expires takes what was computed from it along (off:
      only known changes do; see :mod:`rgruntime.runtime.dependencies`);
    - ``persist``: a file path: the runtime loads its entries from it when it opens (if it
      exists) and saves them to it when it closes (warm restarts; :mod:`rgruntime.runtime.
      snapshot`);
    - ``cache_backend``: the guide's backend dict (``{"type": "redis", "url": ...}``,
      ``memcached``, ``redis_cluster``; ``memory`` or None: embedded), every layer's default.
    """

    enabled: bool = True
    default_ttl: float | None = 3600.0
    max_size: int | None = None
    max_entries: int | None = None
    strategy: str = "lru"
    sliding_ttl: bool = False
    tiers: tuple[Tier, ...] | None = None
    #: How often the supervisor moves budget between layers (None: never).
    rebalance_interval: float | None = 10.0
    #: Whether an entry that expires takes what depended on it along (the dependency graph).
    cascade_on_expiry: bool = False
    #: A file the runtime's entries are loaded from on open and saved to on close (None: off).
    persist: str | None = None
    #: The layers' default backend (None: embedded); a layer's own ``cache_backend`` overrides it.
    cache_backend: Backend = attrs.field(default=None, eq=False)
    layers: Mapping[str, LayerConfig] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.layers:
            # Built directly rather than through from_mapping: validate the fields the same way
            # and give it the built-in layers, so RuntimeConfig(max_size="1GB") just works.
            resolved = RuntimeConfig.from_mapping(
                {field: getattr(self, field) for field in _RUNTIME_KEYS if field != "layers"}
            )
            for field in attrs.fields(RuntimeConfig):
                object.__setattr__(self, field.name, getattr(resolved, field.name))
        if self.max_size is None:
            return
        fixed = sum(layer.max_size or 0 for layer in self.layers.values())
        if fixed > self.max_size:
            raise ConfigError(
                "cache_config.layers.*.max_size",
                fixed,
                f"a total no larger than cache_config.max_size ({self.max_size} bytes)",
            )

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any] | None = None, *, where: str = "cache_config"
    ) -> RuntimeConfig:
        """Validate the guide's dict form and resolve every layer's settings."""
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise ConfigError(where, options, "a dict such as {'max_size': '100MB'}")
        for key, value in options.items():
            if key not in _RUNTIME_KEYS:
                raise ConfigError(
                    f"{where}.{key}", value, f"a known setting: {', '.join(_RUNTIME_KEYS)}"
                )
        enabled = boolean(options.get("enabled", True), f"{where}.enabled")
        default_ttl = optional_duration(options.get("default_ttl", 3600.0), f"{where}.default_ttl")
        max_size = optional_size(options.get("max_size"), f"{where}.max_size")
        max_entries = optional_count(options.get("max_entries"), f"{where}.max_entries")
        strategy = _strategy(options.get("strategy", "lru"), f"{where}.strategy")
        sliding = boolean(options.get("sliding_ttl", False), f"{where}.sliding_ttl")
        tiers = _tiers(options.get("tiers"), f"{where}.tiers")
        rebalance = optional_duration(
            options.get("rebalance_interval", 10.0), f"{where}.rebalance_interval"
        )
        cascade_on_expiry = boolean(
            options.get("cascade_on_expiry", False), f"{where}.cascade_on_expiry"
        )
        persist = _persist_path(options.get("persist"), f"{where}.persist")
        backend = parse_backend(options.get("cache_backend"), f"{where}.cache_backend")
        if strategy == "tiered" and tiers is not None and max_size is None:
            # The guide's tiered config sizes the tiers and sets no max_size: they are the budget.
            max_size = sum(tier.size for tier in tiers)
        layer_options = options.get("layers", {})
        if not isinstance(layer_options, Mapping):
            raise ConfigError(f"{where}.layers", layer_options, "a dict of layer name to settings")

        overrides: dict[str, dict[str, Any]] = {name: {} for name in BUILTIN_LAYERS}
        for name, layer in layer_options.items():
            layer_where = f"{where}.layers.{_check_name(name, f'{where}.layers')}"
            if isinstance(layer, LayerConfig):
                overrides[name] = attrs.asdict(layer, recurse=False)
            else:
                overrides[name] = LayerConfig.parse_overrides(name, layer, layer_where)

        defaults = _layer_defaults(
            enabled, default_ttl, max_entries, strategy, sliding, tiers, backend
        )
        layers = {
            name: _layer_config(name, given, defaults, where) for name, given in overrides.items()
        }
        return cls(
            enabled=enabled,
            default_ttl=default_ttl,
            max_size=max_size,
            max_entries=max_entries,
            strategy=strategy,
            sliding_ttl=sliding,
            tiers=tiers,
            rebalance_interval=rebalance,
            cascade_on_expiry=cascade_on_expiry,
            persist=persist,
            cache_backend=backend,
            layers=_split_budget(layers, max_size),
        )

    def new_layer(self, name: str, options: Mapping[str, Any]) -> LayerConfig:
        """Settings of one more layer ``name``: its own ``options`` over this runtime's defaults.

        It takes no share of ``max_size``: give it a ``max_size`` of its own to bound its bytes.
        """
        where = f"cache_config.layers.{_check_name(name, 'cache_config.layers')}"
        defaults = _layer_defaults(
            self.enabled,
            self.default_ttl,
            self.max_entries,
            self.strategy,
            self.sliding_ttl,
            self.tiers,
            self.cache_backend,
        )
        given = LayerConfig.parse_overrides(name, options, where)
        return _layer_config(name, given, defaults, "cache_config")

    @classmethod
    def coerce(cls, config: RuntimeConfig | Mapping[str, Any] | None) -> RuntimeConfig:
        """Accept a :class:`RuntimeConfig`, the guide's dict, or ``None`` (all defaults)."""
        if isinstance(config, RuntimeConfig):
            return config
        return cls.from_mapping(config)


def _persist_path(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ConfigError(field, value, "a file path for warm restarts, or None")
    return value


def _layer_defaults(
    enabled: bool,
    ttl: float | None,
    max_entries: int | None,
    strategy: str,
    sliding_ttl: bool,
    tiers: tuple[Tier, ...] | None,
    backend: Backend,
) -> dict[str, Any]:
    """The runtime-wide settings every layer inherits, under LayerConfig's field names."""
    return {
        "enabled": enabled,
        "ttl": ttl,
        "max_entries": max_entries,
        "strategy": strategy,
        "sliding_ttl": sliding_ttl,
        "tiers": tiers,
        "cache_backend": backend,
    }


def _layer_config(
    name: str, given: Mapping[str, Any], defaults: Mapping[str, Any], where: str
) -> LayerConfig:
    """One layer's settings: the runtime's defaults, the built-in layer's, then its own."""
    enabled = bool(defaults["enabled"])
    settings = dict(defaults)
    settings.update(BUILTIN_LAYERS.get(name, {}))
    settings.update(given)
    own_tiers = given.get("tiers")
    if settings["strategy"] == "tiered" and own_tiers and settings.get("max_size") is None:
        settings["max_size"] = sum(tier.size for tier in own_tiers)  # its tiers are its budget
    longest = settings.get("max_ttl")
    if "ttl" not in given and longest is not None and (settings["ttl"] or 0) > longest:
        settings["ttl"] = longest  # an inherited TTL never exceeds the layer's own cap
    settings["name"] = name
    settings["enabled"] = enabled and settings["enabled"]
    try:
        return LayerConfig(**settings)
    except ConfigError as error:  # name the field from the top: cache_config.layers...
        raise ConfigError(f"{where}.{error.field}", error.value, error.accepted) from None


def _split_budget(layers: dict[str, LayerConfig], total: int | None) -> dict[str, LayerConfig]:
    """Give each layer without a byte budget of its own a share of the runtime's budget."""
    if total is None:
        return layers
    fixed = sum(layer.max_size or 0 for layer in layers.values())
    open_layers = [layer for layer in layers.values() if layer.max_size is None]
    shares = sum(layer.budget_share for layer in open_layers)
    remaining = total - fixed
    if open_layers and remaining < len(open_layers):
        raise ConfigError(
            "cache_config.max_size",
            total,
            f"more than the layers' own max_size total ({fixed} bytes), to leave room for "
            f"{', '.join(layer.name for layer in open_layers)}",
        )
    split = dict(layers)
    for layer in open_layers:
        budget = max(1, int(remaining * layer.budget_share / shares))
        split[layer.name] = attrs.evolve(layer, max_size=budget, shared_budget=True)
    return split
