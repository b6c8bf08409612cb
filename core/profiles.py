"""Device profiles: the YAML schema of one device model, presets, and the loader."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.durations import Duration
from core.rules_spec import RuleSpec
from core.units import can_convert
from core.yamlfile import ConfigError, ConfigErrors, load_model


class DeviceClass(StrEnum):
    CHILLED_FRIDGE = "chilled_fridge"
    FREEZER = "freezer"
    SAMPLE_FRIDGE = "sample_fridge"  # 留样 sample-retention fridge: legal evidence
    ROOM_CLIMATE = "room_climate"
    CONTACT_SENSOR = "contact_sensor"
    DORM_DOOR = "dorm_door"
    ELECTRICITY_METER = "electricity_meter"
    WATER_METER = "water_meter"

    @property
    def is_cold_storage(self) -> bool:
        return self in {self.CHILLED_FRIDGE, self.FREEZER, self.SAMPLE_FRIDGE}


class MetricType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STR = "str"


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float | None = None
    max: float | None = None


class Preset(BaseModel):
    type: MetricType
    unit: str | None
    valid: Range = Range()
    precision: int | None = None


# Each common metric declared once; a profile row then says only where its value comes from.
PRESETS: dict[str, Preset] = {
    "temperature_c": Preset(
        type=MetricType.FLOAT, unit="°C", valid=Range(min=-60, max=100), precision=2
    ),
    "humidity_pct": Preset(type=MetricType.FLOAT, unit="%", valid=Range(min=0, max=100)),
    "battery_pct": Preset(type=MetricType.FLOAT, unit="%", valid=Range(min=0, max=100)),
    "rssi_dbm": Preset(type=MetricType.FLOAT, unit="dBm", valid=Range(min=-140, max=0)),
    "contact_open": Preset(type=MetricType.BOOL, unit=None),
    "energy_kwh": Preset(type=MetricType.FLOAT, unit="kWh", valid=Range(min=0)),
    "voltage_v": Preset(type=MetricType.FLOAT, unit="V", valid=Range(min=0, max=1000)),
    "current_a": Preset(type=MetricType.FLOAT, unit="A", valid=Range(min=-1000, max=1000)),
    "power_w": Preset(type=MetricType.FLOAT, unit="W", valid=Range(min=-1e6, max=1e6)),
    "frequency_hz": Preset(type=MetricType.FLOAT, unit="Hz", valid=Range(min=40, max=70)),
    "volume_m3": Preset(type=MetricType.FLOAT, unit="m³", valid=Range(min=0)),
    "flow_m3h": Preset(type=MetricType.FLOAT, unit="m³/h", valid=Range(min=0, max=1000)),
    "counter": Preset(type=MetricType.INT, unit=None, valid=Range(min=0)),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModbusSource(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    function: Literal["input", "holding"]
    register_: int = Field(ge=0, le=0xFFFF, alias="register")
    type: Literal["uint16", "int16", "uint32", "int32", "float32"] = "float32"
    word_order: Literal["big", "little"] = "big"


class Dlt645Source(_Strict):
    di: str = Field(pattern=r"^[0-9A-Fa-f]{8}$")


MetricSource = str | ModbusSource | Dlt645Source


class MetricSpec(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    preset: str | None = None
    type: MetricType | None = None
    unit: str | None = None
    source: MetricSource
    source_unit: str | None = None  # convert from this unit to `unit` (e.g. °F sensors)
    # payload field that names the unit per message (Tasmota's "TempUnit": "F")
    source_unit_field: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    valid: Range | None = None
    category: Literal["primary", "diagnostic"] = "primary"
    required: bool = False
    # Booleans whose sense is the opposite of the metric's (Zigbee contact: true = closed).
    invert: bool = False

    @model_validator(mode="after")
    def _preset_exists(self) -> MetricSpec:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        if self.preset is None and self.type is None:
            raise ValueError("a metric needs a 'preset' or a 'type'")
        if (
            self.source_unit
            and self.resolved_unit
            and not can_convert(self.source_unit, self.resolved_unit)
        ):
            raise ValueError(f"cannot convert {self.source_unit!r} to {self.resolved_unit!r}")
        return self

    @property
    def resolved_type(self) -> MetricType:
        if self.type is not None:
            return self.type
        assert self.preset is not None
        return PRESETS[self.preset].type

    @property
    def resolved_unit(self) -> str | None:
        if self.unit is not None:
            return self.unit
        return PRESETS[self.preset].unit if self.preset else None

    @property
    def resolved_valid(self) -> Range:
        if self.valid is not None:
            return self.valid
        return PRESETS[self.preset].valid if self.preset else Range()


class MqttTransport(_Strict):
    kind: Literal["mqtt"] = "mqtt"
    # Placeholders {site} and {address}; {address} defaults to the device id.
    topic: str
    payload: Literal["json"] = "json"
    sequence: str | None = None  # payload field carrying the device's message counter
    timestamp: str | None = None  # payload field with the device's own time
    timestamp_format: Literal["unix_s", "unix_ms", "iso8601"] = "unix_ms"
    max_bytes: int = 16384

    @model_validator(mode="after")
    def _topic_placeholders(self) -> MqttTransport:
        names = set(re.findall(r"{(\w+)}", self.topic))
        unknown = names - {"site", "address"}
        if unknown:
            raise ValueError(f"topic has unknown placeholders {sorted(unknown)}")
        if "address" not in names:
            raise ValueError("topic must contain {address} to tell devices apart")
        if "+" in self.topic or "#" in self.topic:
            raise ValueError("topic is a template with {placeholders}, not an MQTT wildcard")
        return self


class SerialTransport(_Strict):
    kind: Literal["modbus_rtu", "dlt645"]
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    poll: Duration = timedelta(seconds=30)
    timeout: Duration = timedelta(seconds=1)


Transport = Annotated[MqttTransport | SerialTransport, Field(discriminator="kind")]


class EventWhen(_Strict):
    metric: str
    becomes: bool | str | float


class EventFromField(_Strict):
    """Events named by a payload field: {"event": "forced"} -> door_forced."""

    source: str
    map: dict[str, str]


class EventSpec(_Strict):
    kind: str | None = None
    when: EventWhen | None = None
    from_field: EventFromField | None = None
    attrs: tuple[str, ...] = ()  # payload fields copied onto the event
    # attrs that identify a person (card numbers): replaced by a keyed hash at the gateway
    pseudonymize: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_way(self) -> EventSpec:
        if (self.when is None) == (self.from_field is None):
            raise ValueError("an event needs exactly one of 'when' or 'from_field'")
        if self.when is not None and not self.kind:
            raise ValueError("an event with 'when' needs a 'kind'")
        return self


class Example(_Strict):
    payload: str
    expect: dict[str, Any] | None = None
    events: tuple[str, ...] = ()
    reject: str | None = None


class Profile(_Strict):
    profile: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = 1
    vendor: str
    model: str
    description: str = ""
    device_class: DeviceClass
    transport: Transport
    metrics: tuple[MetricSpec, ...]
    events: tuple[EventSpec, ...] = ()
    default_rules: tuple[RuleSpec, ...] = ()
    examples: tuple[Example, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        keys = [m.key for m in self.metrics]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise ValueError(f"metric keys declared twice: {sorted(dupes)}")
        for event in self.events:
            if event.when is not None and event.when.metric not in keys:
                raise ValueError(
                    f"event {event.kind!r} watches unknown metric {event.when.metric!r}"
                )
        for rule in self.default_rules:
            metric = getattr(rule, "metric", None)
            if metric is not None and metric not in keys:
                raise ValueError(f"rule {rule.rule!r} names unknown metric {metric!r}")
        names = [r.rule for r in self.default_rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique within a profile")
        return self

    def metric(self, key: str) -> MetricSpec | None:
        return next((m for m in self.metrics if m.key == key), None)

    def event_kinds(self) -> set[str]:
        kinds = {e.kind for e in self.events if e.kind}
        for e in self.events:
            if e.from_field is not None:
                kinds.update(e.from_field.map.values())
        return kinds


DEFAULT_PROFILES_DIR = Path(__file__).resolve().parent.parent / "device_profiles"


def load_profile(path: Path) -> Profile:
    profile = load_model(Profile, path)
    if profile.profile != path.stem:
        raise ConfigError(str(path), [f"1: profile: {profile.profile!r} must equal the file name"])
    return profile


def load_profiles(directory: Path = DEFAULT_PROFILES_DIR) -> dict[str, Profile]:
    """Load every profile; collect all problems so one run names every bad file."""
    profiles: dict[str, Profile] = {}
    errors: list[ConfigError] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(str(directory), ["0: no *.yaml device profiles here"])
    for path in files:
        try:
            profiles[path.stem] = load_profile(path)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise ConfigErrors(errors)
    return profiles
