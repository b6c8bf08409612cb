"""What each role may see: one predicate used by every list, detail route and the stream,
and the same as a SQL condition. A role's scope is data (core/roles.py, the site file's
`roles:`), resolved once against the device-class catalogue into a `Sight`."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import InstrumentedAttribute

from core.roles import BUILT_IN, BuildingScope, Role, RoleBook, RoleSpec

# Used when no catalogue says otherwise (tests, a Viewer made by hand).
COLD_STORAGE = frozenset({"chilled_fridge", "freezer", "sample_fridge"})


@dataclass(frozen=True, slots=True)
class Sight:
    """A role's scope with its classes spelled out: classes None sees every class."""

    buildings: BuildingScope
    classes: frozenset[str] | None
    categories: frozenset[str]


def sight_of(spec: RoleSpec, cold_classes: frozenset[str] = COLD_STORAGE) -> Sight:
    scope = spec.scope
    if scope.device_classes is None:
        classes = None
    else:
        classes = frozenset(scope.device_classes) | (cold_classes if scope.cold_storage else set())
    return Sight(scope.buildings, classes, frozenset(scope.categories))


_BUILT_IN_SIGHTS = {Role(name): sight_of(spec) for name, spec in BUILT_IN.items()}


@dataclass(frozen=True, slots=True)
class Viewer:
    username: str
    role: Role  # what the viewer may do: their role, or the built-in one it acts as
    buildings: frozenset[str]
    given_sight: Sight | None = field(default=None, compare=False)
    role_name: str | None = None  # a site-declared role's own name

    @property
    def sight(self) -> Sight:
        return self.given_sight or _BUILT_IN_SIGHTS[self.role]


def _in_buildings(viewer: Viewer, building: str | None) -> bool:
    mode = viewer.sight.buildings
    if mode is BuildingScope.ANY:
        return True
    if building is None:
        return False
    if mode is BuildingScope.ASSIGNED:
        return building in viewer.buildings
    return not viewer.buildings or building in viewer.buildings


def can_see(
    viewer: Viewer, *, building: str | None, device_class: str | None, category: str | None = None
) -> bool:
    if not _in_buildings(viewer, building):
        return False
    sight = viewer.sight
    if sight.classes is None:
        return True
    return device_class in sight.classes or category in sight.categories


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
    sight = viewer.sight
    mode = sight.buildings
    where: ColumnElement[bool]
    if mode is BuildingScope.ANY:
        where = true()
    elif mode is BuildingScope.ASSIGNED or viewer.buildings:
        where = building.in_(sorted(viewer.buildings)) if viewer.buildings else false()
    else:
        where = building.is_not(None)
    if sight.classes is None:
        return where
    what: list[ColumnElement[bool]] = []
    if sight.classes:
        what.append(device_class.in_(sorted(sight.classes)))
    if category is not None and sight.categories:
        what.append(category.in_(sorted(sight.categories)))
    if not what:
        return false()
    return and_(where, or_(*what)) if mode is not BuildingScope.ANY else or_(*what)


class Sights:
    """Every role of a site (built-in and declared) resolved once: who a user acts as and
    what they see."""

    def __init__(self, book: RoleBook, cold_classes: frozenset[str] = COLD_STORAGE) -> None:
        self._roles = {
            str(name): (book.spec(name).acts_as, sight_of(book.spec(name), cold_classes))
            for name in book.names()
        }

    def viewer(self, username: str, role: str, buildings: frozenset[str]) -> Viewer:
        try:
            acts_as, sight = self._roles[role]
        except KeyError:
            # An account whose role the site no longer declares sees nothing, and can do
            # only what the least of roles can (it is a counsellor without buildings).
            return Viewer(username, Role.COUNSELLOR, frozenset(), _NOTHING, role)
        return Viewer(username, acts_as, buildings, sight, role)


_NOTHING = Sight(BuildingScope.ASSIGNED, frozenset(), frozenset())
