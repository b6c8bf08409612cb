"""What each role may see: one predicate used by every list, detail route and the stream."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from core.roles import Role

COLD_STORAGE = frozenset({"chilled_fridge", "freezer", "sample_fridge"})


@dataclass(frozen=True, slots=True)
class Viewer:
    username: str
    role: Role
    buildings: frozenset[str]


def can_see(
    viewer: Viewer, *, building: str | None, device_class: str | None, category: str | None = None
) -> bool:
    role = viewer.role
    if role in (Role.ADMIN, Role.MAINTENANCE):
        return True
    if role is Role.DORM_MANAGER:
        return building is not None and building in viewer.buildings
    if role is Role.FOOD_SAFETY:
        return device_class in COLD_STORAGE or category == "refrigeration"
    if role is Role.CANTEEN_MANAGER:
        in_scope = building is not None and (not viewer.buildings or building in viewer.buildings)
        return in_scope and (device_class in COLD_STORAGE or category == "refrigeration")
    if role is Role.SECURITY:
        return device_class == "dorm_door" or category == "security_equipment"
    return False


def visible_clause(
    viewer: Viewer,
    *,
    building: ColumnElement[str | None] | InstrumentedAttribute[str | None],
    device_class: ColumnElement[str | None] | InstrumentedAttribute[str | None],
    category: ColumnElement[str] | InstrumentedAttribute[str] | None = None,
) -> ColumnElement[bool]:
    """`can_see` as a SQL condition, so lists filter by scope before LIMIT/OFFSET (a page
    of 50 holds 50 rows the viewer may see). tests/security/test_scope.py checks both agree
    row by row for every role."""
    role = viewer.role
    cold: ColumnElement[bool] = device_class.in_(sorted(COLD_STORAGE))
    if category is not None:
        cold = or_(cold, category == "refrigeration")
    if role in (Role.ADMIN, Role.MAINTENANCE):
        return true()
    if role is Role.DORM_MANAGER:
        return building.in_(sorted(viewer.buildings)) if viewer.buildings else false()
    if role is Role.FOOD_SAFETY:
        return cold
    if role is Role.CANTEEN_MANAGER:
        where = (
            building.in_(sorted(viewer.buildings)) if viewer.buildings else building.is_not(None)
        )
        return and_(where, cold)
    if role is Role.SECURITY:
        door = device_class == "dorm_door"
        return or_(door, category == "security_equipment") if category is not None else door
    return false()
