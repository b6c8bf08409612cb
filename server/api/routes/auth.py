"""POST /api/auth/token (OAuth2 password flow) and GET /api/me."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from core.clock import utcnow
from server.api.deps import Ctx, CurrentUser, SessionDep
from server.auth.security import make_token, verify_password
from server.auth.users import by_username

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token")
def token(
    ctx: Ctx, session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> dict[str, str]:
    user = by_username(session, form.username)
    if user is None or not user.active or not verify_password(form.password, user.password_hash):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Tokens expire on the wall clock even when rules run on a simulated one.
    access = make_token(
        user.username, ctx.settings.secret_key.get_secret_value(), utcnow(), ctx.settings.token_ttl
    )
    return {"access_token": access, "token_type": "bearer"}


@router.get("/me")
def me(user: CurrentUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "buildings": user.buildings,
    }
