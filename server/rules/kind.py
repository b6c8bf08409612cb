"""What every rule kind shares: its inputs, its typed frozen state, the events it emits, and
the one place where old input is ignored. Pure: no I/O, no clock but the one passed in.

A kind (server/rules/kinds/<kind>.py) is a `KindDef`: its rule spec type, its state type,
and functions for the inputs it reacts to. The runner never sees a kind's own types: it
holds `BoundRule`s (a spec bound to its kind) and hands them the stored JSON state, so
dispatch stays typed without a registry of `Any` handlers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

from core.readings import Value, unix_ms
from core.rules_spec import AnyRule

JsonState = dict[str, object]
"""A rule's state as persisted (the rule_state table's JSON column)."""


@dataclass(frozen=True, slots=True)
class RuleEvent:
    kind: Literal["raise", "clear"]
    rule: AnyRule
    device_id: str
    at: datetime
    value: float | None
    message: str
    peak: float | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may know beyond its own state and input."""

    device_id: str
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    # The device's offline limit: a delay never runs out across a silence this long (the
    # condition is unknown then, and the offline rule speaks for the device).
    silence: timedelta | None = None
    last_seen: datetime | None = None  # receive time of the device's newest message


@dataclass(frozen=True, slots=True)
class MetricSample:
    metric: str
    value: Value
    unit: str | None
    at: datetime
    # Event time of the device's newest data before this reading (offline gaps in bursts).
    previous_at: datetime | None = None

    @property
    def key(self) -> tuple[int, str]:
        return (unix_ms(self.at), "")

    @property
    def number(self) -> float | None:
        v = self.value
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True, slots=True)
class EventSample:
    kind: str
    event_id: str
    at: datetime

    @property
    def key(self) -> tuple[int, str]:
        return (unix_ms(self.at), self.event_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleState:
    """Fields every kind's state has. `last` is the newest input taken, as (epoch ms, id)."""

    last: tuple[int, str] | None = None
    active: bool = False


R = TypeVar("R", bound=AnyRule)
S = TypeVar("S", bound=RuleState)
Step = tuple[S, list[RuleEvent]]

OnReading = Callable[[R, S, MetricSample, RuleContext], "Step[S]"]
OnEvent = Callable[[R, S, EventSample, RuleContext], "Step[S]"]
OnTime = Callable[[R, S, datetime, RuleContext], "Step[S]"]


def ms(at: datetime) -> int:
    return unix_ms(at)


def dt(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def silent_at(s: RuleState, when: int, ctx: RuleContext) -> bool:
    """True if, at `when` (epoch ms), the device had been silent for its offline limit since
    the input `s` last took: a delay running out then has nothing to stand on."""
    if ctx.silence is None or s.last is None:
        return False
    return when - s.last[0] >= ctx.silence.total_seconds() * 1000


class BoundRule(Protocol):
    """A rule spec bound to its kind, as the runner sees it. Each call takes the stored state
    and returns the new one (None: unchanged) with the events it caused."""

    @property
    def spec(self) -> AnyRule: ...

    @property
    def metric(self) -> str | None: ...

    @property
    def takes_readings(self) -> bool: ...

    @property
    def takes_events(self) -> bool: ...

    @property
    def takes_time(self) -> bool: ...

    def reading(
        self, stored: JsonState, x: MetricSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]: ...

    def event(
        self, stored: JsonState, x: EventSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]: ...

    def time(
        self, stored: JsonState, now: datetime, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]: ...

    def forget(self, stored: JsonState) -> JsonState | None: ...


class Binder(Protocol):
    def bind(self, spec: AnyRule) -> BoundRule | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class KindDef(Generic[R, S]):
    """One rule kind. `ordered` names the input whose order matters: input of that kind at or
    before the newest one taken is ignored (redelivery, a replayed burst), here and only here.
    Other inputs (a defrost mark, fresh data ending an offline alert) are idempotent."""

    spec_type: type[R]
    state_type: type[S]
    ordered: Literal["readings", "events", "none"]
    on_reading: OnReading[R, S] | None = None
    on_event: OnEvent[R, S] | None = None
    on_time: OnTime[R, S] | None = None
    # A person resolved the alert: a condition that persists must raise a new one.
    forget: Callable[[S], S] = lambda s: dataclasses.replace(s, active=False)
    metric_of: Callable[[R], str | None] = lambda _spec: None
    # Whether a rule of this kind wants device events at all (a threshold only with an
    # `after_event`), so events do not load the state of rules they cannot move.
    hears_events: Callable[[R], bool] = lambda _spec: True

    def bind(self, spec: AnyRule) -> BoundRule | None:
        if isinstance(spec, self.spec_type):
            return _Bound(self, spec)
        return None

    def load(self, stored: JsonState) -> S:
        return load_state(self.state_type, stored)


class _Bound(Generic[R, S]):
    __slots__ = ("_kind", "_spec")

    def __init__(self, kind: KindDef[R, S], spec: R) -> None:
        self._kind = kind
        self._spec = spec

    @property
    def spec(self) -> AnyRule:
        return self._spec

    @property
    def metric(self) -> str | None:
        return self._kind.metric_of(self._spec)

    @property
    def takes_readings(self) -> bool:
        return self._kind.on_reading is not None

    @property
    def takes_events(self) -> bool:
        return self._kind.on_event is not None and self._kind.hears_events(self._spec)

    @property
    def takes_time(self) -> bool:
        return self._kind.on_time is not None

    def reading(
        self, stored: JsonState, x: MetricSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        fn = self._kind.on_reading
        if fn is None:
            return None, []
        s = self._kind.load(stored)
        if self._kind.ordered != "readings":
            return _dumped(s, fn(self._spec, s, x, ctx))
        if s.last is not None and x.key <= s.last:
            return None, []
        after, events = fn(self._spec, s, x, ctx)  # the kind sees the previous `last`
        return _dumped(s, (dataclasses.replace(after, last=x.key), events))

    def event(
        self, stored: JsonState, x: EventSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        fn = self._kind.on_event
        if fn is None:
            return None, []
        s = self._kind.load(stored)
        if self._kind.ordered != "events":
            return _dumped(s, fn(self._spec, s, x, ctx))
        if s.last is not None and x.key <= s.last:
            return None, []
        after, events = fn(self._spec, s, x, ctx)  # the kind sees the previous `last`
        return _dumped(s, (dataclasses.replace(after, last=x.key), events))

    def time(
        self, stored: JsonState, now: datetime, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        fn = self._kind.on_time
        if fn is None:
            return None, []
        s = self._kind.load(stored)
        return _dumped(s, fn(self._spec, s, now, ctx))

    def forget(self, stored: JsonState) -> JsonState | None:
        s = self._kind.load(stored)
        after = self._kind.forget(s)
        return None if after == s else dump_state(after)


def _dumped(
    before: RuleState, step: tuple[RuleState, list[RuleEvent]]
) -> tuple[JsonState | None, list[RuleEvent]]:
    after, events = step
    if after == before:
        return None, events
    return dump_state(after), events


# -- persisted form ------------------------------------------------------------------------


def dump_state(s: RuleState) -> JsonState:
    return {f.name: _json(getattr(s, f.name)) for f in dataclasses.fields(s)}


def _json(v: object) -> object:
    if isinstance(v, tuple):
        return [_json(i) for i in v]
    return v


def load_state(cls: type[S], stored: JsonState) -> S:
    """The typed state from its JSON form. Unknown keys are ignored and missing ones take
    their defaults, so state written by an older release still loads (a half-elapsed delay
    survives an upgrade too)."""
    raw = dict(stored)
    if "last" not in raw and isinstance(raw.get("last_ts"), int):
        raw["last"] = [raw["last_ts"], ""]  # the form before rule kinds had one freshness key
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {k: _tupled(v) for k, v in raw.items() if k in names}
    return cls(**kwargs)


def _tupled(v: object) -> object:
    if isinstance(v, list):
        return tuple(_tupled(i) for i in v)
    return v
