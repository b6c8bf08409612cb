"""The demo accounts (demo mode only; real ones are made with `facility users add`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.roles import BUILT_IN, Role, RoleBook
from server.auth.accounts import by_username
from server.auth.model import User
from server.auth.passwords import Hasher

__all__ = ["DEMO_USERS", "by_username", "ensure_demo_users"]

DEMO_USERS: list[tuple[str, str, str, list[str]]] = [
    ("admin", "Logistics administrator", Role.ADMIN, []),
    ("maint", "Maintenance team", Role.MAINTENANCE, []),
    ("dorm-a", "Dormitory A manager", Role.DORM_MANAGER, ["dorm-a"]),
    ("dorm-b", "Dormitory B manager", Role.DORM_MANAGER, ["dorm-b"]),
    ("food", "Food-safety officer", Role.FOOD_SAFETY, []),
]


def ensure_demo_users(
    session: Session, password: str, hasher: Hasher, roles: RoleBook | None = None
) -> None:
    """Create the demo users once; their password is the demo password at creation. The
    password policy does not apply: demo mode serves loopback only, with a published key.
    Each role the site declares itself gets a demo user of the same name."""
    hashed: str | None = None
    book = roles or RoleBook()
    site_roles: list[tuple[str, str, str, list[str]]] = [
        (name, book.spec(name).label.get("en", name), name, [])
        for name in book.names()
        if name not in BUILT_IN and not book.spec(name).needs_buildings
    ]
    for username, name, role, buildings in [*DEMO_USERS, *site_roles]:
        if by_username(session, username) is None:
            hashed = hashed or hasher.hash(password)
            session.add(
                User(
                    username=username,
                    display_name=name,
                    role=str(role),
                    buildings=buildings,
                    password_hash=hashed,
                    active=True,
                )
            )
