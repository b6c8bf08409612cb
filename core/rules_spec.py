"""Declarative rule definitions as written in profiles and site files (evaluated server-side)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.durations import Duration
from core.schedules import Schedule

# A schedule's name: one of the site calendar's `schedules`, or the built-in "curfew".
ScheduleName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


class Priority(StrEnum):
    P1 = "P1"  # emergency (抢修)
    P2 = "P2"  # urgent (急修)
    P3 = "P3"  # routine (一般)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkOrderSpec(_Strict):
    category: str
    priority: Priority


class RepeatSpec(_Strict):
    """Nuisance analytics: this many alerts of the rule on one device within `window` open
    one maintenance order (a latch or sensor to fix), instead of training staff to ignore it."""

    count: int = Field(ge=2)
    window: Duration
    work_order: WorkOrderSpec


class _RuleBase(_Strict):
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    severity: Severity
    description: str = ""
    notify: tuple[str, ...] = ()  # roles told, scoped to the device's building
    work_order: WorkOrderSpec | None = None
    repeat: RepeatSpec | None = None
    # While the site calendar says the building is closed (holidays), raise or stay quiet:
    # a canteen closed for the holidays does not page anyone for a switched-off fridge.
    when_closed: Literal["raise", "suppress"] = "raise"
    # The times the rule holds in (lessons, meal service, after curfew): a schedule's name or
    # one written in place; None = always. Evaluated by the rule runner for every kind
    # (server/rules/windows.py): input outside the window is ignored; when the window ends,
    # a delay still running is dropped and an alert of the rule is cleared.
    when: ScheduleName | Schedule | None = None
    enabled: bool = True


class ThresholdRule(_RuleBase):
    """Raise when a metric stays beyond a limit for `for_`; clear when back past `clear_*`."""

    kind: Literal["threshold"] = "threshold"
    metric: str
    above: float | None = None
    below: float | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    clear_below: float | None = None  # hysteresis for `above`
    clear_above: float | None = None  # hysteresis for `below`
    clear_for: Duration = timedelta(0)
    # A breach that starts within `after_event_window` of this device event (a defrost) needs
    # `after_event_for` instead of `for`: defrost lifts the air temperature for a while.
    after_event: str | None = None
    after_event_window: Duration = timedelta(hours=1)
    after_event_for: Duration | None = None
    # Readings in a row beyond the limit before it raises, as well as `for` (soil moisture:
    # two readings, so one odd value does not send the gardener out).
    consecutive: int = Field(default=1, ge=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _limits(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule needs exactly one of 'above' or 'below'")
        if (
            self.above is not None
            and self.clear_below is not None
            and (self.clear_below > self.above)
        ):
            raise ValueError("clear_below must not be above 'above'")
        if (
            self.below is not None
            and self.clear_above is not None
            and (self.clear_above < self.below)
        ):
            raise ValueError("clear_above must not be below 'below'")
        return self

    def breached(self, value: float) -> bool:
        if self.above is not None:
            return value > self.above
        assert self.below is not None
        return value < self.below

    def cleared(self, value: float) -> bool:
        if self.above is not None:
            limit = self.clear_below if self.clear_below is not None else self.above
            return value <= limit
        assert self.below is not None
        limit = self.clear_above if self.clear_above is not None else self.below
        return value >= limit


class OfflineRule(_RuleBase):
    """Raise when a device has sent nothing for `after`; only fresh data clears it."""

    kind: Literal["offline"] = "offline"
    after: Duration

    @model_validator(mode="after")
    def _always(self) -> OfflineRule:
        if self.when is not None:
            raise ValueError("an offline rule holds at all times: silence has no hours")
        return self


class EventRule(_RuleBase):
    """Raise at once when the device reports an event of this kind (door forced, tamper)."""

    kind: Literal["event"] = "event"
    event: str
    clear_event: str | None = None  # e.g. door_closed ends door_held_open


class StateRule(_RuleBase):
    """Raise when a (boolean or text) metric holds a value for `for_` (door open > 10 min)."""

    kind: Literal["state"] = "state"
    metric: str
    equals: bool | str | float
    for_: Duration = Field(default=timedelta(0), alias="for")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CountRule(_RuleBase):
    """Raise when an event repeats `count` times within `window` (5 invalid cards in 5 min);
    clears after a whole window without it."""

    kind: Literal["count"] = "count"
    event: str
    count: int = Field(ge=2)
    window: Duration


class RateRule(_RuleBase):
    """Raise when a metric rises (or falls) faster than `per_hour` over `window`."""

    kind: Literal["rate"] = "rate"
    metric: str
    rising_per_hour: float | None = None
    falling_per_hour: float | None = None
    window: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _one(self) -> RateRule:
        if (self.rising_per_hour is None) == (self.falling_per_hour is None):
            raise ValueError("a rate rule needs exactly one of rising_per_hour/falling_per_hour")
        return self


class NightFlowRule(_RuleBase):
    """Suspected leak: a cumulative meter shows flow in every hour of a night window.

    Judged once the window is over (at `judge_at` local time, on event time); cleared after
    `clean_nights` nights with at least one zero-flow hour. An hour with no readings at all
    counts as unknown, never as a clean hour.
    """

    kind: Literal["night_flow"] = "night_flow"
    metric: str  # cumulative volume
    start_hour: int = Field(default=0, ge=0, le=23)
    end_hour: int = Field(default=6, ge=1, le=24)  # exclusive
    judge_at_hour: int = Field(default=7, ge=0, le=23)
    min_flow: float = Field(default=0.0, ge=0)  # per hour, in the metric's unit
    clean_nights: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _own_hours(self) -> NightFlowRule:
        if self.when is not None:
            raise ValueError("a night_flow rule has its own hours (start_hour, end_hour)")
        return self


AnyRule = ThresholdRule | OfflineRule | EventRule | StateRule | CountRule | RateRule | NightFlowRule
"""Every rule kind; each is evaluated by its module in server/rules/kinds/."""

RuleSpec = Annotated[AnyRule, Field(discriminator="kind")]
