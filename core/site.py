"""Site configuration: buildings, which device uses which profile where, rule overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

import sites
from core.durations import Duration
from core.profiles import (
    ClassCatalogue,
    ClassName,
    MqttTransport,
    Profile,
    class_metrics_missing,
    known_class,
)
from core.roles import BUILT_IN, RoleBook, RoleSpec
from core.rules_spec import Severity
from core.schedules import CURFEW, DayFacts, Schedule
from core.schedules import WEEKDAYS as WEEKDAYS  # re-exported: first defined here
from core.schedules import Weekday as Weekday
from core.yamlfile import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The demo campus, shipped as package data: the settings' default site file.
DEFAULT_SITE_FILE = sites.DEMO_SITE_FILE
DEFAULT_CURFEW = time(23, 0)  # shared/DOMAIN.md, "Dormitories"
# A dorm's curfew lasts until this the next morning (the built-in `curfew` schedule); own
# default: dorm doors open for the day at 06:00.
DEFAULT_CURFEW_ENDS = time(6, 0)


# A language tag as browsers send it (zh-CN, en, en-GB).
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class Text(_Strict):
    """A name (and, for a device, its location) in another language than the site's."""

    name: str | None = None
    location: str | None = None


class SiteText(_Strict):
    """The site's name and its rule names in another language than the site's."""

    name: str | None = None
    rule_names: dict[str, str] = Field(default_factory=dict)


