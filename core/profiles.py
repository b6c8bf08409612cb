"""Device profiles: the YAML schema of one device model, presets, and the loader."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

import device_profiles
from core.durations import Duration
from core.readings import RejectReason
from core.rules_spec import RuleSpec
from core.units import can_convert
from core.yamlfile import ConfigError, ConfigErrors, load_model


class ClassName(str):
    """A device class's name, as profiles and site files write it ("freezer"): the stem of a
    file in device_profiles/classes/ (core/device_classes.py). Nothing in code lists them.

    `.value` is the name itself, for code written against the enum this replaced; new code
    uses the name as the string it is."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str.__str__(self)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> CoreSchema:
        # 32: the device_class columns of the server's tables.
        text = core_schema.str_schema(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)
        return core_schema.no_info_after_validator_function(cls, text)


def class_metrics_missing(
    name: str | None, keys: Collection[str], info: ValidationInfo
) -> list[str]:
    """The metrics class `name` expects of every device (the `device_classes` context maps
    class -> metrics) that `keys` lacks."""
    known = (info.context or {}).get("device_classes")
    if name is None or not isinstance(known, Mapping):
        return []
    return [m for m in known.get(name, ()) if m not in keys]


def known_class(name: ClassName | None, info: ValidationInfo) -> ClassName | None:
    """A class name checked against the catalogue the loader passes as validation context
    (`device_classes`); without one (a model built in code) any well-formed name passes."""
    known = (info.context or {}).get("device_classes")  # names, or name -> metrics
    if name is not None and known is not None and name not in known:
        raise ValueError(
            f"unknown device class {name!r}; device_profiles/classes/ has: "
            + ", ".join(sorted(known))
        )
    return name


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
    "percent": Preset(type=MetricType.FLOAT, unit="%", valid=Range(min=0, max=100)),
    # NDIR CO2 sensors read 400-5000 ppm (SCD30 to 10000); more is a broken reading.
    "co2_ppm": Preset(type=MetricType.FLOAT, unit="ppm", valid=Range(min=0, max=10000)),
    "pm_ugm3": Preset(type=MetricType.FLOAT, unit="µg/m³", valid=Range(min=0, max=2000)),
    "snr_db": Preset(type=MetricType.FLOAT, unit="dB", valid=Range(min=-40, max=40)),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def scalar_key(value: Any) -> str | None:
    """The text a JSON scalar is matched by in a profile's `map`: YAML keys arrive typed
    (`true:`, `1:`) and JSON values too, so both sides meet as text ("true", "1", "open").
    None for what is not a scalar (objects, lists, null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # 1.0 and 1 are the same JSON number; nan/inf never match a key.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


def _text_keys(raw: Any) -> Any:
    """Before validation: turn typed YAML map keys into their `scalar_key` text."""
    if not isinstance(raw, dict):
        return raw
    out: dict[Any, Any] = {}
    for key, value in raw.items():
        text = scalar_key(key)
        if text is None:
            raise ValueError(f"map key {key!r} is not a scalar")
        out[text] = value
    return out


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
    # Words a device uses for a value, e.g. {open: true, closed: false}; a text value not
    # listed is refused as unknown_value. The mapped value then goes through the checks above.
    map: dict[str, bool | float | str] | None = None

    _map_keys = field_validator("map", mode="before")(_text_keys)

    @model_validator(mode="after")
    def _preset_exists(self) -> MetricSpec:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {sorted(PRESETS)}")
        if self.preset is None and self.type is None:
            raise ValueError("a metric needs a 'preset' or a 'type'")
        for word, value in (self.map or {}).items():
            if not _fits(self.resolved_type, value):
                raise ValueError(
                    f"map: {word!r} -> {value!r} is not a {self.resolved_type.value} value"
                )
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


def _fits(kind: MetricType, value: bool | float | str) -> bool:
    if kind is MetricType.BOOL:
        return isinstance(value, bool)
    if kind is MetricType.STR:
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


class MqttTransport(_Strict):
    kind: Literal["mqtt"] = "mqtt"
    # Placeholders: {site}, {address} (defaults to the device id) and any other name, whose
    # value each device gives in the site file's `topic_values` (ChirpStack's
    # {application_id}): every device still has one exact topic.
    topic: str
    payload: Literal["json"] = "json"
    # Payload fields are dotted paths into nested objects ("DS18B20.Temperature"); `\.` is a
    # dot inside a key ("SDS0X1.PM2\.5"), and a part of digits indexes a list ("rxInfo.0.snr").
    sequence: str | None = None  # payload field carrying the device's message counter
    # A field that must equal the device's address (the topic's): a message naming another
    # device is refused whole as wrong_address, one without it as missing_field (a LoRaWAN
    # network server's devEui, which must match the topic's).
    address_field: str | None = None
    timestamp: str | None = None  # payload field with the device's own time
    # auto: ISO 8601 text or Unix milliseconds, whichever arrives (Zigbee2MQTT's last_seen
    # is either, by bridge setting).
    timestamp_format: Literal["unix_s", "unix_ms", "iso8601", "auto"] = "unix_ms"
    # An ISO 8601 time without a UTC offset cannot be placed: "restamp" marks the reading
    # restamped (an unexpected clock problem); "receive_time" uses the gateway's receive
    # time as a documented normal case (Tasmota's default "Time" is zone-less local time).
    naive_timestamp: Literal["restamp", "receive_time"] = "restamp"
    max_bytes: int = Field(default=16384, gt=0)  # larger payloads are refused as oversize

    @model_validator(mode="after")
    def _topic_placeholders(self) -> MqttTransport:
        names = set(re.findall(r"{(\w+)}", self.topic))
        rest = re.sub(r"{\w+}", "", self.topic)
        if "{" in rest or "}" in rest:
            raise ValueError("topic: write placeholders as {name}")
        if "address" not in names:
            raise ValueError("topic must contain {address} to tell devices apart")
        if "+" in self.topic or "#" in self.topic:
            raise ValueError("topic is a template with {placeholders}, not an MQTT wildcard")
        return self

    @property
    def placeholders(self) -> frozenset[str]:
        """The topic's placeholders whose value a device gives (`topic_values`)."""
        return frozenset(re.findall(r"{(\w+)}", self.topic)) - {"site", "address"}

    def topic_for(self, site: str, address: str, values: Mapping[str, str]) -> str:
        """A device's exact topic."""
        return self.topic.format(site=site, address=address, **values)


