"""The ``tiered`` strategy: hot, warm and cold tiers, each with its own size and TTL.

The caching guide's form::

    {"strategy": "tiered", "tiers": [
        {"name": "hot", "size": "10MB", "ttl": 300},
        {"name": "warm", "size": "50MB", "ttl": 3600},
        {"name": "cold", "size": "200MB", "ttl": 86400}]}

Tiers are listed hottest first; any number of them, at least one. How entries move:

- a **new entry enters the coldest tier**, through its admission window (an LRU that holds new
  entries until the cache is full; then TinyLFU's filter decides between the window's oldest
  entry and the coldest tier's oldest: see :mod:`~rgruntime.policies.admission`);
- a **hit promotes** an entry one tier hotter (a hit in the hottest tier refreshes it);
- a tier **over its size demotes** its least recently used entry one tier colder;
- the cache evicts from the coldest tier (or the window's candidate, if it loses).

Sizes: the tiers share the layer's budget in proportion to their configured sizes (the layer's
``max_size``, or the sum of the tiers' sizes when the layer sets none); the admission window is
carved from them in the same proportion, its size adapting as in ``lfu``. So with the guide's
10/50/200 MB and a 260 MB budget each tier gets its configured size less its share of the
window. TTLs: each tier's TTL caps the deadline of the entries it holds; the policy has no clock,
so it exposes the TTLs (:meth:`TieredPolicy.tier_of`, :meth:`TieredPolicy.take_moves`) and the
layer applies them (see ``docs/policies.md``).

Tiered is the ``lfu`` engine with the tiers as its main segments: it inherits its scan
resistance and its adaptivity, and the tiers add a deadline per level of popularity.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from rgruntime.errors import ConfigError
from rgruntime.policies.admission import WINDOW_SHARE, AdmissionEngine
from rgruntime.units import parse_duration, parse_size

__all__ = ["DEFAULT_TIERS", "Tier", "TieredPolicy", "parse_tiers"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: its name, its size in bytes, and the TTL (seconds) it caps entries at."""

    name: str
    size: int
    ttl: float | None = None


#: The split used when no tiers are configured: the guide's example sizes (10 : 50 : 200), so
#: hot 3.8%, warm 19.2%, cold 76.9% of the budget, with no TTL caps.
DEFAULT_TIERS: Final = (
    Tier("hot", 10_000_000),
    Tier("warm", 50_000_000),
    Tier("cold", 200_000_000),
)

_TIER_KEYS: Final = ("name", "size", "ttl")
_TIERS_ACCEPTED: Final = (
    "a non-empty list of tiers, hottest first, such as "
    "[{'name': 'hot', 'size': '10MB', 'ttl': 300}, {'name': 'cold', 'size': '200MB', 'ttl': 86400}]"
)


