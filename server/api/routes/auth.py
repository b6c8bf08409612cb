"""Logins and the caller's own account: POST /api/auth/token (OAuth2 password flow) and
/logout, GET /api/me, POST /api/me/password."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from core.clock import utcnow
from core.roles import BUILT_IN
from server.api.deps import ClientAddress, Ctx, CurrentUser, LoginDep, SessionDep, ViewerDep
from server.auth import accounts, sessions
from server.auth.accounts import AccountError
from server.auth.model import User
from server.auth.passwords import MAX_LENGTH, HasherBusy
from server.context import ServerContext
from server.events.types import UserSessionsRevoked

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds


class MeOut(BaseModel):
    username: str
    display_name: str
    role: str
    # The built-in role this one acts as (itself for a built-in role): the UI's home screen.
    acts_as: str
    # The role's own name per language (site-declared roles; built-in ones: the catalogue).
    role_label: dict[str, str]
    buildings: list[str]


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: str = Field(max_length=MAX_LENGTH)


def _throttled(ctx: ServerContext, retry_after: int) -> HTTPException:
    ctx.auth.login_failures.labels("throttled").inc()
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many failed logins; try again in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def _busy() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "too many logins at once; try again in a moment",
        headers={"Retry-After": "2"},
    )


def check_password(
    ctx: ServerContext, s: Session, username: str, password: str, address: str
) -> User | None:
    """The user if `password` is theirs and they are active. Every refusal costs one hash
    (an unknown name is checked against a dummy hash) and counts toward the throttle."""
    auth = ctx.auth
    wait = auth.throttle.retry_after(username, address)
    if wait is not None:
        raise _throttled(ctx, wait)
    user = accounts.by_username(s, username)
    try:
        ok = auth.hasher.verify(user.password_hash if user else None, password)
    except HasherBusy:
        raise _busy() from None
    if ok and user is not None and user.active:
        auth.throttle.succeeded(username)
        if auth.hasher.needs_rehash(user.password_hash):
            user.password_hash = auth.hasher.hash(password)  # settings changed: upgrade
        return user
    reason = "unknown_user" if user is None else ("disabled" if ok else "wrong_password")
    auth.login_failures.labels(reason).inc()
    auth.throttle.failed(username, address)
    log.info("login refused for %r from %s: %s", username[:64], address, reason)
    return None


@router.post(
    "/auth/token",
    responses={401: {"description": "wrong user name or password"}, 429: {}, 503: {}},
)
def token(
    ctx: Ctx,
    session: SessionDep,
    address: ClientAddress,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    user = check_password(ctx, session, form.username, form.password[:MAX_LENGTH], address)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ttl = ctx.settings.token_ttl
    access = sessions.open_session(session, user, now=utcnow(), ttl=ttl, client=address)
    session.commit()
    return TokenOut(access_token=access, expires_in=int(ttl.total_seconds()))


@router.post("/auth/logout", status_code=204)
def logout(ctx: Ctx, session: SessionDep, login: LoginDep) -> None:
    """Ends this session (its token, its tickets and its open event streams)."""
    now = utcnow()
    sessions.revoke(session, login.session_id, now)
    session.commit()
    ctx.bus.publish(
        UserSessionsRevoked(
            at=now, username=login.user.username, session_ids=(login.session_id,), reason="logout"
        )
    )


@router.get("/me")
def me(ctx: Ctx, viewer: ViewerDep, user: CurrentUser) -> MeOut:
    book = ctx.site.role_book
    return MeOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        acts_as=viewer.role.value,
        role_label=dict(book.spec(user.role).label)
        if user.role in book and user.role not in BUILT_IN
        else {},
        buildings=list(user.buildings or []),
    )


@router.post("/me/password", responses={403: {}, 422: {}, 429: {}, 503: {}})
def change_password(
    ctx: Ctx, session: SessionDep, login: LoginDep, address: ClientAddress, body: PasswordChange
) -> TokenOut:
    """A new password for the caller. Every session of theirs ends, this one too (other
    devices, open streams); the answer carries a new token for this client."""
    user = login.user
    if check_password(ctx, session, user.username, body.current_password, address) is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password: not your password")
    now = utcnow()
    try:
        ended = accounts.set_password(session, ctx.auth.rules, user, body.new_password, now=now)
    except AccountError as exc:
        raise HTTPException(422, str(exc)) from None
    except HasherBusy:
        raise _busy() from None
    ttl = ctx.settings.token_ttl
    access = sessions.open_session(session, user, now=now, ttl=ttl, client=address)
    session.commit()
    ctx.bus.publish(
        UserSessionsRevoked(
            at=now, username=user.username, session_ids=tuple(ended), reason="password_changed"
        )
    )
    return TokenOut(access_token=access, expires_in=int(ttl.total_seconds()))