class SerialTransport(_Strict):
    kind: Literal["modbus_rtu", "dlt645"]
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    poll: Duration = timedelta(seconds=30)
    timeout: Duration = timedelta(seconds=1)


Transport = Annotated[MqttTransport | SerialTransport, Field(discriminator="kind")]


# Event kinds are keys the rules name and the stores index (64 characters there).
EventKind = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class EventWhen(_Strict):
    metric: str
    becomes: bool | str | float


class EventFromField(_Strict):
    """Events named by a payload field: {"event": "forced"} -> door_forced. The field may be
    nested ("event.type") and its value text, a number or a boolean (`true: card_granted`)."""

    source: str
    map: dict[str, EventKind]
    ignore: tuple[str, ...] = ()  # codes that are known and not events (heartbeats)
    # A code neither mapped nor ignored is counted as unknown_value unless set to "ignore":
    # firmware that grows a new event code should be noticed, not silently dropped.
    unmapped: Literal["reject", "ignore"] = "reject"

    _map_keys = field_validator("map", mode="before")(_text_keys)

    @field_validator("ignore", mode="before")
    @classmethod
    def _ignore_text(cls, raw: Any) -> Any:
        if isinstance(raw, list | tuple):
            return tuple(text if (text := scalar_key(v)) is not None else v for v in raw)
        return raw


class EventSpec(_Strict):
    kind: EventKind | None = None
    when: EventWhen | None = None
    from_field: EventFromField | None = None
    # Payload fields copied onto the event: a list of field names, or {attr: dotted.path}.
    attrs: tuple[str, ...] | dict[str, str] = ()
    # attrs that identify a person (card numbers): replaced by a keyed hash at the gateway
    pseudonymize: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_way(self) -> EventSpec:
        if (self.when is None) == (self.from_field is None):
            raise ValueError("an event needs exactly one of 'when' or 'from_field'")
        if self.when is not None and not self.kind:
            raise ValueError("an event with 'when' needs a 'kind'")
        # A misspelt name here would store card numbers in clear: refuse it.
        unknown = set(self.pseudonymize) - set(self.attr_paths)
        if unknown:
            raise ValueError(f"pseudonymize names attrs the event does not copy: {sorted(unknown)}")
        return self

    @property
    def attr_paths(self) -> dict[str, str]:
        """Attribute name -> payload path."""
        if isinstance(self.attrs, dict):
            return dict(self.attrs)
        return {name: name for name in self.attrs}


Word = Annotated[int, Field(ge=0, le=0xFFFF)]
# Bytes as a sniffer shows them: pairs of hex digits, spaces between them optional.
HexBytes = Annotated[str, Field(pattern=r"^\s*[0-9A-Fa-f]{2}(\s*[0-9A-Fa-f]{2})*\s*$")]


