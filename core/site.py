"""Site configuration: buildings, which device uses which profile where, rule overrides."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.durations import Duration
from core.profiles import DeviceClass, Profile
from core.rules_spec import Severity
from core.yamlfile import ConfigError, load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Building(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    kind: Literal["canteen", "dorm", "teaching", "office", "utility", "other"] = "other"
    curfew: time | None = None  # dorms: entries after this are late returns


class DeviceConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    profile: str
    building: str
    location: str
    room: str | None = None
    gateway: str = "gw-1"
    # Transport address: MQTT topic name, Modbus slave id, DL/T 645 meter address.
    address: str | None = None
    bus: str | None = None  # serial devices: the RS-485 port name in the gateway config
    # A generic probe can sit in a fridge, a freezer or a room: the site says which.
    device_class: DeviceClass | None = None

    @property
    def transport_address(self) -> str:
        return self.address or self.id


class Closure(_Strict):
    """A period a building is closed (holidays): rules with when_closed=suppress stay quiet."""

    name: str
    start: date
    end: date  # inclusive
    buildings: tuple[str, ...] = ()  # empty = the whole site


class Calendar(_Strict):
    """The school calendar rules can refer to (terms and exam weeks are informational)."""

    terms: tuple[Closure, ...] = ()
    closures: tuple[Closure, ...] = ()
    exam_weeks: tuple[Closure, ...] = ()


class RuleOverride(_Strict):
    """Change a profile's default rule for a device class, a building or one device."""

    rule: str
    device_class: str | None = None
    building: str | None = None
    device: str | None = None
    set: dict[str, Any]


class NotificationChannel(_Strict):
    """Where one audience is told: an Apprise URL (mailto://, json://, wecombot://,
    dingtalk://, ...) whose secrets are written as ${ENV_VAR} and read from the environment
    when sent, so they never sit in the site file or the logs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    url: str
    role: str  # the audience: rules name roles in their `notify` list
    buildings: tuple[str, ...] = ()  # empty = every building (a dorm manager: theirs)
    min_severity: Severity = Severity.WARNING


class Escalation(_Strict):
    """An active alert nobody acknowledged: escalate to `to` after `after`, and remind the
    original audience every `remind_every` (at most `max_reminders` times)."""

    after: Duration = timedelta(minutes=30)
    to: str = "admin"
    remind_every: Duration = timedelta(minutes=30)
    max_reminders: int = Field(default=3, ge=0)


class Notifications(_Strict):
    channels: tuple[NotificationChannel, ...] = ()
    max_per_hour: int = Field(default=30, gt=0)  # per channel; the rest goes into a digest
    escalation: Escalation = Escalation()


class SiteConfig(_Strict):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    timezone: str = "UTC"
    note: str = ""
    buildings: tuple[Building, ...]
    devices: tuple[DeviceConfig, ...]
    rule_overrides: tuple[RuleOverride, ...] = ()
    calendar: Calendar = Calendar()
    notifications: Notifications = Notifications()

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
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def device(self, device_id: str) -> DeviceConfig | None:
        return next((d for d in self.devices if d.id == device_id), None)

    def building(self, building_id: str) -> Building | None:
        return next((b for b in self.buildings if b.id == building_id), None)

    def is_closed(self, building_id: str | None, at: datetime) -> bool:
        day = at.astimezone(self.tz).date()
        return any(
            c.start <= day <= c.end and (not c.buildings or building_id in c.buildings)
            for c in self.calendar.closures
        )


def load_site(path: Path, profiles: dict[str, Profile]) -> SiteConfig:
    site = load_model(SiteConfig, path)
    problems = [
        f"0: devices: {d.id!r} uses unknown profile {d.profile!r}"
        for d in site.devices
        if d.profile not in profiles
    ]
    if problems:
        raise ConfigError(str(path), problems)
    return site
