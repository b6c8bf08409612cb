"""Work-order shapes on the API and the stream."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.rules_spec import Priority
from server.work_orders.model import Status


class WorkOrderEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    comment: str


class WorkOrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    source: Literal["auto", "manual"]
    device_id: str | None
    alert_id: int | None
    building: str | None
    location: str
    category: str
    priority: str
    status: str
    title: str
    description: str
    assignee: str | None
    created_at: datetime
    respond_due_at: datetime
    due_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    verified_at: datetime | None
    reopen_count: int
    satisfaction: int | None
    condition_cleared: bool
    # The moves the viewer may make now (POST .../transitions with one of these as `to`).
    next: list[Status] = Field(default_factory=list)


class WorkOrderDetail(WorkOrderOut):
    requester: str | None
    contact: str | None
    history: list[WorkOrderEventOut]


class WorkOrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=4000)
    category: str = Field(pattern=r"^[a-z_]{3,32}$")
    priority: Priority = Priority.P3
    location: str = Field(min_length=2, max_length=256)
    building: str | None = None
    device_id: str | None = None


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Status
    comment: str = Field(default="", max_length=4000)
    assignee: str | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5)


class PublicFaultReport(BaseModel):
    # Stripped first, so a location of blanks is "too short", not accepted.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    location: str = Field(min_length=2, max_length=256)
    description: str = Field(min_length=5, max_length=2000)
    contact: str | None = Field(default=None, max_length=128)
    # Optional photo as a data URL (JPEG or PNG, at most 2 MB): checked by its content.
    photo: str | None = Field(default=None, max_length=3_000_000)
    # Honeypot: hidden in the form; bots fill every field, people never see it.
    website: str | None = Field(default=None, max_length=200)
    # From GET /api/public/form-token when the page opened: proves the minimum fill time.
    # Optional so scripts can still report (with a smaller hourly budget).
    form_token: str | None = Field(default=None, max_length=100)
