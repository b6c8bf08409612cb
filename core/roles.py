"""Who uses the system: the roles accounts have, rules notify and channels address."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MAINTENANCE = "maintenance"
    DORM_MANAGER = "dorm_manager"
    FOOD_SAFETY = "food_safety"
    CANTEEN_MANAGER = "canteen_manager"
    SECURITY = "security"
    COUNSELLOR = "counsellor"


ROLES = frozenset(r.value for r in Role)
# Roles whose scope is their buildings: a channel for one must say which (DOMAIN.md, "Roles").
BUILDING_SCOPED_ROLES = frozenset({Role.DORM_MANAGER, Role.CANTEEN_MANAGER, Role.COUNSELLOR})
