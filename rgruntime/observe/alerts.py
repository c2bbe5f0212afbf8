"""Alerts as the caching guide writes them: a condition on the metric series, and actions.

``alerts.create(name, condition={"metric", "operator", "threshold", "window"}, actions=[...])``.
The runtime's metrics task evaluates every alert after each tick (:meth:`Alerts.evaluate`): the
metric is read over the last ``window`` of the series (to a bucket's length, the bucket in
progress included). A condition that holds fires the alert, at most once per ``cooldown``
(de-duplication: a condition that keeps holding, or clears and holds again within the cooldown,
fires once). Each firing runs the alert's actions concurrently in the metrics task's task
group, each under a timeout; one that fails is logged (logger ``rgruntime.alerts``) and counted,
never raised into the runtime. Fired alerts are kept in a bounded history.

Actions: ``"email"`` (SMTP, configured once with :meth:`Alerts.configure`; sent by the standard
library's ``smtplib`` in a worker thread), ``"slack"`` (Slack-style ``{"text": ...}`` JSON posted
to a webhook URL), ``"webhook"`` (the fired alert as JSON to a URL), ``"log"`` (a warning on the
``rgruntime.alerts`` logger), and any callable taking the :class:`FiredAlert` (async or not).
"""

from __future__ import annotations

import builtins
import datetime as dt
import inspect
import itertools
import logging
import operator as operators
import smtplib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Final

import anyio
import anyio.abc
import attrs
import httpx

from rgruntime.errors import ConfigError, InvalidArgumentError
from rgruntime.observe.metrics import MetricPoint
from rgruntime.units import parse_duration

__all__ = ["METRICS", "OPERATORS", "Alert", "AlertCondition", "Alerts", "FiredAlert"]

logger = logging.getLogger("rgruntime.alerts")

#: Fired alerts kept in the history.
HISTORY: Final = 1000
#: The longest an action may take.
ACTION_TIMEOUT: Final = 30.0
#: The default cooldown: a condition that holds fires at most once per this many seconds.
DEFAULT_COOLDOWN: Final = 900.0


def _rate(point: MetricPoint, name: str) -> float | None:
    return float(getattr(point, name)) if point.requests else None  # no lookups: no rate


#: The metrics a condition can watch, read from the window's summed interval.
METRICS: Final[Mapping[str, Callable[[MetricPoint], float | None]]] = {
    "cache_hit_rate": lambda point: _rate(point, "hit_rate"),
    "cache_miss_rate": lambda point: _rate(point, "miss_rate"),
    "hits": lambda point: point.hits,
    "misses": lambda point: point.misses,
    "requests": lambda point: point.requests,
    "evictions": lambda point: point.evictions,
    "expirations": lambda point: point.expirations,
    "invalidations": lambda point: point.invalidations,
    "load_failures": lambda point: point.load_failures,
    "load_time": lambda point: point.load_time if point.loads + point.load_failures else None,
    "tokens_saved": lambda point: point.tokens_saved,
    "cost_saved": lambda point: float(point.cost_saved),
    "memory_usage": lambda point: point.size_bytes,
    "entries": lambda point: point.entries,
}

OPERATORS: Final[Mapping[str, Callable[[float, float], bool]]] = {
    "less_than": operators.lt,
    "less_than_or_equal": operators.le,
    "greater_than": operators.gt,
    "greater_than_or_equal": operators.ge,
    "equal": operators.eq,
    "not_equal": operators.ne,
    "<": operators.lt,
    "<=": operators.le,
    ">": operators.gt,
    ">=": operators.ge,
    "==": operators.eq,
    "!=": operators.ne,
}

_CHANNELS: Final = ("email", "slack", "webhook", "log")

Action = str | Callable[["FiredAlert"], Any]


