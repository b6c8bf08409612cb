"""Work orders: list, detail, manual report by staff, lifecycle transitions."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from sqlalchemy import select

from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.model import Role
from server.auth.scope import can_see
from server.ingest.model import Device
from server.notifications.stream import LiveEvent
from server.work_orders import photos, service
from server.work_orders.model import Status, WorkOrder
from server.work_orders.schemas import (
    TransitionIn,
    WorkOrderCreate,
    WorkOrderDetail,
    WorkOrderOut,
)

router = APIRouter(prefix="/api/work-orders", tags=["work orders"])


def _class_of(session: SessionDep, wo: WorkOrder) -> str | None:
    if wo.device_id is None:
        return None
    d = session.get(Device, wo.device_id)
    return d.device_class if d else None


def _sees(session: SessionDep, viewer: ViewerDep, wo: WorkOrder) -> bool:
    return can_see(
        viewer, building=wo.building, device_class=_class_of(session, wo), category=wo.category
    )


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
    return [WorkOrderOut.model_validate(w) for w in session.scalars(q) if _sees(session, viewer, w)]


def _visible(session: SessionDep, viewer: ViewerDep, wo_id: int) -> WorkOrder:
    wo = session.get(WorkOrder, wo_id)
    if wo is None or not _sees(session, viewer, wo):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no work order {wo_id}")
    return wo


@router.get("/{wo_id}")
def get_work_order(session: SessionDep, viewer: ViewerDep, wo_id: int) -> WorkOrderDetail:
    return WorkOrderDetail.model_validate(_visible(session, viewer, wo_id))


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
    if body.device_id is not None:
        d = session.get(Device, body.device_id)
        if d is None or not can_see(viewer, building=d.building, device_class=d.device_class):
            raise HTTPException(422, f"device_id: no device {body.device_id!r}")
        building = building or d.building
    if building is not None and ctx.site.building(building) is None:
        raise HTTPException(422, f"building: unknown building {building!r}")
    wo = service.open_manual(
        session,
        category=body.category,
        priority=body.priority,
        title=body.title,
        description=body.description,
        location=body.location,
        building=building,
        requester=viewer.username,
        contact=None,
        device_id=body.device_id,
        at=ctx.clock.now(),
        tz=ctx.site.tz,
    )
    session.commit()
    out = WorkOrderOut.model_validate(wo)
    ctx.broadcaster.publish(
        LiveEvent(
            "work_order",
            out.model_dump(mode="json"),
            wo.building,
            _class_of(session, wo),
            wo.category,
        )
    )
    return out


# Who may make which move: the requester's side verifies; technicians do the rest.
_VERIFIERS = {
    Role.ADMIN,
    Role.DORM_MANAGER,
    Role.FOOD_SAFETY,
    Role.CANTEEN_MANAGER,
    Role.MAINTENANCE,
}


@router.post("/{wo_id}/transitions")
def transition(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int, body: TransitionIn
) -> WorkOrderDetail:
    wo = _visible(session, viewer, wo_id)
    if body.to in (Status.VERIFIED, Status.REOPENED):
        allowed = viewer.role in _VERIFIERS
    else:
        allowed = viewer.role in (Role.ADMIN, Role.MAINTENANCE)
    if not allowed:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {viewer.role} may not move a work order to {body.to}"
        )
    try:
        service.transition(
            wo,
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
    ctx.broadcaster.publish(
        LiveEvent(
            "work_order",
            WorkOrderOut.model_validate(wo).model_dump(mode="json"),
            wo.building,
            _class_of(session, wo),
            wo.category,
        )
    )
    return WorkOrderDetail.model_validate(wo)