class Example(_Strict):
    """What the device sends and what the gateway makes of it; tests/profiles/ runs each.

    The input is the transport's: `payload` (MQTT: the message body), `registers` (Modbus:
    per metric, the 16-bit words its read returns, in the order they arrive) or `data`
    (DL/T 645: per metric, its read reply's data field, identifier and value, with the 33H
    offset removed). `expect` is the readings that come of it; `reject` the one rejection.
    """

    payload: str | None = None
    registers: dict[str, tuple[Word, ...]] | None = None
    data: dict[str, HexBytes] | None = None
    expect: dict[str, Any] | None = None
    events: tuple[str, ...] = ()
    reject: RejectReason | None = None

    @model_validator(mode="after")
    def _one_input(self) -> Example:
        given = [k for k in ("payload", "registers", "data") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an example needs exactly one of 'payload', 'registers' or 'data', got {given}"
            )
        return self


# Which example input each transport takes, and the metric source it reads.
_EXAMPLE_INPUT = {"mqtt": "payload", "modbus_rtu": "registers", "dlt645": "data"}


def _example_problems(
    examples: tuple[Example, ...], transport: MqttTransport | SerialTransport, metrics: Any
) -> list[InitErrorDetails]:
    """Examples that cannot run against this profile, each at the field that is wrong."""
    keys = {m.key for m in metrics}
    wanted = _EXAMPLE_INPUT[transport.kind]
    problems: list[InitErrorDetails] = []

    def problem(loc: tuple[str | int, ...], msg: str, value: Any) -> None:
        # The message is a template to pydantic: braces from the file must stay text.
        error = PydanticCustomError("example", msg.replace("{", "{{").replace("}", "}}"))
        problems.append(InitErrorDetails(type=error, loc=loc, input=value))

    for i, example in enumerate(examples):
        for field in ("payload", "registers", "data"):
            if field != wanted and getattr(example, field) is not None:
                problem((i, field), f"a {transport.kind} profile's example gives '{wanted}'", field)
        for field in ("registers", "data", "expect"):
            for key in getattr(example, field) or {}:
                if key not in keys:
                    problem((i, field, key), f"{key!r} is not a metric of this profile", key)
    return problems


class Profile(_Strict):
    profile: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: int = 1
    vendor: str
    model: str
    description: str = ""
    device_class: ClassName  # a file of device_profiles/classes/ (checked when loaded)
    transport: Transport
    metrics: tuple[MetricSpec, ...]
    events: tuple[EventSpec, ...] = ()
    default_rules: tuple[RuleSpec, ...] = ()
    examples: tuple[Example, ...] = ()

    _class = field_validator("device_class")(known_class)

    @field_validator("metrics")
    @classmethod
    def _class_metrics(cls, metrics: tuple[MetricSpec, ...], info: ValidationInfo) -> Any:
        missing = class_metrics_missing(
            info.data.get("device_class"), {m.key for m in metrics}, info
        )
        if missing:
            raise ValueError(
                f"a {info.data['device_class']} reports {missing}: its class file lists them "
                "as every device's metrics"
            )
        return metrics

    @field_validator("examples")
    @classmethod
    def _examples_fit(cls, examples: tuple[Example, ...], info: ValidationInfo) -> Any:
        transport, metrics = info.data.get("transport"), info.data.get("metrics")
        if transport is None or metrics is None:
            return examples  # already refused; its own error says why
        problems = _example_problems(examples, transport, metrics)
        if problems:
            # Raised with their own locations, so the error names the example's line.
            raise ValidationError.from_exception_data("Example", problems)
        return examples

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


DEFAULT_PROFILES_DIR = device_profiles.DIRECTORY  # package data, not the source tree


ClassCatalogue = Collection[str] | Mapping[str, Collection[str]]
"""Class names, or class name -> the metrics every device of it reports."""


def load_profile(path: Path, classes: ClassCatalogue | None = None) -> Profile:
    """One profile; its device class (and the class's metrics) checked against `classes`."""
    context = None if classes is None else {"device_classes": classes}
    profile = load_model(Profile, path, context)
    if profile.profile != path.stem:
        raise ConfigError(str(path), [f"1: profile: {profile.profile!r} must equal the file name"])
    return profile


def load_profiles(
    directory: Path = DEFAULT_PROFILES_DIR, classes: ClassCatalogue | None = None
) -> dict[str, Profile]:
    """Load every profile; collect all problems so one run names every bad file.

    Each profile's device class must be one of `classes`; by default the catalogue next to
    the profiles (`<directory>/classes/`, or the shipped one when that folder is absent)."""
    if classes is None:
        from core.device_classes import catalogue_for  # it imports this module

        classes = {name: c.metrics for name, c in catalogue_for(directory).items()}
    profiles: dict[str, Profile] = {}
    errors: list[ConfigError] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(str(directory), ["0: no *.yaml device profiles here"])
    for path in files:
        try:
            profiles[path.stem] = load_profile(path, classes)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        raise ConfigErrors(errors)
    return profiles
