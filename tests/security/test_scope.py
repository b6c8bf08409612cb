"""The SQL form of the scope rule (used to filter before LIMIT) agrees with `can_see` row by
row, for every role, over every combination of building, device class and category."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import select

from core.roles import BuildingScope, Role, RoleBook, RoleScope, RoleSpec
from server.auth.scope import Sights, Viewer, can_see, visible_clause
from server.db.engine import make_engine, session_factory
from server.db.models import Base
from server.work_orders.model import WorkOrder

BUILDINGS = [None, "dorm-a", "dorm-b", "canteen"]
CLASSES = [None, "chilled_fridge", "freezer", "sample_fridge", "dorm_door", "gateway", "meter"]
CATEGORIES = ["refrigeration", "security_equipment", "cleaning", "reported"]
VIEWERS = [
    Viewer("a", Role.ADMIN, frozenset()),
    Viewer("m", Role.MAINTENANCE, frozenset()),
    Viewer("d", Role.DORM_MANAGER, frozenset({"dorm-a"})),
    Viewer("d0", Role.DORM_MANAGER, frozenset()),
    Viewer("f", Role.FOOD_SAFETY, frozenset()),
    Viewer("c", Role.CANTEEN_MANAGER, frozenset({"canteen"})),
    Viewer("c0", Role.CANTEEN_MANAGER, frozenset()),
    Viewer("s", Role.SECURITY, frozenset()),
    Viewer("co", Role.COUNSELLOR, frozenset({"dorm-a"})),
]
# Roles a site declares: their scope is data, and must agree in SQL the same way.
SITE_ROLES = Sights(
    RoleBook(
        {
            "cleaning": RoleSpec(
                acts_as=Role.MAINTENANCE,
                scope=RoleScope(device_classes=("meter",), categories=("cleaning",)),
            ),
            "canteen_cleaning": RoleSpec(
                acts_as=Role.MAINTENANCE,
                scope=RoleScope(
                    buildings=BuildingScope.ASSIGNED, device_classes=(), categories=("cleaning",)
                ),
            ),
            "night_desk": RoleSpec(
                acts_as=Role.SECURITY,
                scope=RoleScope(
                    buildings=BuildingScope.ASSIGNED_OR_EVERY,
                    cold_storage=True,
                    device_classes=("dorm_door",),
                ),
            ),
        }
    )
)
VIEWERS += [
    SITE_ROLES.viewer("cl", "cleaning", frozenset()),
    SITE_ROLES.viewer("cc", "canteen_cleaning", frozenset({"canteen"})),
    SITE_ROLES.viewer("nd", "night_desk", frozenset({"dorm-b"})),
    SITE_ROLES.viewer("nd0", "night_desk", frozenset()),
    SITE_ROLES.viewer("gone", "a_role_the_site_dropped", frozenset({"dorm-a"})),
]


@pytest.mark.parametrize(
    "viewer", VIEWERS, ids=lambda v: f"{v.role_name or v.role.value}-{len(v.buildings)}"
)
def test_sql_scope_matches_can_see(tmp_path: Path, viewer: Viewer) -> None:
    from datetime import UTC, datetime

    engine = make_engine(f"sqlite:///{tmp_path / 'scope.db'}")
    Base.metadata.create_all(engine)  # the models as they are (migrations: elsewhere)
    sessions = session_factory(engine)
    at = datetime(2026, 11, 25, tzinfo=UTC)
    with sessions.begin() as s:
        for building, cls, category in itertools.product(BUILDINGS, CLASSES, CATEGORIES):
            s.add(
                WorkOrder(
                    source="manual",
                    building=building,
                    device_class=cls,
                    category=category,
                    priority="P3",
                    title=f"{building}/{cls}/{category}",
                    created_at=at,
                    respond_due_at=at,
                    due_at=at,
                )
            )
    with sessions() as s:
        everything = list(s.scalars(select(WorkOrder)))
        expected = {
            w.id
            for w in everything
            if can_see(
                viewer, building=w.building, device_class=w.device_class, category=w.category
            )
        }
        clause = visible_clause(
            viewer,
            building=WorkOrder.building,
            device_class=WorkOrder.device_class,
            category=WorkOrder.category,
        )
        got = set(s.scalars(select(WorkOrder.id).where(clause)))
    engine.dispose()
    assert len(everything) == len(BUILDINGS) * len(CLASSES) * len(CATEGORIES)
    assert got == expected