def parse_tiers(value: object, field: str = "tiers") -> tuple[Tier, ...]:
    """Validate the guide's ``tiers`` list (dicts or :class:`Tier`), hottest first.

    Raises :class:`~rgruntime.errors.ConfigError` naming the field (``tiers[1].size``), the value
    and what is accepted.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence) or not value:
        raise ConfigError(field, value, _TIERS_ACCEPTED)
    tiers: list[Tier] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        tier = item if isinstance(item, Tier) else _parse_tier(item, where)
        if isinstance(item, Tier):
            _check_tier(tier, where)
        if tier.name in seen:
            raise ConfigError(
                f"{where}.name",
                tier.name,
                f"a name no other tier uses ({field}[{seen[tier.name]}] is already {tier.name!r})",
            )
        seen[tier.name] = index
        tiers.append(tier)
    return tuple(tiers)


def _parse_tier(item: object, where: str) -> Tier:
    if not isinstance(item, Mapping):
        raise ConfigError(where, item, "a dict such as {'name': 'hot', 'size': '10MB', 'ttl': 300}")
    for key in item:
        if key not in _TIER_KEYS:
            raise ConfigError(f"{where}.{key}", item[key], f"only the keys {', '.join(_TIER_KEYS)}")
    for key in ("name", "size"):
        if key not in item:
            raise ConfigError(f"{where}.{key}", None, f"a {key}: every tier needs one")
    name = item["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name", name, "a non-empty string such as 'hot'")
    size = parse_size(item["size"], field=f"{where}.size")
    ttl_value = item.get("ttl")
    ttl = None if ttl_value is None else parse_duration(ttl_value, field=f"{where}.ttl")
    return Tier(name, size, ttl)


def _check_tier(tier: Tier, where: str) -> None:
    """A :class:`Tier` built in code goes through the same checks as a dict."""
    _parse_tier({"name": tier.name, "size": tier.size, "ttl": tier.ttl}, where)


#: Tiers are main segments, and a key read on every round never reaches the window's end: read
#: more than this many times while in the window, a key moves on into the tiers, where its next
#: hits promote it (so a live layer that reports every hit fills the hot tier with its
#: favourites). Not on the first re-read: moving every re-read key on bypasses the admission
#: filter and costs ``orm_busy`` at 1% a point (24.0% misses where 23.1% stay in the window),
#: six reads cost it 0.5.
WINDOW_HITS_PROMOTE: Final = 6


class TieredPolicy(AdmissionEngine[K]):
    """Tiers hottest first (see the module documentation); default :data:`DEFAULT_TIERS`.

    ``max_size`` (bytes) or ``max_entries`` is the budget the tiers share; with neither, the sum
    of the tiers' sizes, in bytes. ``track_moves=True`` records which keys change tier, for
    :meth:`take_moves` (a live layer needs it to apply the tiers' TTLs; a replay does not).
    """

    __slots__ = ("_by_segment", "_tiers")

    def __init__(
        self,
        tiers: Sequence[Tier | Mapping[str, object]] | None = None,
        max_size: int | None = None,
        max_entries: int | None = None,
        *,
        track_moves: bool = False,
        window: float = WINDOW_SHARE,
        adaptive: bool = True,
    ) -> None:
        self._tiers = DEFAULT_TIERS if tiers is None else parse_tiers(tiers)
        # Segment 0 (the window) belongs to the coldest tier; segment s >= 1 is the s-th coldest.
        coldest_first = tuple(reversed(self._tiers))
        self._by_segment = (coldest_first[0], *coldest_first)
        weighted = max_size is not None or max_entries is None
        if max_size is not None:
            capacity: int | None = max_size
        elif max_entries is not None:
            capacity = max_entries
        else:
            capacity = None if tiers is None else sum(tier.size for tier in self._tiers)
        super().__init__(
            [tier.size for tier in coldest_first],
            capacity=capacity,
            weighted=weighted,
            window=window,
            adaptive=adaptive,
            window_hits_promote=WINDOW_HITS_PROMOTE,
        )
        if track_moves:
            self._moves = []

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """The tiers, hottest first."""
        return self._tiers

    def tier_of(self, key: K) -> Tier | None:
        """The tier holding ``key`` (new entries are in the coldest); None if untracked."""
        segment = self.segment_of(key)
        return None if segment is None else self._by_segment[segment]

    def take_moves(self) -> list[tuple[K, Tier]]:
        """The keys that changed tier since the last call, each with the tier it is in now.

        Only with ``track_moves=True`` (otherwise always empty). Keys that left the cache since
        are left out.
        """
        if not self._moves:
            return []
        moved, self._moves = self._moves, []
        result: list[tuple[K, Tier]] = []
        for key in dict.fromkeys(moved):
            tier = self.tier_of(key)
            if tier is not None:
                result.append((key, tier))
        return result

    # The live layer's hooks: an entry's TTL is capped by its tier's.

    def ttl_cap(self, key: K) -> float | None:
        tier = self.tier_of(key)
        return None if tier is None else tier.ttl

    def watch_ttl_caps(self) -> None:
        if self._moves is None:
            self._moves = []

    def take_ttl_caps(self) -> list[tuple[K, float]]:
        return [(key, tier.ttl) for key, tier in self.take_moves() if tier.ttl is not None]

    def tier_weights(self) -> dict[str, int]:
        """What each tier holds now (bytes, or entries without a byte budget)."""
        held = dict.fromkeys((tier.name for tier in self._tiers), 0)
        for segment, weight in enumerate(self.segment_weights()):
            held[self._by_segment[segment].name] += weight
        return held
