"""Alert shapes on the API and the stream."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor: str
    action: str
    comment: str


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: str
    building: str | None
    device_class: str | None
    rule: str
    severity: str
    state: str
    message: str
    raised_at: datetime
    value: float | None
    peak: float | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    assignee: str | None
    work_order_id: int | None
    condition_unknown: bool


class AlertDetail(AlertOut):
    history: list[AlertEventOut]


class AlertAction(BaseModel):
    """Acknowledge or resolve: who and when come from the login and the clock."""

    model_config = ConfigDict(extra="forbid")
    comment: str = Field(default="", max_length=4000)
    # Acknowledging takes the alert: the acknowledger unless someone else is named.
    assignee: str | None = Field(default=None, min_length=1, max_length=64)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=4000)
