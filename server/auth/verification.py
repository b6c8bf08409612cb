"""Who may move a work order where: technicians work on it; the requester's side verifies
(or reopens) it and gives the satisfaction score, never the person who resolved it.

Verification comes from the reporter (a staff requester here, a public one through the
receipt link: server/work_orders/receipts.py), an admin, or the manager responsible for the
place: a dorm or canteen manager of the order's building, the food-safety officer for cold
storage. Maintenance never verifies: it is the side whose work is being checked.
"""

from __future__ import annotations

from core.roles import Role
from server.auth.permissions import WORKERS
from server.auth.scope import Viewer, can_see
from server.work_orders.model import Status, WorkOrder
from server.work_orders.service import TRANSITIONS

CHECKS = (Status.VERIFIED, Status.REOPENED)


def resolver(wo: WorkOrder) -> str | None:
    """Who last moved the order to resolved."""
    return next((e.actor for e in reversed(wo.history) if e.to_status == Status.RESOLVED), None)


def verify_refusal(viewer: Viewer, wo: WorkOrder) -> str | None:
    """Why `viewer` may not verify or reopen `wo` (for a 403), or None if they may."""
    if viewer.username in (resolver(wo), wo.assignee):
        return (
            "whoever worked on an order does not verify it: the reporter or the place's "
            "manager does"
        )
    role = viewer.role
    if role is Role.MAINTENANCE:
        return "maintenance does not verify repairs: the reporter or the place's manager does"
    if role is Role.ADMIN or (wo.requester is not None and wo.requester == viewer.username):
        return None
    if role in (Role.DORM_MANAGER, Role.CANTEEN_MANAGER):
        if wo.building is not None and wo.building in viewer.buildings:
            return None
        return f"only a manager of building {wo.building or '(none)'} verifies this order"
    if role is Role.FOOD_SAFETY:
        # What their role sees of cold storage (the class catalogue's, resolved in Sight).
        if can_see(
            viewer, building=wo.building, device_class=wo.device_class, category=wo.category
        ):
            return None
        return "the food-safety officer verifies cold-storage repairs only"
    return f"role {role.value} does not verify work orders"


def move_refusal(viewer: Viewer, wo: WorkOrder, to: Status) -> str | None:
    """Why `viewer` may not make this move (403), or None. Whether the move exists from the
    order's status is the service's question (409)."""
    if to in CHECKS:
        return verify_refusal(viewer, wo)
    if viewer.role not in WORKERS:
        return f"role {viewer.role.value} may not move a work order to {to.value}"
    return None


def next_moves(viewer: Viewer, wo: WorkOrder) -> list[Status]:
    """The moves this viewer may make now (what the UI offers as buttons)."""
    return sorted(
        to for to in TRANSITIONS[Status(wo.status)] if move_refusal(viewer, wo, to) is None
    )
