"""What each role may see: one predicate used by every list, detail route and the stream."""

from __future__ import annotations

from dataclasses import dataclass

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
