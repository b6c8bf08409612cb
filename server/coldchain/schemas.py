"""Request bodies of the cold-chain API (docs/cold-chain.md); errors name the field."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionIn(_In):
    cause: str = Field(min_length=1, max_length=2000)
    impact: str = Field(min_length=1, max_length=2000)
    disposition: Literal["kept", "moved", "discarded"]
    moved_to: str | None = Field(default=None, max_length=128)
    quantity: str | None = Field(default=None, max_length=64)
    preventive_action: str = Field(min_length=1, max_length=2000)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _disposition(self) -> ActionIn:
        if self.disposition == "moved" and not self.moved_to:
            raise ValueError("moved_to: say where the food was moved (a fridge)")
        if self.disposition in ("moved", "discarded") and not self.quantity:
            raise ValueError("quantity: say how much was moved or discarded")
        return self


class CorrectionIn(_In):
    changes: dict[str, Any] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=2000)


class SignOffIn(_In):
    building: str
    period: Literal["day", "week"] = "day"
    date: date
    comment: str = Field(default="", max_length=2000)


class CalibrationIn(_In):
    device_id: str
    calibrated_on: date
    reference: str = Field(min_length=1, max_length=200)
    offset_c: float = Field(ge=-20, le=20)
    result: Literal["pass", "fail"]
    next_due: date
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _due(self) -> CalibrationIn:
        if self.next_due <= self.calibrated_on:
            raise ValueError("next_due must come after calibrated_on")
        return self


class SampleIn(_In):
    date: date
    meal: str
    dish: str = Field(min_length=1, max_length=128)
    weight_g: float = Field(gt=0, le=5000)
    taken_at: datetime | None = None
    person: str | None = Field(default=None, max_length=64)
    fridge: str
    building: str | None = None


class RemovalIn(_In):
    removed_at: datetime | None = None
    reason: str = Field(default="", max_length=2000)


class MenuIn(_In):
    building: str | None = None
    dishes: list[str] = Field(min_length=1, max_length=50)
