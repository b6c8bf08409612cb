"""Accounts: create, change, disable, set passwords. One set of rules for the API and the
`facility users` command. Each change that must end sessions says which it ended, so the
caller can publish UserSessionsRevoked after its commit."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.roles import Role, RoleBook
from server.auth import sessions
from server.auth.model import User
from server.auth.passwords import Hasher, password_problem

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


class AccountError(ValueError):
    """A change that is not allowed; `field` names what was wrong (None: the whole change)."""

    def __init__(self, field: str | None, message: str, *, conflict: bool = False) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
        self.conflict = conflict  # 409 rather than 422: the request is fine, the state is not


@dataclass(frozen=True, slots=True)
class PasswordRules:
    hasher: Hasher
    min_length: int

    def hash(self, username: str, password: str) -> str:
        problem = password_problem(password, username=username, min_length=self.min_length)
        if problem is not None:
            raise AccountError("password", problem)
        return self.hasher.hash(password)


def by_username(s: Session, username: str) -> User | None:
    return s.scalars(select(User).where(User.username == username)).first()


_BUILT_IN_ROLES = RoleBook()


def _role(value: str, roles: RoleBook) -> str:
    """A role the site knows: built in, or declared in its `roles:`."""
    if value not in roles:
        known = ", ".join(sorted(roles.names()))
        raise AccountError("role", f"unknown role {value!r}; known: {known}")
    return value


def _buildings(
    role: str, roles: RoleBook, buildings: Iterable[str], known: set[str] | None
) -> list[str]:
    out = sorted(set(buildings))
    if known is not None:
        for b in out:
            if b not in known:
                raise AccountError("buildings", f"unknown building {b!r}")
    if roles.building_scoped(role) and not out:
        raise AccountError("buildings", f"a {role} sees only their buildings: name them")
    if not roles.spec(role).may_name_buildings and out:
        raise AccountError(
            "buildings", f"a {role} is not scoped by building; leave buildings empty"
        )
    return out


def create_user(
    s: Session,
    rules: PasswordRules,
    *,
    username: str,
    role: str,
    password: str,
    buildings: Iterable[str] = (),
    display_name: str | None = None,
    email: str | None = None,
    known_buildings: set[str] | None = None,
    roles: RoleBook = _BUILT_IN_ROLES,
) -> User:
    if not USERNAME.match(username):
        raise AccountError(
            "username", "2-64 characters: lower-case letters, digits, '.', '_' or '-'"
        )
    if by_username(s, username) is not None:
        raise AccountError("username", f"{username!r} exists already", conflict=True)
    r = _role(role, roles)
    user = User(
        username=username,
        display_name=display_name or username,
        role=r,
        buildings=_buildings(r, roles, buildings, known_buildings),
        email=email,
        password_hash=rules.hash(username, password),
        active=True,
    )
    s.add(user)
    s.flush()
    return user


def _active_admins(s: Session) -> int:
    return (
        s.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active))
        or 0
    )


def update_user(
    s: Session,
    user: User,
    *,
    now: datetime,
    role: str | None = None,
    buildings: Iterable[str] | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    email: str | None = None,
    known_buildings: set[str] | None = None,
    roles: RoleBook = _BUILT_IN_ROLES,
) -> list[str]:
    """Apply a change; returns the sessions it ended (disabling ends all of them)."""
    was_admin = user.role == Role.ADMIN and user.active
    new_role = _role(role, roles) if role is not None else user.role
    if role is not None or buildings is not None:
        user.buildings = _buildings(
            new_role, roles, user.buildings if buildings is None else buildings, known_buildings
        )
        user.role = new_role
    if display_name is not None:
        user.display_name = display_name
    if email is not None:
        user.email = email or None
    if active is not None:
        user.active = active
    if was_admin and not (user.role == Role.ADMIN and user.active):
        s.flush()
        if _active_admins(s) == 0:
            raise AccountError(
                None, "the last active admin cannot be disabled or demoted", conflict=True
            )
    if active is False:
        return sessions.revoke_user(s, user.id, now)
    return []


def set_password(
    s: Session,
    rules: PasswordRules,
    user: User,
    password: str,
    *,
    now: datetime,
    keep_session: str | None = None,
) -> list[str]:
    """New password; every session of the user ends (but `keep_session`)."""
    user.password_hash = rules.hash(user.username, password)
    return sessions.revoke_user(s, user.id, now, keep=keep_session)
