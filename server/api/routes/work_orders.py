"""Work orders: list, detail, manual report by staff, lifecycle transitions."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import select

from core.roles import BUILDING_SCOPED_ROLES
from server.api.deps import Ctx, PageDep, SessionDep, ViewerDep, viewer_of
from server.auth import verification
from server.auth.accounts import by_username
from server.auth.scope import Viewer, can_see, visible_clause
from server.events.types import DomainEvent
from server.ingest.model import Device
from server.work_orders import photos, service
from server.work_orders.model import Status, WorkOrder
from server.work_orders.schemas import (
    TransitionIn,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderOut,
)
from server.work_orders.sla import closed_days

router = APIRouter(prefix="/api/work-orders", tags=["work orders"])


def _sees(viewer: Viewer, wo: WorkOrder) -> bool:
    return can_see(viewer, building=wo.building, device_class=wo.device_class, category=wo.category)


@router.get("")
def list_work_orders(
    session: SessionDep,
    viewer: ViewerDep,
    page: PageDep,
    status: Status | None = None,
    source: Annotated[str | None, Query(max_length=16)] = None,
) -> list[WorkOrderOut]:
    """Newest first; the viewer's scope is applied before the page is cut."""
    q = select(WorkOrder).where(
        visible_clause(
            viewer,
            building=WorkOrder.building,
            device_class=WorkOrder.device_class,
            category=WorkOrder.category,
        )
    )
    if status:
        q = q.where(WorkOrder.status == status)
    if source:
        q = q.where(WorkOrder.source == source)
    q = q.order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
    rows = session.scalars(q.limit(page.limit).offset(page.offset))
    return [_out(WorkOrderOut, w, viewer) for w in rows]


Shape = TypeVar("Shape", bound=WorkOrderOut)


def _out(shape: type[Shape], wo: WorkOrder, viewer: ViewerDep) -> Shape:
    out = shape.model_validate(wo)
    out.next = verification.next_moves(viewer, wo)
    return out


def _visible(session: SessionDep, viewer: ViewerDep, wo_id: int) -> WorkOrder:
    wo = session.get(WorkOrder, wo_id)
    if wo is None or not _sees(viewer, wo):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no work order {wo_id}")
    return wo


@router.get("/{wo_id}")
def get_work_order(session: SessionDep, viewer: ViewerDep, wo_id: int) -> WorkOrderDetail:
    return _out(WorkOrderDetail, _visible(session, viewer, wo_id), viewer)


@router.get("/{wo_id}/photo")
def get_photo(ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int) -> FileResponse:
    _visible(session, viewer, wo_id)
    found = photos.find(ctx.settings.data_dir / "photos", wo_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"work order {wo_id} has no photo")
    return FileResponse(found[0], media_type=found[1])


@router.post("", status_code=201)
def create(ctx: Ctx, session: SessionDep, viewer: ViewerDep, body: WorkOrderCreate) -> WorkOrderOut:
    building = body.building
    d: Device | None = None
    if body.device_id is not None:
        d = session.get(Device, body.device_id)
        if d is None or not can_see(viewer, building=d.building, device_class=d.device_class):
            raise HTTPException(422, f"device_id: no device {body.device_id!r}")
        if building is not None and building != d.building:
            raise HTTPException(422, f"building: device {d.id!r} is in {d.building!r}")
        building = d.building
    if building is not None and ctx.site.building(building) is None:
        raise HTTPException(422, f"building: unknown building {building!r}")
    # Scope on writes: an order the reporter could not see is one they may not open (a dorm
    # manager reports for their own buildings, and must say which).
    if viewer.role in BUILDING_SCOPED_ROLES and building is None:
        raise HTTPException(422, "building: name one of your buildings")
    device_class = d.device_class if d is not None else None
    if not can_see(viewer, building=building, device_class=device_class, category=body.category):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"building {building or '(none)'} / category {body.category} is outside your scope",
        )
    events: list[DomainEvent] = []
    wo = service.open_manual(
        session,
        events,
        category=body.category,
        priority=body.priority,
        title=body.title,
        description=body.description,
        location=body.location,
        building=building,
        requester=viewer.username,
        contact=None,
        device_id=body.device_id,
        device_class=d.device_class if d is not None else None,
        at=ctx.clock.now(),
        tz=ctx.site.tz,
        closed=closed_days(ctx.site, building),
    )
    session.commit()
    ctx.bus.publish_all(events)
    return _out(WorkOrderOut, wo, viewer)


@router.post("/{wo_id}/transitions")
def transition(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int, body: TransitionIn
) -> WorkOrderDetail:
    wo = _visible(session, viewer, wo_id)
    refusal = verification.move_refusal(viewer, wo, body.to)
    if refusal is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    if body.satisfaction is not None and body.to is not Status.VERIFIED:
        raise HTTPException(422, "satisfaction: given only when verifying")
    if body.assignee is not None:
        assignee = by_username(session, body.assignee)
        if assignee is None or not assignee.active or not _sees(viewer_of(ctx, assignee), wo):
            raise HTTPException(
                422, f"assignee: {body.assignee!r} is not an active user responsible for it"
            )
    events: list[DomainEvent] = []
    try:
        service.transition(
            wo,
            events,
            to=body.to,
            actor=viewer.username,
            at=ctx.clock.now(),
            comment=body.comment,
            assignee=body.assignee,
            satisfaction=body.satisfaction,
        )
    except service.TransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    ctx.bus.publish_all(events)
    return _out(WorkOrderDetail, wo, viewer)
