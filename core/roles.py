"""Who uses the system: roles as data.

A role has what it may do (`acts_as`: one of the built-in roles, whose routes and work-order
moves it gets) and what it sees (`scope`: buildings, device classes, work-order categories).
The built-in roles below are the defaults; a site file declares more in `roles:` (cleaning,
grounds, a campus security desk...), so routing, scope and the UI follow without code.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """The built-in roles: what each may do is written in server/auth/permissions.py."""

    ADMIN = "admin"
    MAINTENANCE = "maintenance"
    DORM_MANAGER = "dorm_manager"
    FOOD_SAFETY = "food_safety"
    CANTEEN_MANAGER = "canteen_manager"
    SECURITY = "security"
    COUNSELLOR = "counsellor"


class BuildingScope(StrEnum):
    ANY = "any"  # every building, and what belongs to none (a manual order without one)
    ASSIGNED = "assigned"  # only the user's own buildings, which they must have
    # The user's buildings if they have some, else every building (never what has none).
    ASSIGNED_OR_EVERY = "assigned_or_every"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleScope(_Strict):
    """What a role sees: devices (and their alerts) of `device_classes` — all when omitted —
    plus cold storage if `cold_storage`; work orders of those devices or of `categories`;
    all of it only within `buildings`."""

    buildings: BuildingScope = BuildingScope.ANY
    device_classes: tuple[str, ...] | None = None  # None: every class
    cold_storage: bool = False  # every class the catalogue marks as cold storage
    categories: tuple[str, ...] = ()


RoleName = str


class RoleSpec(_Strict):
    acts_as: Role
    scope: RoleScope = RoleScope()
    label: dict[str, str] = Field(default_factory=dict)  # language tag -> name
    # A site's own role is told of what it sees: the alerts of its scope's device classes and
    # the new work orders of its categories, beside the roles a rule names in `notify`.
    told: bool = True

    @property
    def needs_buildings(self) -> bool:
        """Accounts and channels of this role must name their buildings."""
        return self.scope.buildings is BuildingScope.ASSIGNED

    @property
    def may_name_buildings(self) -> bool:
        return self.scope.buildings is not BuildingScope.ANY


_COLD = RoleScope(device_classes=(), cold_storage=True, categories=("refrigeration",))

BUILT_IN: dict[RoleName, RoleSpec] = {
    Role.ADMIN: RoleSpec(acts_as=Role.ADMIN, label={"zh-CN": "管理员", "en": "Administrator"}),
    Role.MAINTENANCE: RoleSpec(
        acts_as=Role.MAINTENANCE, label={"zh-CN": "维修", "en": "Maintenance"}
    ),
    Role.DORM_MANAGER: RoleSpec(
        acts_as=Role.DORM_MANAGER,
        scope=RoleScope(buildings=BuildingScope.ASSIGNED),
        label={"zh-CN": "宿管", "en": "Dorm manager"},
    ),
    Role.FOOD_SAFETY: RoleSpec(
        acts_as=Role.FOOD_SAFETY, scope=_COLD, label={"zh-CN": "食品安全员", "en": "Food safety"}
    ),
    Role.CANTEEN_MANAGER: RoleSpec(
        acts_as=Role.CANTEEN_MANAGER,
        # Listed buildings are theirs; but the role is still one a canteen must name.
        scope=_COLD.model_copy(update={"buildings": BuildingScope.ASSIGNED_OR_EVERY}),
        label={"zh-CN": "食堂经理", "en": "Canteen manager"},
    ),
    Role.SECURITY: RoleSpec(
        acts_as=Role.SECURITY,
        scope=RoleScope(device_classes=("dorm_door",), categories=("security_equipment",)),
        label={"zh-CN": "保卫", "en": "Security"},
    ),
    Role.COUNSELLOR: RoleSpec(
        acts_as=Role.COUNSELLOR,
        # Late returns of their buildings; no devices, alerts or orders.
        scope=RoleScope(buildings=BuildingScope.ASSIGNED, device_classes=()),
        label={"zh-CN": "辅导员", "en": "Counsellor"},
    ),
}

ROLES = frozenset(BUILT_IN)
# Roles whose scope is their buildings: a channel or account for one must say which.
BUILDING_SCOPED_ROLES = frozenset({Role.DORM_MANAGER, Role.CANTEEN_MANAGER, Role.COUNSELLOR})


class RoleBook:
    """The built-in roles and a site's own, looked up by name."""

    def __init__(self, site_roles: dict[RoleName, RoleSpec] | None = None) -> None:
        clash = set(site_roles or {}) & set(BUILT_IN)
        if clash:
            raise ValueError(f"roles {sorted(clash)} are built in; give the site's another name")
        self._specs: dict[RoleName, RoleSpec] = {**BUILT_IN, **(site_roles or {})}

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[RoleName]:
        return [str(name) for name in self._specs]

    def spec(self, name: RoleName) -> RoleSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise ValueError(f"unknown role {name!r}; known: {known}") from None

    def told_of(self, device_class: str | None, category: str | None) -> tuple[RoleName, ...]:
        """The site's own roles told of an alert or order of this class or category (the
        built-in roles are told by rules' `notify`, as the shipped class files say)."""
        out: list[RoleName] = []
        for name, spec in self._specs.items():
            if name in BUILT_IN or not spec.told:
                continue
            classes = spec.scope.device_classes or ()
            if (device_class is not None and device_class in classes) or (
                category is not None and category in spec.scope.categories
            ):
                out.append(name)
        return tuple(out)

    def building_scoped(self, name: RoleName) -> bool:
        return name in BUILDING_SCOPED_ROLES or (
            name in self._specs and self._specs[name].needs_buildings
        )
