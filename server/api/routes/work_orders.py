"""Work orders: list, detail, manual report by staff, lifecycle transitions."""

from __future__ import annotations

from typing import TypeVar

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from sqlalchemy import select

from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.scope import can_see
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

router = APIRouter(prefix="/api/work-orders", tags=["work orders"])


def _sees(viewer: ViewerDep, wo: WorkOrder) -> bool:
    return can_see(viewer, building=wo.building, device_class=wo.device_class, category=wo.category)


@router.get("")
def list_work_orders(
    session: SessionDep,
    viewer: ViewerDep,
    status: Status | None = None,
    source: str | None = None,
    limit: int = 500,
) -> list[WorkOrderOut]:
    q = select(WorkOrder).order_by(WorkOrder.created_at.desc()).limit(min(limit, 5000))
    if status:
        q = q.where(WorkOrder.status == status)
    if source:
        q = q.where(WorkOrder.source == source)
    return [_out(WorkOrderOut, w, viewer) for w in session.scalars(q) if _sees(viewer, w)]


Shape = TypeVar("Shape", bound=WorkOrderOut)


def _out(shape: type[Shape], wo: WorkOrder, viewer: ViewerDep) -> Shape:
    out = shape.model_validate(wo)
    out.next = service.next_moves(wo.status, viewer.role)
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
        building = building or d.building
    if building is not None and ctx.site.building(building) is None:
        raise HTTPException(422, f"building: unknown building {building!r}")
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
    )
    session.commit()
    ctx.bus.publish_all(events)
    return _out(WorkOrderOut, wo, viewer)


@router.post("/{wo_id}/transitions")
def transition(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int, body: TransitionIn
) -> WorkOrderDetail:
    wo = _visible(session, viewer, wo_id)
    if not service.may_move(viewer.role, body.to):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {viewer.role} may not move a work order to {body.to}"
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