@attrs.frozen(kw_only=True)
class AlertCondition:
    metric: str
    operator: str
    threshold: float
    window: float  # seconds
    layer: str | None = None  # None: every layer summed

    @classmethod
    def parse(cls, condition: object) -> AlertCondition:
        if not isinstance(condition, Mapping):
            raise InvalidArgumentError(
                "condition", condition, "a dict with metric, operator, threshold and window"
            )
        unknown = set(condition) - {"metric", "operator", "threshold", "window", "layer"}
        if unknown:
            raise InvalidArgumentError(
                "condition", condition, "only metric, operator, threshold, window and layer"
            )
        metric = condition.get("metric")
        if metric not in METRICS:
            raise InvalidArgumentError("condition.metric", metric, f"one of {', '.join(METRICS)}")
        operator = condition.get("operator")
        if operator not in OPERATORS:
            raise InvalidArgumentError(
                "condition.operator", operator, f"one of {', '.join(OPERATORS)}"
            )
        threshold = condition.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidArgumentError("condition.threshold", threshold, "a number")
        window = parse_duration(
            condition.get("window", "5m"), field="condition.window", error=InvalidArgumentError
        )
        if window <= 0:
            raise InvalidArgumentError("condition.window", window, "a duration above 0")
        layer = condition.get("layer")
        if layer is not None and not isinstance(layer, str):
            raise InvalidArgumentError("condition.layer", layer, "a layer name or None")
        return cls(
            metric=str(metric),
            operator=str(operator),
            threshold=float(threshold),
            window=window,
            layer=layer,
        )

    def value(self, point: MetricPoint) -> float | None:
        if self.layer is not None:
            layer = point.layers.get(self.layer)
            if layer is None:
                return None
            point = attrs.evolve(point, **attrs.asdict(layer, recurse=False))
        return METRICS[self.metric](point)

    def holds(self, value: float) -> bool:
        return OPERATORS[self.operator](value, self.threshold)


@attrs.frozen(kw_only=True)
class Alert:
    id: str
    name: str
    condition: AlertCondition
    actions: tuple[Action, ...]
    cooldown: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "condition": attrs.asdict(self.condition),
            "actions": [
                action if isinstance(action, str) else repr(action) for action in self.actions
            ],
            "cooldown": self.cooldown,
        }


@attrs.frozen(kw_only=True)
class FiredAlert:
    """One firing: the value that crossed the threshold, and how each action went."""

    alert_id: str
    name: str
    metric: str
    operator: str
    threshold: float
    value: float
    window: float
    layer: str | None
    fired_at: dt.datetime
    #: action -> "sent", or "failed: <error>" (filled in as the actions finish).
    outcomes: dict[str, str] = attrs.field(factory=dict)

    @property
    def message(self) -> str:
        where = f" (layer {self.layer})" if self.layer else ""
        return (
            f"rgruntime alert {self.name!r}: {self.metric}{where} = {self.value:g} "
            f"{self.operator} {self.threshold:g} over the last {self.window:g} s"
        )

    def as_dict(self) -> dict[str, Any]:
        record = attrs.asdict(self)
        record["fired_at"] = self.fired_at.isoformat()
        record["message"] = self.message
        return record


@attrs.frozen(kw_only=True)
class AlertStats:
    evaluations: int
    fired: int
    suppressed: int  # held during a cooldown
    action_failures: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _action_name(action: Action) -> str:
    return action if isinstance(action, str) else getattr(action, "__name__", repr(action))


