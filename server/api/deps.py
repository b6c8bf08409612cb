"""Request dependencies: the server context, a DB session, the login and its permission,
the viewer's scope, bounded paging."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from core.clock import utcnow
from server.api.limits import client_address
from server.auth import sessions
from server.auth.model import User
from server.auth.permissions import Permission, default_for, permission_for
from server.auth.scope import Viewer
from server.auth.sessions import Login
from server.context import ServerContext

# Documents the login in the OpenAPI schema; the token itself is read in `_login`.
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
UNAUTHORIZED = "login required: send 'Authorization: Bearer <token>'"
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000
_UNSET = object()


def get_ctx(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_ctx)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def route_permission(request: Request) -> Permission:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return permission_for(request.method, path) or default_for(path)


def _login(request: Request, session: Session, permission: Permission) -> Login | None:
    """The request's login, from its bearer token (or, where the route allows, a stream
    ticket); looked up once per request."""
    cached = getattr(request.state, "cfm_login", _UNSET)
    if cached is not _UNSET:
        return cast("Login | None", cached)
    login: Login | None = None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    now = utcnow()  # sessions expire on the wall clock, even when rules run on another
    if scheme.lower() == "bearer" and token:
        login = sessions.login_for(session, token.strip(), now)
    elif permission.ticket and "ticket" in request.query_params:
        login = sessions.redeem_ticket(session, request.query_params["ticket"], now)
    request.state.cfm_login = login
    return login


def enforce_permission(
    request: Request, session: SessionDep, _doc: Annotated[str | None, Depends(oauth2)]
) -> None:
    """Installed on the whole app: the declared permission of the route, for every request."""
    permission = route_permission(request)
    if permission.public:
        return
    login = _login(request, session, permission)
    if login is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
        )
    # A site-declared role may do what the built-in role it acts as may.
    role = get_ctx(request).sights.viewer(login.user.username, login.user.role, frozenset()).role
    if not permission.allows(role):
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {role.value} may not use {request.method} {path}"
        )


def get_login(request: Request, session: SessionDep) -> Login:
    login = _login(request, session, route_permission(request))
    if login is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
        )
    return login


LoginDep = Annotated[Login, Depends(get_login)]


def get_user(login: LoginDep) -> User:
    return login.user


CurrentUser = Annotated[User, Depends(get_user)]


def viewer_of(ctx: ServerContext, user: User) -> Viewer:
    """The user as the server sees them: what their role may do and see (built-in or a role
    the site file declares)."""
    return ctx.sights.viewer(user.username, user.role, frozenset(user.buildings or []))


def get_viewer(ctx: Ctx, user: CurrentUser) -> Viewer:
    return viewer_of(ctx, user)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int


def get_paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")] = 0,
) -> Paging:
    return Paging(limit, offset)


PageDep = Annotated[Paging, Depends(get_paging)]


def get_client_address(ctx: Ctx, request: Request) -> str:
    return client_address(request, tuple(ctx.settings.trusted_proxies))


ClientAddress = Annotated[str, Depends(get_client_address)]
