"""Device classes as data: `device_profiles/classes/<class>.yaml` defines one class.

A class file says what every device of the class reports (`metrics`), the default rules
its devices get, each with its source (`source`: the regulation, the practice, or "own"
for our judgement), the work-order category and the audience its rules use unless a rule
says otherwise (`work_order_category`, `notify`), what the class is called (`label`, zh-CN
and en at least), and whether it is cold storage (the cold-chain record and the food-safety
officer's scope follow it). Profiles and site devices name a class by its file name and are
checked against this catalogue when loaded; no code lists the classes, so adding bins or soil
sensors is adding YAML files.

    device_class: waste_bin                 # equals the file name
    label: {zh-CN: 垃圾桶, en: Waste bin}
    metrics: [fill_level]                   # every device of the class reports these
    optional_metrics: [battery]             # some models report these too
    work_order_category: cleaning           # rules' work orders without a category
    notify: [maintenance]                   # rules without their own `notify`
    cold_storage: false
    source: ...
    rules: [...]                            # core/rules_spec.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import device_profiles
from core.profiles import ClassName
from core.rules_spec import RuleSpec
from core.site import ComplianceLimits, LanguageTag
from core.yamlfile import ConfigError, ConfigErrors, load_model

SHIPPED_CATALOGUE = device_profiles.DIRECTORY / "classes"
REQUIRED_LABELS = ("zh-CN", "en")  # the UI's languages (shared/DESIGN.md)
# Work-order categories as the API takes them (server/work_orders/schemas.py).
Category = str


class DeviceClassDef(BaseModel):
    """One class file. Rules without `notify` take the class's; work orders (and a repeat's
    nuisance order) without a `category` take `work_order_category`: both are filled in
    before the rules are validated, so every rule downstream is complete."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    device_class: ClassName
    label: dict[LanguageTag, str] = Field(default_factory=dict)
    source: str = ""  # where the numbers come from (regulation, practice, our own judgement)
    metrics: tuple[str, ...] = ()  # metric keys every device of the class reports
    # Reported by some models only (PM2.5 by an air sensor with a particle counter): rules on
    # them hold for the devices that report them.
    optional_metrics: tuple[str, ...] = ()
    cold_storage: bool = False
    work_order_category: Category | None = Field(default=None, pattern=r"^[a-z_]{3,32}$")
    notify: tuple[str, ...] = ()  # default audience of the rules (roles)
    rules: tuple[RuleSpec, ...] = ()
    # Cold storage: the limits the cold-chain record is judged against (not the alarms').
    compliance: ComplianceLimits | None = None

    @model_validator(mode="before")
    @classmethod
    def _class_defaults_into_rules(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            return data
        notify, category = data.get("notify"), data.get("work_order_category")
        return {**data, "rules": [_with_defaults(r, notify, category) for r in data["rules"]]}

    @model_validator(mode="after")
    def _consistent(self) -> DeviceClassDef:
        missing = [lang for lang in REQUIRED_LABELS if not self.label.get(lang)]
        if missing:
            raise ValueError(f"label: give the class's name in {', '.join(missing)}")
        names = [r.rule for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique within a class: {twice}")
        listed = (*self.metrics, *self.optional_metrics)
        for rule in self.rules:
            metric = getattr(rule, "metric", None)
            if metric is not None and metric not in listed:
                raise ValueError(
                    f"rule {rule.rule!r} names metric {metric!r}: list it in the class's "
                    "metrics (or optional_metrics)"
                )
        if self.compliance is not None and not self.cold_storage:
            raise ValueError("compliance limits are for cold storage: set cold_storage: true")
        return self

    def name(self, language: str) -> str:
        """The class's label in `language` (or its base language), else in English."""
        base = language.split("-")[0]
        for tag in (language, base, "en"):
            if tag in self.label:
                return self.label[tag]
        return str(self.device_class)


def _with_defaults(rule: Any, notify: Any, category: Any) -> Any:
    if not isinstance(rule, dict):
        return rule
    out = dict(rule)
    if notify is not None and "notify" not in out:
        out["notify"] = notify
    out = _order_category(out, category)
    if isinstance(out.get("repeat"), dict):
        out["repeat"] = _order_category(dict(out["repeat"]), category)
    return out


def _order_category(holder: dict[str, Any], category: Any) -> dict[str, Any]:
    order = holder.get("work_order")
    if isinstance(order, dict) and "category" not in order and category is not None:
        holder["work_order"] = {**order, "category": category}
    return holder


Catalogue = dict[str, DeviceClassDef]
"""Class name -> its definition: the classes a site may use."""


def load_catalogue(directory: Path = SHIPPED_CATALOGUE) -> Catalogue:
    """Every class file in `directory`; all problems collected, so one run names every bad
    file (with line and field)."""
    out: Catalogue = {}
    errors: list[ConfigError] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ConfigError(str(directory), ["0: no *.yaml device class files here"])
    for path in files:
        try:
            cls = load_model(DeviceClassDef, path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if cls.device_class != path.stem:
            errors.append(ConfigError(str(path), ["1: device_class: must equal the file name"]))
        out[path.stem] = cls
    if errors:
        raise ConfigErrors(errors)
    return out


def catalogue_dir(profiles_dir: Path) -> Path:
    """The catalogue that goes with a profiles folder: its `classes/`, else the shipped one."""
    own = profiles_dir / "classes"
    return own if own.is_dir() else SHIPPED_CATALOGUE


def catalogue_for(profiles_dir: Path) -> Catalogue:
    return load_catalogue(catalogue_dir(profiles_dir))


def cold_storage_classes(catalogue: Catalogue) -> frozenset[str]:
    """The classes whose devices are cold storage (the cold-chain record, the food-safety
    officer's and canteen manager's scope)."""
    return frozenset(name for name, c in catalogue.items() if c.cold_storage)
