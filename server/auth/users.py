"""User look-up and the demo accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.roles import Role
from server.auth.model import User
from server.auth.security import hash_password

DEMO_USERS: list[tuple[str, str, Role, list[str]]] = [
    ("admin", "Logistics administrator", Role.ADMIN, []),
    ("maint", "Maintenance team", Role.MAINTENANCE, []),
    ("dorm-a", "Dormitory A manager", Role.DORM_MANAGER, ["dorm-a"]),
    ("dorm-b", "Dormitory B manager", Role.DORM_MANAGER, ["dorm-b"]),
    ("food", "Food-safety officer", Role.FOOD_SAFETY, []),
]


def by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def ensure_demo_users(session: Session, password: str) -> None:
    """Create the demo users once; their password is the demo password at creation."""
    for username, name, role, buildings in DEMO_USERS:
        if by_username(session, username) is None:
            session.add(
                User(
                    username=username,
                    display_name=name,
                    role=role.value,
                    buildings=buildings,
                    password_hash=hash_password(password),
                    active=True,
                )
            )
