"""Alerts: list by state, detail with history, acknowledge, assign, resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from server.alerts import service
from server.alerts.model import Alert
from server.alerts.schemas import AlertAction, AlertDetail, AlertOut, AssignIn
from server.api.deps import Ctx, PageDep, SessionDep, ViewerDep, viewer_of
from server.auth.accounts import by_username
from server.auth.scope import Viewer, can_see, visible_clause
from server.events.types import DomainEvent
from server.rules.store import RuleStates

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


@router.get("")
def list_alerts(
    session: SessionDep,
    viewer: ViewerDep,
    page: PageDep,
    state: Literal["active", "acknowledged", "resolved"] | None = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AlertOut]:
    """Newest first; the viewer's scope is applied before the page is cut."""
    q = select(Alert).where(
        visible_clause(viewer, building=Alert.building, device_class=Alert.device_class)
    )
    if state:
        q = q.where(Alert.state == state)
    if device_id:
        q = q.where(Alert.device_id == device_id)
    q = q.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(page.limit).offset(page.offset)
    return [AlertOut.model_validate(a) for a in session.scalars(q)]


def _visible(session: SessionDep, viewer: ViewerDep, alert_id: int) -> Alert:
    a = session.get(Alert, alert_id)
    if a is None or not _sees(viewer, a):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return a


@router.get("/{alert_id}")
def get_alert(session: SessionDep, viewer: ViewerDep, alert_id: int) -> AlertDetail:
    return AlertDetail.model_validate(_visible(session, viewer, alert_id))


def _assignee(ctx: Ctx, session: SessionDep, username: str | None, a: Alert) -> str | None:
    """An active user who can see the alert (a dorm manager of another building cannot be
    handed it)."""
    if username is None:
        return None
    user = by_username(session, username)
    if user is None or not user.active:
        raise HTTPException(422, f"assignee: no active user {username!r}")
    if not _sees(viewer_of(ctx, user), a):
        raise HTTPException(422, f"assignee: {username!r} is not responsible for this alert")
    return user.username


def _sees(viewer: Viewer, a: Alert) -> bool:
    return can_see(viewer, building=a.building, device_class=a.device_class)


def _commit(ctx: Ctx, session: SessionDep, a: Alert, events: list[DomainEvent]) -> AlertOut:
    session.commit()
    ctx.bus.publish_all(events)
    return AlertOut.model_validate(a)


def _act(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    alert_id: int,
    body: AlertAction | None,
    action: Literal["ack", "resolve"],
) -> AlertOut:
    a = _visible(session, viewer, alert_id)
    body = body or AlertAction()
    assignee = _assignee(ctx, session, body.assignee, a)
    events: list[DomainEvent] = []
    try:
        if action == "ack":
            service.acknowledge(
                a,
                events,
                actor=viewer.username,
                at=ctx.clock.now(),
                comment=body.comment,
                assignee=assignee,
            )
        else:
            if assignee is not None:
                raise HTTPException(
                    422,
                    "assignee: assign before resolving (POST /api/alerts/{id}/assign)",
                )
            service.resolve(
                a, events, actor=viewer.username, at=ctx.clock.now(), comment=body.comment
            )
            ctx.rules.forget(RuleStates(session), a.device_id, a.rule)
    except service.AlertStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _commit(ctx, session, a, events)


@router.post("/{alert_id}/ack")
def ack(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, alert_id: int, body: AlertAction | None = None
) -> AlertOut:
    return _act(ctx, session, viewer, alert_id, body, "ack")


@router.post("/{alert_id}/assign")
def assign(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, alert_id: int, body: AssignIn
) -> AlertOut:
    a = _visible(session, viewer, alert_id)
    assignee = _assignee(ctx, session, body.assignee, a)
    assert assignee is not None
    events: list[DomainEvent] = []
    try:
        service.assign(
            a,
            events,
            actor=viewer.username,
            at=ctx.clock.now(),
            assignee=assignee,
            comment=body.comment,
        )
    except service.AlertStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _commit(ctx, session, a, events)


@router.post("/{alert_id}/resolve")
def resolve(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, alert_id: int, body: AlertAction | None = None
) -> AlertOut:
    return _act(ctx, session, viewer, alert_id, body, "resolve")
