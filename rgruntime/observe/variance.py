"""Near-identical request keys that differ only in volatile parts (key variance).

A cache keyed on text misses whenever the text carries something that changes on every request:
a timestamp, a request id, a UUID, extra whitespace. :func:`template` masks those parts; two
different texts with the same template are the same request asked twice, and the second one's
miss is a miss that key normalisation would have turned into a hit. :class:`KeyVariance`
remembers a bounded number of recent templates and counts such misses, with which parts
differed.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict, deque
from typing import Final

__all__ = ["MAX_TEMPLATES", "VOLATILE_PARTS", "KeyVariance", "differing_parts", "template"]

#: Recent templates remembered (each with the last text seen for it).
MAX_TEMPLATES: Final = 4096
#: Recent misses remembered for the shares (each: who asked, and the parts that differed).
MAX_RECENT: Final = 10_000

#: The volatile parts, in the order they are masked (a timestamp before the numbers in it).
VOLATILE_PARTS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "timestamp",
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?"
            r"|\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"
            r"|\b1[5-9]\d{8}(?:\d{3})?(?:\.\d+)?\b"  # Unix seconds or milliseconds, 2017-2033
        ),
    ),
    (
        "uuid",
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
    ),
    ("id", re.compile(r"\b[0-9a-fA-F]{16,}\b|\b\d{4,}\b")),
)
_SPACES: Final = re.compile(r"\s+")


def template(text: str) -> str:
    """``text`` with its volatile parts masked and its whitespace collapsed."""
    for name, pattern in VOLATILE_PARTS:
        text = pattern.sub(f"<{name}>", text)
    return _SPACES.sub(" ", text).strip()


def differing_parts(first: str, second: str) -> tuple[str, ...]:
    """The kinds of volatile part in which two texts of one template differ."""
    parts = []
    masked_first, masked_second = first, second
    for name, pattern in VOLATILE_PARTS:
        if pattern.findall(masked_first) != pattern.findall(masked_second):
            parts.append(name)
        masked_first = pattern.sub(f"<{name}>", masked_first)
        masked_second = pattern.sub(f"<{name}>", masked_second)
    # Same template, volatile parts masked: whatever still differs is whitespace.
    if masked_first != masked_second:
        parts.append("whitespace")
    return tuple(parts)


class KeyVariance:
    """Misses on texts whose template was asked for recently under another text."""

    def __init__(self, max_templates: int = MAX_TEMPLATES, max_recent: int = MAX_RECENT) -> None:
        self._templates: OrderedDict[str, str] = OrderedDict()
        self._max_templates = max_templates
        #: (layer, agent id, parts) of recent misses; parts empty: not a variance miss.
        self.recent: deque[tuple[str, str | None, tuple[str, ...]]] = deque(maxlen=max_recent)
        #: One example per template that varied: (earlier text, later text).
        self.examples: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def miss(self, text: str, layer: str, agent_id: str | None = None) -> tuple[str, ...]:
        """A miss on ``text`` in ``layer`` (for ``agent_id``, if known). Returns the volatile
        parts it differs in from the last text of its template (empty: none)."""
        masked = template(text) if agent_id is None else f"{agent_id}\x00{template(text)}"
        previous = self._templates.pop(masked, None)
        self._templates[masked] = text
        if len(self._templates) > self._max_templates:
            self._templates.popitem(last=False)
        parts: tuple[str, ...] = ()
        if previous is not None and previous != text:
            parts = differing_parts(previous, text) or ("other",)
            self.examples[masked] = (previous, text)
            if len(self.examples) > 20:
                self.examples.popitem(last=False)
        self.recent.append((layer, agent_id, parts))
        return parts

    def shares(
        self, layers: frozenset[str] | None = None, agent_id: str | None = None
    ) -> tuple[int, int, Counter[str]]:
        """(misses seen, variance misses, count per part) among the recent misses in
        ``layers`` (None: all) of ``agent_id`` (None: anyone's)."""
        seen = varied = 0
        parts: Counter[str] = Counter()
        for layer, agent, differing in self.recent:
            if (layers is not None and layer not in layers) or (
                agent_id is not None and agent != agent_id
            ):
                continue
            seen += 1
            if differing:
                varied += 1
                parts.update(differing)
        return seen, varied, parts