class Building(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str  # in the site's language
    translations: dict[LanguageTag, Text] = Field(default_factory=dict)
    kind: Literal["canteen", "dorm", "teaching", "office", "utility", "other"] = "other"
    # Dorms: entries after this are late returns. A dorm without the key gets the default;
    # `curfew: null` says the building has none (staff housing).
    curfew: time | None = None

    @model_validator(mode="before")
    @classmethod
    def _dorm_default_curfew(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "dorm" and "curfew" not in data:
            return {**data, "curfew": DEFAULT_CURFEW}
        return data


class DeviceConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    profile: str
    building: str
    location: str  # in the site's language
    name: str | None = None  # what people call it, in the site's language (default: the id)
    translations: dict[LanguageTag, Text] = Field(default_factory=dict)
    room: str | None = None
    gateway: str = "gw-1"
    # Transport address: MQTT topic name, Modbus slave id, DL/T 645 meter address.
    address: str | None = None
    bus: str | None = None  # serial devices: a key of the site's `buses`
    # A generic probe can sit in a fridge, a freezer or a room: the site says which.
    device_class: ClassName | None = None
    # Values of the profile topic's other placeholders ({application_id} of a LoRaWAN
    # network server's application), so the device has one exact topic.
    topic_values: dict[str, str] = Field(default_factory=dict)

    _class = field_validator("device_class")(known_class)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, name: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("profiles")
        if known is not None and name not in known:
            raise ValueError(f"unknown profile {name!r}; device_profiles/ has no {name}.yaml")
        return name

    @model_validator(mode="after")
    def _topic_values(self, info: ValidationInfo) -> DeviceConfig:
        wanted = (info.context or {}).get("topic_placeholders", {}).get(self.profile)
        if wanted is None:
            return self
        missing = sorted(set(wanted) - set(self.topic_values))
        extra = sorted(set(self.topic_values) - set(wanted))
        if missing or extra:
            raise ValueError(
                f"device {self.id!r}: topic_values must give exactly {sorted(wanted)} for "
                f"profile {self.profile}'s topic (missing {missing}, unknown {extra})"
            )
        for name, value in self.topic_values.items():
            if not value or "/" in value or "+" in value or "#" in value:
                raise ValueError(f"device {self.id!r}: topic_values.{name} is not a topic level")
        return self

    def mqtt_topic(self, site: str, transport: MqttTransport) -> str:
        """The device's exact topic under its profile's template."""
        return transport.topic_for(site, self.transport_address, self.topic_values)

    @model_validator(mode="after")
    def _class_metrics(self, info: ValidationInfo) -> DeviceConfig:
        """A device filed under another class than its profile's reports that class's
        metrics (the context maps profile -> its metric keys)."""
        reports = (info.context or {}).get("profiles")
        if self.device_class is None or not isinstance(reports, Mapping):
            return self
        missing = class_metrics_missing(self.device_class, reports.get(self.profile, ()), info)
        if missing:
            raise ValueError(
                f"device {self.id!r}: a {self.device_class} reports {missing}, which profile "
                f"{self.profile} does not"
            )
        return self

    @property
    def transport_address(self) -> str:
        return self.address or self.id


class SerialLine(_Strict):
    """One RS-485 line. Meters on a line are set alike, so its settings override the profiles'
    defaults (shared/DOMAIN.md: DL/T 645 commonly 2400 baud 8E1, Modbus RTU often 9600 8N1)."""

    # The adapter, best by a stable name (/dev/serial/by-id/...). The gateway's serial_ports
    # setting wins over it, for a host whose adapters are named differently.
    port: str | None = None
    baudrate: int | None = Field(default=None, ge=300, le=115200)
    parity: Literal["N", "E", "O"] | None = None
    stopbits: Literal[1, 2] | None = None


class Closure(_Strict):
    """A period a building is closed (holidays): rules with when_closed=suppress stay quiet."""

    name: str
    start: date
    end: date  # inclusive
    buildings: tuple[str, ...] = ()  # empty = the whole site


class CurfewChange(_Strict):
    """A different curfew for a period (exam weeks, summer timetable) and/or some weekdays
    (a later curfew on Friday and Saturday nights). The night's evening decides."""

    name: str
    curfew: time
    start: date | None = None
    end: date | None = None  # inclusive
    weekdays: tuple[Weekday, ...] = ()  # empty = every day
    buildings: tuple[str, ...] = ()  # empty = every building that has a curfew

    def applies(self, building_id: str, night: date) -> bool:
        return (
            (self.start is None or self.start <= night)
            and (self.end is None or night <= self.end)
            and (not self.weekdays or WEEKDAYS[night.weekday()] in self.weekdays)
            and (not self.buildings or building_id in self.buildings)
        )


class Calendar(_Strict):
    """The school calendar: terms, closures (holidays), exam weeks and curfew changes, and
    the named schedules rules hold in (`when:`), which the calendar selects day by day
    (core/schedules.py): lessons only in term and not on holidays, exam sessions in exam
    weeks."""

    terms: tuple[Closure, ...] = ()
    closures: tuple[Closure, ...] = ()
    exam_weeks: tuple[Closure, ...] = ()
    curfews: tuple[CurfewChange, ...] = ()  # later entries win
    curfew_ends: time = DEFAULT_CURFEW_ENDS
    schedules: dict[str, Schedule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _schedules(self) -> Calendar:
        if CURFEW in self.schedules:
            raise ValueError(f"schedules: {CURFEW!r} is built in (each dorm's curfew)")
        for name, schedule in self.schedules.items():
            if schedule.term_only and not self.terms:
                raise ValueError(f"schedules.{name}: term_only, but the calendar lists no terms")
        return self

    def knows(self, when: str | Schedule) -> bool:
        """A rule's `when` names a schedule there is (or is one written in place)."""
        return not isinstance(when, str) or when == CURFEW or when in self.schedules

    def facts(self, building: str | None, day: date) -> DayFacts:
        def covers(periods: tuple[Closure, ...]) -> bool:
            return any(
                c.start <= day <= c.end and (not c.buildings or building in c.buildings)
                for c in periods
            )

        return DayFacts(
            in_term=covers(self.terms),
            closed=covers(self.closures),
            exam_week=covers(self.exam_weeks),
        )


class RuleOverride(_Strict):
    """Change a profile's default rule for a device class, a building or one device."""

    rule: str
    device_class: str | None = None
    building: str | None = None
    device: str | None = None
    set: dict[str, Any]


# The roles a site file may name: the built-in ones and those its own `roles:` declares. Set
# while a SiteConfig validates (SiteConfig._with_roles), so each field naming a role is
# checked where it stands and its error names that line.
_ROLE_BOOK: ContextVar[RoleBook | None] = ContextVar("site_roles", default=None)
_BUILT_IN_ROLES = RoleBook()


def _roles() -> RoleBook:
    return _ROLE_BOOK.get() or _BUILT_IN_ROLES


def _known_role(role: str) -> str:
    """The audiences a rule's `notify`, a channel's `role` and an escalation chain may name."""
    _roles().spec(role)  # raises naming the known roles
    return role


_ROLE_SPECS = TypeAdapter(dict[str, RoleSpec])


def _site_roles(data: object) -> RoleBook:
    raw = data.get("roles") if isinstance(data, dict) else None
    try:
        return RoleBook(_ROLE_SPECS.validate_python(raw or {}))
    except (ValidationError, ValueError):
        return RoleBook()  # the `roles` field reports what is wrong with it, at its line


class NotificationChannel(_Strict):
    """Where one audience is told: an Apprise URL (mailto://, json://, wecombot://,
    dingtalk://, ...) whose secrets are written as ${ENV_VAR} and read from the environment
    when sent, so they never sit in the site file or the logs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    url: str = Field(repr=False)  # may carry a secret once expanded; keep it out of reprs
    role: str  # the audience: rules name roles in their `notify` list
    buildings: tuple[str, ...] = ()  # empty = every building (a dorm manager: theirs)
    min_severity: Severity = Severity.WARNING
    # A person's own channel (their username): it also hears about the work orders assigned
    # to them (an order past its deadline), besides what its role hears.
    user: str | None = Field(default=None, max_length=64)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        return _known_role(value)

    @model_validator(mode="after")
    def _scoped(self) -> NotificationChannel:
        if _roles().building_scoped(self.role) and not self.buildings:
            raise ValueError(
                f"channel {self.id!r}: a {self.role} hears only about their buildings; "
                "list them in 'buildings'"
            )
        return self


# Time without acknowledgement before each escalation step, by severity. Critical follows
# the P1 commitment (accept within 10 min); warnings reach the director after 30 min
# (DOMAIN.md, "Roles": escalations, unacknowledged 30 min); major in between is our own.
# Info alerts never escalate.
DEFAULT_ESCALATION_AFTER: dict[Severity, timedelta] = {
    Severity.CRITICAL: timedelta(minutes=10),
    Severity.MAJOR: timedelta(minutes=15),
    Severity.WARNING: timedelta(minutes=30),
}


def _per_severity(value: Any) -> Any:
    """One duration for every severity, or a mapping severity -> duration."""
    if isinstance(value, dict):
        return value
    return dict.fromkeys(Severity, value)


class Escalation(_Strict):
    """An active alert nobody acknowledged escalates step by step: step k goes to
    `chain[k-1]` once the alert is k x `after[severity]` old unacknowledged (the chain is
    picked by the first role the alert's rule notifies, from `chains`, else `chain`). Everyone
    told so far is reminded every `remind_every` until someone acknowledges (at most
    `max_reminders` times if set)."""

    after: Annotated[dict[Severity, Duration], BeforeValidator(_per_severity)] = Field(
        default_factory=lambda: dict(DEFAULT_ESCALATION_AFTER)
    )
    chain: tuple[str, ...] = ("admin",)
    chains: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    remind_every: Duration = timedelta(minutes=30)  # 0 = no reminders
    max_reminders: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _roles(self) -> Escalation:
        for first, chain in [("chain", self.chain), *self.chains.items()]:
            if first != "chain":
                _known_role(first)
            for role in chain:
                _known_role(role)
        for severity, after in self.after.items():
            if after <= timedelta(0):
                raise ValueError(f"after.{severity}: must be longer than 0")
        return self

    def chain_for(self, roles: tuple[str, ...]) -> tuple[str, ...]:
        return self.chains.get(roles[0], self.chain) if roles else self.chain


class Notifications(_Strict):
    channels: tuple[NotificationChannel, ...] = ()
    # An open work order past its repair deadline is told once to its assignee's own channel
    # and to these roles (the maintenance team's lead reads the maintenance channel).
    overdue_notify: tuple[str, ...] = ("maintenance",)
    max_per_hour: int = Field(default=30, gt=0)  # per channel; the rest goes into a digest
    # A device and rule raised again on a channel within this window (a flapping door) is
    # held for the digest instead of paging again.
    flap_window: Duration = timedelta(minutes=30)
    digest_every: Duration = timedelta(minutes=30)  # at most one digest per channel per this
    escalation: Escalation = Escalation()

    @model_validator(mode="after")
    def _unique_ids(self) -> Notifications:
        seen: set[str] = set()
        for ch in self.channels:
            if ch.id in seen:
                raise ValueError(f"channel id {ch.id!r} appears twice")
            seen.add(ch.id)
        return self


class SiteConfig(_Strict):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    # The language names in this file are written in; the web UI shows them as written and
    # takes other languages from `translations` (shared/DESIGN.md: zh-CN first).
    language: LanguageTag = "zh-CN"
    timezone: str = "UTC"
    note: str = ""
    buildings: tuple[Building, ...]
    devices: tuple[DeviceConfig, ...]
    buses: dict[str, SerialLine] = Field(default_factory=dict)
    rule_overrides: tuple[RuleOverride, ...] = ()
    calendar: Calendar = Calendar()
    notifications: Notifications = Notifications()
    # The cold-chain record: compliance limits, meals and sample retention (ColdChain below).
    cold_chain: ColdChain = Field(default_factory=lambda: ColdChain())
    # Patrol rounds (巡查): checkpoints and routes with their schedules (Patrols below).
    patrols: Patrols = Field(default_factory=lambda: Patrols())
    # The site's own roles beside the built-in ones (core/roles.py): what each may do
    # (`acts_as` a built-in role) and what it sees (buildings, device classes, categories).
    roles: dict[str, RoleSpec] = Field(default_factory=dict)
    # What people call each rule, in the site's language (rule id -> name).
    rule_names: dict[str, str] = Field(default_factory=dict)
    translations: dict[LanguageTag, SiteText] = Field(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _with_roles(cls, data: Any, handler: ModelWrapValidatorHandler[SiteConfig]) -> SiteConfig:
        token = _ROLE_BOOK.set(_site_roles(data))
        try:
            return handler(data)
        finally:
            _ROLE_BOOK.reset(token)

    @field_validator("roles")
    @classmethod
    def _new_names(cls, roles: dict[str, RoleSpec]) -> dict[str, RoleSpec]:
        for name in roles:
            if name in BUILT_IN:
                raise ValueError(f"{name!r} is a built-in role; give the site's role another name")
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"role name {name!r}: lower-case letters, digits and _")
        return roles

    @property
    def role_book(self) -> RoleBook:
        return RoleBook(self.roles)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> SiteConfig:
        buildings = {b.id for b in self.buildings}
        seen: set[str] = set()
        for d in self.devices:
            if d.id in seen:
                raise ValueError(f"device id {d.id!r} appears twice")
            seen.add(d.id)
            if d.building not in buildings:
                raise ValueError(f"device {d.id!r} names unknown building {d.building!r}")
            if self.buses and d.bus is not None and d.bus not in self.buses:
                raise ValueError(
                    f"device {d.id!r} names unknown bus {d.bus!r} (buses: {sorted(self.buses)})"
                )
        for ch in self.notifications.channels:
            for b in ch.buildings:
                if b not in buildings:
                    raise ValueError(f"notification channel {ch.id!r} names unknown building {b!r}")
        for change in self.calendar.curfews:
            for b in change.buildings:
                if b not in buildings:
                    raise ValueError(f"curfew change {change.name!r} names unknown building {b!r}")
        self.cold_chain.check_references(self)
        self.patrols.check_references(self)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _devices_by_id(self) -> dict[str, DeviceConfig]:
        # A lookup per device of a 5,000-device list was a scan each: 2/3 of /api/devices.
        return {d.id: d for d in self.devices}

    @cached_property
    def _buildings_by_id(self) -> dict[str, Building]:
        return {b.id: b for b in self.buildings}

    def device(self, device_id: str) -> DeviceConfig | None:
        return self._devices_by_id.get(device_id)

    def building(self, building_id: str) -> Building | None:
        return self._buildings_by_id.get(building_id)

    def curfew_for(self, building_id: str, night: date) -> time | None:
        """The curfew of the night starting on the evening of `night` (None: no curfew)."""
        b = self.building(building_id)
        if b is None or b.curfew is None:
            return None
        curfew = b.curfew
        for change in self.calendar.curfews:
            if change.applies(building_id, night):
                curfew = change.curfew
        return curfew

    def is_closed(self, building_id: str | None, at: datetime) -> bool:
        day = at.astimezone(self.tz).date()
        return any(
            c.start <= day <= c.end and (not c.buildings or building_id in c.buildings)
            for c in self.calendar.closures
        )


def load_site(
    path: Path, profiles: dict[str, Profile], classes: ClassCatalogue | None = None
) -> SiteConfig:
    """The site file, its devices' profiles and classes checked where they are written.

    `classes`: the device classes a device may name, with the metrics each expects (the
    catalogue of the profiles' folder); by default the shipped catalogue and every class
    the loaded profiles use."""
    if classes is None:
        from core.device_classes import load_catalogue  # it imports this module

        shipped = {name: c.metrics for name, c in load_catalogue().items()}
        classes = {p.device_class: () for p in profiles.values()} | shipped
    context = {
        "profiles": {name: frozenset(m.key for m in p.metrics) for name, p in profiles.items()},
        "device_classes": classes,
        "topic_placeholders": {
            name: p.transport.placeholders
            for name, p in profiles.items()
            if isinstance(p.transport, MqttTransport)
        },
    }
    return load_model(SiteConfig, path, context)


# -- cold chain (server/coldchain/, docs/cold-chain.md) ------------------------------------


class ComplianceLimits(_Strict):
    """The legal storage limits a cold-chain record is judged against: separate from the
    alarm limits of the rules (those may warn earlier or wait longer). Defaults per device
    class live in device_profiles/classes/<class>.yaml (`compliance:`), with their source."""

    metric: str = "temperature"
    min: float | None = None  # below this is out of range
    max: float | None = None  # above this is out of range
    # Readings further apart than this leave the whole time between them unknown (a gap):
    # never counted as in range (shared/DOMAIN.md). Own default: three 5-minute reports.
    max_gap: Duration = timedelta(minutes=15)
    source: str = ""

    @model_validator(mode="after")
    def _range(self) -> ComplianceLimits:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        if self.max_gap <= timedelta(0):
            raise ValueError("max_gap must be longer than 0")
        return self


class ComplianceOverride(_Strict):
    """A site's own limits for a device class or one device (a school that keeps chilled
    food at or below 5 °C as the FDA advises): the fields given replace the class's."""

    device_class: str | None = None
    device: str | None = None
    min: float | None = None
    max: float | None = None
    max_gap: Duration | None = None

    @model_validator(mode="after")
    def _target(self) -> ComplianceOverride:
        if (self.device_class is None) == (self.device is None):
            raise ValueError("name exactly one of device_class or device")
        return self


class Meal(_Strict):
    """A meal service whose dishes are sampled (留样). `ends` is when service ends; samples
    are due within `samples.log_within` after it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    ends: time
    weekdays: tuple[Weekday, ...] = ()  # empty = every day
    buildings: tuple[str, ...] = ()  # canteens serving it; empty = every canteen
    # The usual dishes; the day's menu entered through the API replaces them for that day.
    dishes: tuple[str, ...] = ()

    def served_on(self, day: date) -> bool:
        return not self.weekdays or WEEKDAYS[day.weekday()] in self.weekdays


class SampleRules(_Strict):
    """Sample retention (留样): 学校食品安全与营养健康管理规定 (2019), shared/DOMAIN.md."""

    min_weight_g: float = Field(default=125.0, gt=0)  # some schools require 200 g
    retain: Duration = timedelta(hours=48)
    log_within: Duration = timedelta(hours=1)  # after the meal ends (own timing)


class ColdChain(_Strict):
    compliance: tuple[ComplianceOverride, ...] = ()
    meals: tuple[Meal, ...] = ()
    samples: SampleRules = SampleRules()
    # An excursion with no corrective action this long after it started notifies the
    # food-safety officer once and shows as open (own; HACCP asks for an action on every
    # deviation, the sample fridge's samples must move within 30 min).
    action_due: Duration = timedelta(hours=2)
    # A day's record is closed (and chained) this long after local midnight, so readings the
    # gateway buffered during an outage are in it; later ones are corrections.
    day_close_after: Duration = timedelta(hours=1)
    # A reading that reached the gateway or the server this much after it was measured
    # counts as late (delivered from a buffer) in the daily record.
    late_after: Duration = timedelta(minutes=5)
    calibration_warn_before: Duration = timedelta(days=14)
    # Raw compliance readings are kept this long (at least 2 years: Food Safety Law); daily
    # records, excursions, actions, samples and sign-offs are never deleted.
    keep_readings: Duration = timedelta(days=731)

    @model_validator(mode="after")
    def _checks(self) -> ColdChain:
        seen: set[str] = set()
        for meal in self.meals:
            if meal.id in seen:
                raise ValueError(f"meal id {meal.id!r} appears twice")
            seen.add(meal.id)
        if self.keep_readings < timedelta(days=730):
            raise ValueError("keep_readings: cold-chain records are kept at least 2 years (730d)")
        return self

    def check_references(self, site: SiteConfig) -> None:
        buildings = {b.id for b in site.buildings}
        devices = {d.id for d in site.devices}
        for ov in self.compliance:
            if ov.device is not None and ov.device not in devices:
                raise ValueError(f"cold_chain.compliance names unknown device {ov.device!r}")
        for meal in self.meals:
            for b in meal.buildings:
                if b not in buildings:
                    raise ValueError(f"cold_chain meal {meal.id!r} names unknown building {b!r}")


# -- patrol rounds (server/patrols/, docs/patrols.md) ----------------------------------------


class PatrolText(_Strict):
    name: str | None = None


class PatrolCheckpoint(_Strict):
    """A place a guard proves they passed: a card reader (`device`, whose `patrol_scan`
    events count) and/or a QR code scanned on the phone page (POST /api/patrols/scans)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    building: str
    name: str  # in the site's language
    translations: dict[LanguageTag, PatrolText] = Field(default_factory=dict)
    device: str | None = None  # the reader at the checkpoint, if it has one


class RoundTimes(_Strict):
    """Rounds start at `from`, then every `every`, while before `to` (past midnight when `to`
    is earlier); times before the route's first `from` are the next morning."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: time = Field(alias="from")
    end: time = Field(alias="to")
    every: Duration

    @model_validator(mode="after")
    def _step(self) -> RoundTimes:
        if self.every < timedelta(minutes=5):
            raise ValueError("every: rounds at least 5 minutes apart")
        return self


class PatrolRoute(_Strict):
    """A building's route: its checkpoints, in walking order, scanned in every round. A round
    is complete when every checkpoint was scanned within `within` + `grace` of its start;
    incomplete when some were; missed when none was. Either notifies `notify` once."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    building: str
    name: str
    translations: dict[LanguageTag, PatrolText] = Field(default_factory=dict)
    checkpoints: tuple[str, ...] = Field(min_length=1)
    rounds: tuple[RoundTimes, ...] = Field(min_length=1)
    # shared/DOMAIN.md: a round finishes within 30 min + 10 min grace (practice).
    within: Duration = timedelta(minutes=30)
    grace: Duration = timedelta(minutes=10)
    notify: tuple[str, ...] = ("dorm_manager", "security")
    # On days the calendar closes the building (holidays), no rounds are due.
    closed_days: Literal["skip", "hold"] = "skip"

    @field_validator("notify")
    @classmethod
    def _roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_known_role(r) for r in roles)


class Patrols(_Strict):
    checkpoints: tuple[PatrolCheckpoint, ...] = ()
    routes: tuple[PatrolRoute, ...] = ()

    def check_references(self, site: SiteConfig) -> None:
        buildings = {b.id for b in site.buildings}
        devices = {d.id for d in site.devices}
        points: dict[str, PatrolCheckpoint] = {}
        for cp in self.checkpoints:
            if cp.id in points:
                raise ValueError(f"patrols: checkpoint {cp.id!r} appears twice")
            points[cp.id] = cp
            if cp.building not in buildings:
                raise ValueError(f"patrols: checkpoint {cp.id!r} names unknown building")
            if cp.device is not None and cp.device not in devices:
                raise ValueError(f"patrols: checkpoint {cp.id!r} names unknown device")
        seen: set[str] = set()
        for route in self.routes:
            if route.id in seen:
                raise ValueError(f"patrols: route {route.id!r} appears twice")
            seen.add(route.id)
            if route.building not in buildings:
                raise ValueError(f"patrols: route {route.id!r} names unknown building")
            for cp_id in route.checkpoints:
                if cp_id not in points:
                    raise ValueError(f"patrols: route {route.id!r} names unknown checkpoint")
            if len(set(route.checkpoints)) != len(route.checkpoints):
                raise ValueError(f"patrols: route {route.id!r} lists a checkpoint twice")

    def checkpoint(self, checkpoint_id: str) -> PatrolCheckpoint | None:
        return next((c for c in self.checkpoints if c.id == checkpoint_id), None)


SiteConfig.model_rebuild()
