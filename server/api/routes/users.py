"""Accounts, for admins: GET/POST /api/users, PATCH /api/users/{username}."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.clock import utcnow
from server.api.deps import Ctx, PageDep, SessionDep, ViewerDep
from server.auth import accounts
from server.auth.accounts import AccountError
from server.auth.model import User
from server.auth.passwords import MAX_LENGTH, HasherBusy
from server.events.types import UserSessionsRevoked

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/users", tags=["users"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    username: str
    display_name: str
    role: str
    buildings: list[str]
    email: str | None
    active: bool


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=MAX_LENGTH)
    role: str = Field(max_length=32)
    buildings: list[str] = Field(default_factory=list, max_length=200)
    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=256)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str | None = Field(default=None, max_length=32)
    buildings: list[str] | None = Field(default=None, max_length=200)
    active: bool | None = None
    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=256)
    # An admin's reset: the user's sessions end; they log in with it and change it.
    password: str | None = Field(default=None, max_length=MAX_LENGTH)


@contextmanager
def account_errors(session: SessionDep) -> Iterator[None]:
    """An AccountError as 409 (the state forbids it) or 422 (the request is wrong), nothing
    of the change kept; a hashing queue that stayed full as 503."""
    try:
        yield
    except AccountError as exc:
        session.rollback()
        code = status.HTTP_409_CONFLICT if exc.conflict else 422
        raise HTTPException(code, str(exc)) from None
    except HasherBusy:
        raise HTTPException(503, "busy; try again", headers={"Retry-After": "2"}) from None


@router.get("")
def list_users(session: SessionDep, page: PageDep) -> list[UserOut]:
    q = select(User).order_by(User.username).limit(page.limit).offset(page.offset)
    return [UserOut.model_validate(u) for u in session.scalars(q)]


@router.post("", status_code=201, responses={409: {}, 422: {}})
def create_user(ctx: Ctx, session: SessionDep, viewer: ViewerDep, body: UserCreate) -> UserOut:
    with account_errors(session):
        user = accounts.create_user(
            session,
            ctx.auth.rules,
            username=body.username,
            role=body.role,
            password=body.password,
            buildings=body.buildings,
            display_name=body.display_name,
            email=body.email,
            known_buildings={b.id for b in ctx.site.buildings},
            roles=ctx.site.role_book,
        )
    session.commit()
    log.info("user %s (%s) created by %s", user.username, user.role, viewer.username)
    return UserOut.model_validate(user)


@router.patch("/{username}", responses={404: {}, 409: {}, 422: {}})
def update_user(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, username: str, body: UserPatch
) -> UserOut:
    user = accounts.by_username(session, username)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    now = utcnow()
    with account_errors(session):
        ended = accounts.update_user(
            session,
            user,
            now=now,
            role=body.role,
            buildings=body.buildings,
            active=body.active,
            display_name=body.display_name,
            email=body.email,
            known_buildings={b.id for b in ctx.site.buildings},
            roles=ctx.site.role_book,
        )
        if body.password is not None:
            ended += accounts.set_password(session, ctx.auth.rules, user, body.password, now=now)
    session.commit()
    changed = ", ".join(sorted(body.model_dump(exclude_unset=True, exclude={"password"})))
    log.info(
        "user %s changed by %s: %s%s",
        user.username,
        viewer.username,
        changed or "-",
        " (password reset)" if body.password is not None else "",
    )
    if ended:
        reason = "disabled" if body.active is False else "password_changed"
        ctx.bus.publish(
            UserSessionsRevoked(
                at=now, username=user.username, session_ids=tuple(ended), reason=reason
            )
        )
    return UserOut.model_validate(user)
