"""A circuit breaker for one remote store: pure synchronous steps on an injected clock.

While the server answers, every call goes through (``closed``). After :data:`FAILURES_TO_OPEN`
failures in a row the breaker opens: calls are refused at once instead of each waiting out the
store's timeout, so a dead server costs callers nothing but a miss. After a backoff (doubling from
:data:`FIRST_BACKOFF` to :data:`LAST_BACKOFF`) one call is let through as a probe
(``half_open``); its success closes the breaker, its failure opens it again for twice as long.

Each call let through gets a ticket from :meth:`Breaker.allow` and hands it back with its
outcome: while a probe is out, only the probe's own outcome counts. A call that started before
the probe (and fails, succeeds or is cancelled late) says nothing about the server now, and
must neither reopen the breaker for the probe nor let a second probe overlap it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal

__all__ = ["FAILURES_TO_OPEN", "FIRST_BACKOFF", "LAST_BACKOFF", "Breaker", "BreakerState"]

#: Consecutive failures that open the breaker: one refused connection can be a blip.
FAILURES_TO_OPEN: Final = 2
#: Seconds before the first probe after the breaker opens; doubled at each failed probe.
FIRST_BACKOFF: Final = 0.05
#: The longest wait between two probes: a server back after an outage is used within it.
LAST_BACKOFF: Final = 2.0

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    """Decides whether a call may go to the server (see the module documentation)."""

    __slots__ = (
        "_backoff",
        "_failures",
        "_issued",
        "_now",
        "_probe",
        "_retry_at",
        "opened",
        "state",
    )

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.state: BreakerState = "closed"
        self._failures = 0
        self._backoff = FIRST_BACKOFF
        self._retry_at = 0.0
        # Tickets handed out so far, and the probe's (None: no probe is out).
        self._issued = 0
        self._probe: int | None = None
        #: How many times the breaker opened.
        self.opened = 0

    def allow(self) -> int | None:
        """A ticket if a call may go to the server now (hand it to :meth:`succeeded`,
        :meth:`failed` or :meth:`abandoned` when the call ends); None: fail it at once."""
        if self.state != "closed":
            if self._probe is not None or self._now() < self._retry_at:
                return None
            self.state = "half_open"
        self._issued += 1
        if self.state == "half_open":
            self._probe = self._issued  # one probe at a time: the others keep failing fast
        return self._issued

    def retry_in(self) -> float:
        """Seconds until the next probe may run (0 when calls go through)."""
        if self.state == "closed":
            return 0.0
        return max(0.0, self._retry_at - self._now())

    def _not_the_probe(self, ticket: int) -> bool:
        """Whether a probe is out and ``ticket`` is another call's (its outcome is ignored)."""
        return self.state == "half_open" and ticket != self._probe

    def succeeded(self, ticket: int) -> None:
        if self._not_the_probe(ticket):
            return
        self.state = "closed"
        self._failures = 0
        self._backoff = FIRST_BACKOFF
        self._probe = None

    def failed(self, ticket: int) -> None:
        if self._not_the_probe(ticket):
            return
        self._failures += 1
        if self.state == "half_open":  # the probe failed: wait twice as long for the next
            self._backoff = min(self._backoff * 2, LAST_BACKOFF)
        elif self.state == "open" or self._failures < FAILURES_TO_OPEN:
            return  # already open (a call from before it opened), or not enough failures yet
        else:
            self.opened += 1
        self.state = "open"
        self._probe = None
        self._retry_at = self._now() + self._backoff

    def abandoned(self, ticket: int) -> None:
        """A call ended without an answer either way (cancelled): if it was the probe, another
        may run at once."""
        if self.state == "half_open" and ticket == self._probe:
            self.state = "open"
            self._probe = None
            self._retry_at = self._now()
