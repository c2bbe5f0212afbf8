"""What model calls cost: a price table in the shape of LiteLLM's public
``model_prices_and_context_window.json``, with an indicative offline table bundled.

Keys are model names; each value gives ``input_cost_per_token`` and ``output_cost_per_token``
(USD) and optionally ``max_input_tokens``, ``max_output_tokens``, ``litellm_provider`` and
``mode``; LiteLLM's other keys are accepted and ignored, and keys starting with ``_`` are notes.

Lookups forgive the two usual differences between the name a program uses and the name in a
table: a provider prefix (``openai/gpt-4o``) and a version date (``gpt-4o-2024-08-06``,
``claude-3-5-sonnet-20241022``, ``claude-3-5-sonnet-latest``, ``gemini-1.5-pro-002``). They
never guess further: an exact entry always wins (``gpt-4o-2024-05-13`` has its own price), and
``gpt-4o-mini-foo`` is not ``gpt-4o-mini``. An unknown model costs 0.0 and is not
:meth:`PriceTable.known`, or raises :class:`UnknownModelError` with ``strict=True``.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs

from rgruntime.errors import ConfigError
from rgruntime.providers.errors import UnknownModelError
from rgruntime.providers.types import Completion, Usage

__all__ = ["ModelPrice", "PriceTable"]

_BUNDLED: Final = "model_prices.json"

_MEMO_LIMIT: Final = 4096

# A version date or tag at the end of a model name: -2024-08-06, -20241022, -0613, @20240620,
# -latest, and Gemini's -001 / -002 (same price as the unversioned model).
_VERSION_SUFFIX: Final = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|@\d{8}|-latest|-0\d\d)$")

# LiteLLM's file documents its own shape in an entry of this name.
_NOT_MODELS: Final = frozenset({"sample_spec"})


def _cost(value: object, field: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(field, value, "a number of USD per token, 0 or more (such as 2.5e-06)")
    return float(value)


def _tokens(value: object, field: str) -> int | None:
    if value is None:
        return None
    # LiteLLM writes a few limits as floats (8191.0): whole floats are accepted.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, value, "None or a positive number of tokens")
    return value


def _label(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(field, value, "None or a string")
    return value


@attrs.frozen
class ModelPrice:
    """The price and limits of one model (USD per token)."""

    input_cost_per_token: float
    output_cost_per_token: float
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    litellm_provider: str | None = None
    mode: str | None = None

    def cost(self, usage: Usage) -> float:
        """USD for ``usage``."""
        return (
            usage.prompt_tokens * self.input_cost_per_token
            + usage.completion_tokens * self.output_cost_per_token
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], field: str = "price") -> ModelPrice:
        """Read one entry of the LiteLLM-shaped JSON; ``field`` names it in errors."""
        if not isinstance(data, Mapping):
            raise ConfigError(
                field, data, "a dict with input_cost_per_token and output_cost_per_token"
            )
        for key in ("input_cost_per_token", "output_cost_per_token"):
            if key not in data:
                raise ConfigError(f"{field}.{key}", "<missing>", "a number of USD per token")
        return cls(
            _cost(data["input_cost_per_token"], f"{field}.input_cost_per_token"),
            _cost(data["output_cost_per_token"], f"{field}.output_cost_per_token"),
            _tokens(data.get("max_input_tokens"), f"{field}.max_input_tokens"),
            _tokens(data.get("max_output_tokens"), f"{field}.max_output_tokens"),
            _label(data.get("litellm_provider"), f"{field}.litellm_provider"),
            _label(data.get("mode"), f"{field}.mode"),
        )


def _is_note(name: str) -> bool:
    return name.startswith("_") or name in _NOT_MODELS


def _parse(data: Mapping[str, Any], *, skip_incomplete: bool = False) -> dict[str, ModelPrice]:
    if not isinstance(data, Mapping):
        raise ConfigError("prices", data, "a dict of model name to price entry")
    prices = {}
    for name, entry in data.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("prices", name, "model names that are non-empty strings")
        if _is_note(name):
            continue
        if (
            skip_incomplete
            and isinstance(entry, Mapping)
            and not {"input_cost_per_token", "output_cost_per_token"} <= entry.keys()
        ):
            continue
        prices[name] = ModelPrice.from_dict(entry, f"prices[{name!r}]")
    return prices


_default: PriceTable | None = None


class PriceTable:
    """An immutable table of model prices. :meth:`extend` and :meth:`with_prices` return new
    tables; :meth:`default` is the bundled one (indicative prices: override what you rely on)."""

    __slots__ = ("_by_tail", "_lower", "_memo", "_prices")

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices: dict[str, ModelPrice] = {}
        for name, price in (prices or {}).items():
            if not isinstance(name, str) or not name.strip() or _is_note(name):
                raise ConfigError("prices", name, "non-empty model names not starting with '_'")
            if not isinstance(price, ModelPrice):
                raise ConfigError(f"prices[{name!r}]", price, "a ModelPrice")
            self._prices[name] = price
        # Case-insensitive index (an exact-case key wins a collision), and the index of names
        # without their provider prefixes: "llama-3.3-70b-versatile" finds
        # "groq/llama-3.3-70b-versatile" when no other key ends that way.
        self._lower: dict[str, str] = {}
        for name in self._prices:
            self._lower.setdefault(name.lower(), name)
        tails: dict[str, str | None] = {}
        for name in self._prices:
            parts = name.lower().split("/")
            for i in range(1, len(parts)):
                tail = "/".join(parts[i:])
                tails[tail] = name if tails.get(tail, name) == name else None
        self._by_tail = {tail: name for tail, name in tails.items() if name is not None}
        self._memo: dict[str, str | None] = {}

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def default(cls) -> PriceTable:
        """The bundled table (``model_prices.json``, loaded once)."""
        global _default  # noqa: PLW0603 (one immutable table, loaded on first use)
        if _default is None:
            text = importlib.resources.files(__package__ or "rgruntime.providers").joinpath(
                _BUNDLED
            )
            _default = cls.from_json(text.read_text(encoding="utf-8"))
        return _default

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, skip_incomplete: bool = False) -> PriceTable:
        """A table from LiteLLM-shaped data. With ``skip_incomplete``, entries without per-token
        prices (LiteLLM's image and audio models) are left out instead of raising."""
        return cls(_parse(data, skip_incomplete=skip_incomplete))

    @classmethod
    def from_json(cls, text: str | bytes, *, skip_incomplete: bool = False) -> PriceTable:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConfigError("prices", f"<invalid JSON: {error}>", "a JSON object") from None
        return cls.from_dict(data, skip_incomplete=skip_incomplete)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, skip_incomplete: bool = False) -> PriceTable:
        """A table from a JSON file, such as a copy of LiteLLM's."""
        with open(path, encoding="utf-8") as file:
            return cls.from_json(file.read(), skip_incomplete=skip_incomplete)

    def extend(self, prices: Mapping[str, Any]) -> PriceTable:
        """A new table with ``prices`` (LiteLLM-shaped data) added or replacing entries."""
        return PriceTable({**self._prices, **_parse(prices)})

    def with_prices(
        self,
        model: str,
        *,
        input_cost_per_token: float,
        output_cost_per_token: float,
        **limits: Any,
    ) -> PriceTable:
        """A new table where ``model`` has these prices (and optional ``max_input_tokens``,
        ``max_output_tokens``, ``litellm_provider``, ``mode``)."""
        unknown = set(limits) - {
            "max_input_tokens",
            "max_output_tokens",
            "litellm_provider",
            "mode",
        }
        if unknown:
            raise ConfigError(
                "with_prices",
                sorted(unknown)[0],
                "max_input_tokens, max_output_tokens, litellm_provider or mode",
            )
        entry = {
            "input_cost_per_token": input_cost_per_token,
            "output_cost_per_token": output_cost_per_token,
            **limits,
        }
        return self.extend({model: entry})

    # --- lookups ---------------------------------------------------------------------------------

    def resolve(self, model: str) -> str | None:
        """The table's name for ``model``, or None if the table does not know it."""
        if not isinstance(model, str):
            return None
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = next(filter(None, map(self._find, _candidates(model))), None)
        if len(self._memo) >= _MEMO_LIMIT:
            # Model names come from callers and servers: keep the memo bounded.
            self._memo.clear()
        self._memo[model] = found
        return found

    def _find(self, name: str) -> str | None:
        lowered = name.lower()
        return self._lower.get(lowered) or self._by_tail.get(lowered)

    def known(self, model: str) -> bool:
        return self.resolve(model) is not None

    def price(self, model: str) -> ModelPrice | None:
        name = self.resolve(model)
        return None if name is None else self._prices[name]

    def cost(self, model: str, usage: Usage, *, strict: bool = False) -> float:
        """USD for ``usage`` of ``model``: 0.0 for an unknown model, or with ``strict``
        :class:`UnknownModelError`."""
        if not isinstance(usage, Usage):
            raise ConfigError("usage", usage, "a Usage")
        price = self.price(model)
        if price is None:
            if strict:
                raise UnknownModelError(
                    model, "add it with PriceTable.extend() or PriceTable.with_prices()"
                )
            return 0.0
        return price.cost(usage)

    def completion_cost(self, completion: Completion, *, strict: bool = False) -> float:
        """USD for a completion, priced by the model that answered."""
        return self.cost(completion.model, completion.usage, strict=strict)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._prices)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The table as LiteLLM-shaped data (what :meth:`from_dict` reads)."""
        return {name: price.to_dict() for name, price in self._prices.items()}

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.known(model)

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"<PriceTable of {len(self._prices)} models>"


def _candidates(model: str) -> Iterator[str]:
    """Names to try, best first: the name, then without each leading ``provider/`` segment; each
    as it is, then without a version suffix."""
    parts = model.strip().split("/")
    for i in range(len(parts)):
        name = "/".join(parts[i:])
        if not name:
            continue
        yield name
        stripped = _VERSION_SUFFIX.sub("", name)
        if stripped and stripped != name:
            yield stripped
