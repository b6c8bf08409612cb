"""Who may call which route: the one declared table, enforced for every request by
server/api/deps.py `enforce_permission`, and checked route by route and role by role by
tests/security/test_route_matrix.py (which fails on a route missing from the table).

The table decides by role; scope (a dorm manager's buildings, a food-safety officer's cold
storage) is decided inside the routes with server/auth/scope.py, and answers 404 for what
the viewer may not see, 403 for a write outside their scope.

Routes not in the table: under /api/public/ and outside /api/ (pages) they are public;
any other /api/ route needs a login (any role) and does its own role checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.roles import Role

EVERY_ROLE = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Permission:
    roles: frozenset[Role] | None  # None: public, no login
    # GET /api/stream only: a single-use ticket in the query stands in for the header.
    ticket: bool = False

    @property
    def public(self) -> bool:
        return self.roles is None

    def allows(self, role: Role) -> bool:
        return self.roles is None or role in self.roles


PUBLIC = Permission(None)
STAFF = Permission(EVERY_ROLE)


def only(*roles: Role) -> Permission:
    return Permission(frozenset(roles))


def every_role_but(*roles: Role) -> Permission:
    return Permission(EVERY_ROLE - frozenset(roles))


A, M, DM, FS, CM, SEC, CO = (
    Role.ADMIN,
    Role.MAINTENANCE,
    Role.DORM_MANAGER,
    Role.FOOD_SAFETY,
    Role.CANTEEN_MANAGER,
    Role.SECURITY,
    Role.COUNSELLOR,
)

# Who acts on alerts: everyone who is shown some (a counsellor is shown none).
ALERT_HANDLERS = every_role_but(CO)
# Who may declare a maintenance window (silences a device's rules): those responsible for
# the equipment. Ending one early (alarms back on) is open to anyone who sees the device.
MAINTENANCE_DECLARERS = frozenset({A, M, DM, CM})
# Work-order moves: technicians work on orders; the requester's side verifies (see
# server/auth/verification.py for who exactly, per order).
WORKERS = frozenset({A, M})
VERIFIERS = frozenset({A, DM, FS, CM})

COLD_READERS = only(A, FS, CM)
COLD_OFFICERS = only(A, FS)
_COLD_READS = (
    "config",
    "excursions",
    "excursions/{ident}",
    "daily",
    "signoffs",
    "findings",
    "calibrations",
    "meals",
    "samples",
)
_COLD_OFFICERS_ONLY = (
    ("GET", "audit/verify"),  # the officers' tools: the chain check and the report
    ("GET", "report"),
    ("POST", "excursions/{ident}/actions"),
    ("POST", "actions/{ident}/corrections"),
    ("POST", "signoffs"),
    ("POST", "calibrations"),
    ("PATCH", "calibrations/{ident}"),
    ("DELETE", "calibrations/{ident}"),
    ("PUT", "menus/{day}/{meal}"),
    ("POST", "samples"),
    ("POST", "samples/{ident}/removal"),
    ("PATCH", "samples/{ident}"),
    ("DELETE", "samples/{ident}"),
)

PERMISSIONS: dict[tuple[str, str], Permission] = {
    # -- public ----------------------------------------------------------------------------
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # FACILITY_SERVER_METRICS decides: off, loopback, token
    ("GET", "/api/public/commitments"): PUBLIC,
    ("GET", "/api/public/form-token"): PUBLIC,
    ("POST", "/api/public/fault-reports"): PUBLIC,
    ("POST", "/api/public/receipt"): PUBLIC,  # the receipt token (in the body) is the credential
    ("POST", "/api/public/receipt/confirm"): PUBLIC,
    ("GET", "/api/public/kpis"): PUBLIC,  # aggregates only
    ("GET", "/api/public/site"): PUBLIC,
    ("POST", "/api/auth/token"): PUBLIC,
    # -- the session -------------------------------------------------------------------------
    ("POST", "/api/auth/logout"): STAFF,
    ("GET", "/api/me"): STAFF,
    ("POST", "/api/me/password"): STAFF,
    ("POST", "/api/stream/ticket"): STAFF,
    ("GET", "/api/stream"): Permission(EVERY_ROLE, ticket=True),
    # -- equipment -------------------------------------------------------------------------
    ("GET", "/api/devices"): STAFF,
    ("GET", "/api/devices/{device_id}"): STAFF,
    ("GET", "/api/devices/{device_id}/readings"): STAFF,
    ("GET", "/api/devices/{device_id}/maintenance"): STAFF,
    ("POST", "/api/devices/{device_id}/maintenance"): Permission(MAINTENANCE_DECLARERS),
    ("DELETE", "/api/devices/{device_id}/maintenance"): STAFF,
    # -- alerts and work orders ------------------------------------------------------------
    ("GET", "/api/alerts"): STAFF,
    ("GET", "/api/alerts/{alert_id}"): STAFF,
    ("POST", "/api/alerts/{alert_id}/ack"): ALERT_HANDLERS,
    ("POST", "/api/alerts/{alert_id}/assign"): ALERT_HANDLERS,
    ("POST", "/api/alerts/{alert_id}/resolve"): ALERT_HANDLERS,
    ("GET", "/api/work-orders"): STAFF,
    ("GET", "/api/work-orders/{wo_id}"): STAFF,
    ("GET", "/api/work-orders/{wo_id}/photo"): STAFF,
    ("POST", "/api/work-orders"): every_role_but(CO),
    ("POST", "/api/work-orders/{wo_id}/transitions"): Permission(WORKERS | VERIFIERS),
    ("GET", "/api/work-orders/{wo_id}/resolution-photo"): STAFF,
    ("POST", "/api/work-orders/{wo_id}/resolution-photo"): Permission(WORKERS),
    ("GET", "/api/kpis"): only(A, M, DM),
    ("GET", "/api/late-returns"): only(A, DM, CO, SEC),
    # -- patrols (server/api/routes/patrols.py): security everywhere, dorm managers in theirs
    ("GET", "/api/patrols"): only(A, SEC, DM),
    ("GET", "/api/patrols/checkpoints"): only(A, SEC, DM),
    ("GET", "/api/patrols/kpis"): only(A, SEC, DM),
    ("POST", "/api/patrols/scans"): only(A, SEC, DM),
    # -- the web UI's views (server/api/routes/ui.py) ----------------------------------------
    ("GET", "/api/ui/site"): STAFF,
    ("GET", "/api/ui/kpis"): Permission(WORKERS),
    ("GET", "/api/rules"): STAFF,
    ("POST", "/api/rules/dry-run"): only(A),
    ("GET", "/api/maintenance-windows"): STAFF,
    # -- administration --------------------------------------------------------------------
    ("GET", "/api/users"): only(A),
    ("POST", "/api/users"): only(A),
    ("PATCH", "/api/users/{username}"): only(A),
    ("GET", "/api/dead-letters"): only(A),
    # -- the cold-chain record (server/api/routes/cold_chain*.py): read by the officers and
    # canteen managers (their canteens), written by the officers ------------------------
    **{("GET", f"/api/cold-chain/{p}"): COLD_READERS for p in _COLD_READS},
    **{(m, f"/api/cold-chain/{p}"): COLD_OFFICERS for m, p in _COLD_OFFICERS_ONLY},
}


def permission_for(method: str, path: str) -> Permission | None:
    """The declared permission of a route (its path template), or None if undeclared."""
    return PERMISSIONS.get((method, path))


def default_for(path: str) -> Permission:
    """What an undeclared route gets: public pages and /api/public/, else a login."""
    if path.startswith("/api/public/") or not path.startswith("/api/"):
        return PUBLIC
    return STAFF
