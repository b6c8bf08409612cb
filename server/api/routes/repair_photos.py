"""The technician's photo of a finished repair, kept with its work order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from core.roles import Role
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.scope import Viewer, can_see
from server.work_orders import photos
from server.work_orders.model import WorkOrder

router = APIRouter(prefix="/api", tags=["work orders"])
_STAFF = (Role.ADMIN, Role.MAINTENANCE)

# -- the technician's photo of a repair ------------------------------------------------------


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    photo: str = Field(max_length=3_000_000)  # data URL, JPEG or PNG, at most 2 MB


def _order_in_scope(session: SessionDep, viewer: Viewer, wo_id: int) -> WorkOrder:
    wo = session.get(WorkOrder, wo_id)
    if wo is None or not can_see(
        viewer, building=wo.building, device_class=wo.device_class, category=wo.category
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no work order {wo_id}")
    return wo


def _resolution_photos(ctx: Ctx) -> Path:
    return ctx.settings.data_dir / "photos" / "resolution"


@router.post("/work-orders/{wo_id}/resolution-photo", status_code=201)
def put_resolution_photo(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int, body: PhotoIn
) -> dict[str, Any]:
    """The technician's photo of the finished repair (one per order; a new one replaces it)."""
    if viewer.role not in _STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only maintenance adds repair photos")
    _order_in_scope(session, viewer, wo_id)
    try:
        raw, ext, media = photos.decode_photo(body.photo)
    except photos.PhotoError as exc:
        raise HTTPException(422, f"photo: {exc}") from exc
    folder = _resolution_photos(ctx)
    old = photos.find(folder, wo_id)
    if old is not None:
        old[0].unlink(missing_ok=True)
    photos.save(folder, wo_id, raw, ext)
    return {"work_order_id": wo_id, "media_type": media, "bytes": len(raw)}


@router.get("/work-orders/{wo_id}/resolution-photo")
def get_resolution_photo(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int
) -> FileResponse:
    _order_in_scope(session, viewer, wo_id)
    found = photos.find(_resolution_photos(ctx), wo_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"work order {wo_id} has no repair photo")
    return FileResponse(found[0], media_type=found[1])
