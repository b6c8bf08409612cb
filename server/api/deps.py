"""Request dependencies: the server context, a DB session, the logged-in viewer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from core.roles import Role
from server.auth.model import User
from server.auth.scope import Viewer
from server.auth.security import read_token
from server.auth.users import by_username
from server.context import ServerContext

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_user(
    ctx: Ctx, session: SessionDep, request: Request, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    # EventSource cannot send headers, so the stream may pass the token as a query parameter.
    token = token or request.query_params.get("access_token")
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "login required: send 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if not token:
        raise unauthorized
    username = read_token(token, ctx.settings.secret_key.get_secret_value())
    user = by_username(session, username) if username else None
    if user is None or not user.active:
        raise unauthorized
    return user


CurrentUser = Annotated[User, Depends(get_user)]


def viewer_of(user: User) -> Viewer:
    return Viewer(user.username, Role(user.role), frozenset(user.buildings or []))


def get_viewer(user: CurrentUser) -> Viewer:
    return viewer_of(user)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def require_roles(*roles: Role) -> object:
    def check(viewer: ViewerDep) -> Viewer:
        if viewer.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {viewer.role} may not do this")
        return viewer

    return Depends(check)