class Alerts:
    """``client.alerts`` (see the module documentation)."""

    def __init__(self, wall: Callable[[], float]) -> None:
        self._wall = wall
        self._alerts: dict[str, Alert] = {}
        self._last_fired: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._history: deque[FiredAlert] = deque(maxlen=HISTORY)
        self._channels: dict[str, Mapping[str, Any]] = {"log": {}}
        self._evaluations = self._fired = self._suppressed = 0
        self._failures: Counter[str] = Counter()
        self._smtp_limiter = anyio.CapacityLimiter(2)
        #: Called when an alert is created (the metrics task starts ticking).
        self.on_create: Callable[[], None] | None = None

    # -- configuration ----------------------------------------------------------------------------

    def configure(
        self,
        *,
        email: Mapping[str, Any] | None = None,
        slack: Mapping[str, Any] | None = None,
        webhook: Mapping[str, Any] | None = None,
    ) -> None:
        """Where actions send: ``email={"host", "port", "sender", "recipients", "username",
        "password", "starttls"}``, ``slack={"webhook_url"}``, ``webhook={"url", "headers"}``."""
        if email is not None:
            self._channels["email"] = _check_email(email)
        if slack is not None:
            self._channels["slack"] = {"url": _check_url("slack.webhook_url", slack, "webhook_url")}
        if webhook is not None:
            headers = webhook.get("headers", {})
            if not isinstance(headers, Mapping):
                raise ConfigError("webhook.headers", headers, "a dict of header names to values")
            self._channels["webhook"] = {
                "url": _check_url("webhook.url", webhook, "url"),
                "headers": dict(headers),
            }

    # -- alerts ---------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        condition: Mapping[str, Any],
        actions: Sequence[Action] = ("log",),
        *,
        cooldown: float | str = DEFAULT_COOLDOWN,
    ) -> Alert:
        """A new alert, evaluated from the next tick of the metrics task on."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("name", name, "a non-empty string")
        parsed = AlertCondition.parse(condition)
        if isinstance(actions, str) or not isinstance(actions, Iterable):
            raise InvalidArgumentError("actions", actions, "a list of actions")
        checked = []
        for action in actions:
            if isinstance(action, str):
                if action not in _CHANNELS:
                    raise InvalidArgumentError(
                        "actions", action, f"one of {', '.join(_CHANNELS)}, or a callable"
                    )
                if action not in self._channels:
                    raise ConfigError(
                        "actions",
                        action,
                        f"a configured channel: call alerts.configure({action}=...) first",
                    )
            elif not callable(action):
                raise InvalidArgumentError(
                    "actions", action, f"one of {', '.join(_CHANNELS)}, or a callable"
                )
            checked.append(action)
        seconds = parse_duration(cooldown, field="cooldown", error=InvalidArgumentError)
        alert = Alert(
            id=f"alert_{next(self._ids)}",
            name=name,
            condition=parsed,
            actions=tuple(checked),
            cooldown=seconds,
        )
        self._alerts[alert.id] = alert
        if self.on_create is not None:
            self.on_create()
        return alert

    def list(self) -> builtins.list[Alert]:
        return list(self._alerts.values())

    def get(self, alert_id: str) -> Alert:
        try:
            return self._alerts[alert_id]
        except (KeyError, TypeError):
            raise InvalidArgumentError("alert_id", alert_id, "the id of an alert") from None

    def delete(self, alert_id: str) -> bool:
        self._last_fired.pop(alert_id, None)
        return self._alerts.pop(alert_id, None) is not None

    def history(self, alert_id: str | None = None) -> builtins.list[FiredAlert]:
        """Fired alerts, oldest first (of one alert, if given)."""
        return [fired for fired in self._history if alert_id in (None, fired.alert_id)]

    def stats(self) -> AlertStats:
        return AlertStats(
            evaluations=self._evaluations,
            fired=self._fired,
            suppressed=self._suppressed,
            action_failures=dict(self._failures),
        )

    # -- evaluation (the metrics task) ----------------------------------------------------------

    def due(
        self, now: float, window: Callable[[float], MetricPoint]
    ) -> builtins.list[tuple[Alert, FiredAlert]]:
        """The alerts whose condition holds now and whose cooldown is over (pure: the caller
        runs their actions). ``window(seconds)`` sums the series over that window."""
        fired = []
        for alert in list(self._alerts.values()):
            self._evaluations += 1
            condition = alert.condition
            value = condition.value(window(condition.window))
            if value is None or not condition.holds(value):
                continue
            last = self._last_fired.get(alert.id)
            if last is not None and now - last < alert.cooldown:
                self._suppressed += 1
                continue
            self._last_fired[alert.id] = now
            self._fired += 1
            record = FiredAlert(
                alert_id=alert.id,
                name=alert.name,
                metric=condition.metric,
                operator=condition.operator,
                threshold=condition.threshold,
                value=float(value),
                window=condition.window,
                layer=condition.layer,
                fired_at=dt.datetime.fromtimestamp(self._wall(), dt.UTC),
            )
            self._history.append(record)
            fired.append((alert, record))
        return fired

    async def evaluate(
        self, group: anyio.abc.TaskGroup, now: float, window: Callable[[float], MetricPoint]
    ) -> None:
        """Fire what is due; its actions run in ``group``."""
        for alert, record in self.due(now, window):
            for action in alert.actions:
                group.start_soon(self._run, action, record, name=f"alert action {alert.name}")

    async def _run(self, action: Action, fired: FiredAlert) -> None:
        name = _action_name(action)
        try:
            with anyio.fail_after(ACTION_TIMEOUT):
                await self._send(action, fired)
        except Exception as error:  # a failing action never reaches the runtime
            self._failures[name] += 1
            fired.outcomes[name] = f"failed: {error!r}"[:300]
            logger.exception("alert %r: action %s failed", fired.name, name)
        else:
            fired.outcomes[name] = "sent"

    async def _send(self, action: Action, fired: FiredAlert) -> None:
        if not isinstance(action, str):
            result = action(fired)
            if inspect.isawaitable(result):
                await result
            return
        if action == "log":
            logger.warning("%s", fired.message)
            return
        channel = self._channels[action]
        if action == "email":
            message = _email(channel, fired)
            await anyio.to_thread.run_sync(_send_mail, channel, message, limiter=self._smtp_limiter)
            return
        payload = {"text": fired.message} if action == "slack" else fired.as_dict()
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(
                channel["url"], json=payload, headers=dict(channel.get("headers", {}))
            )
            response.raise_for_status()


def _check_url(field: str, settings: Mapping[str, Any], key: str) -> str:
    url = settings.get(key) if isinstance(settings, Mapping) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(field, url, "an http:// or https:// URL")
    return url


def _check_email(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(settings, Mapping):
        raise ConfigError("email", settings, "a dict with host, port, sender and recipients")
    host, port = settings.get("host"), settings.get("port", 25)
    if not isinstance(host, str) or not host:
        raise ConfigError("email.host", host, "the SMTP server's host name")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError("email.port", port, "a port number from 1 to 65535")
    sender = settings.get("sender")
    if not isinstance(sender, str) or "@" not in sender:
        raise ConfigError("email.sender", sender, "an email address")
    recipients = settings.get("recipients")
    if (
        isinstance(recipients, str)
        or not isinstance(recipients, Sequence)
        or not recipients
        or not all(isinstance(r, str) and "@" in r for r in recipients)
    ):
        raise ConfigError("email.recipients", recipients, "a non-empty list of email addresses")
    return dict(settings)


def _email(channel: Mapping[str, Any], fired: FiredAlert) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[rgruntime] alert: {fired.name}"
    message["From"] = channel["sender"]
    message["To"] = ", ".join(channel["recipients"])
    message.set_content(f"{fired.message}\n\nFired at {fired.fired_at.isoformat()}.\n")
    return message


def _send_mail(channel: Mapping[str, Any], message: EmailMessage) -> None:
    with smtplib.SMTP(channel["host"], channel.get("port", 25), timeout=10) as smtp:
        if channel.get("starttls"):
            smtp.starttls()
        if channel.get("username"):
            smtp.login(channel["username"], channel.get("password", ""))
        smtp.send_message(message)
