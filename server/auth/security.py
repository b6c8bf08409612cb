"""Password hashing (Argon2id) and signed bearer tokens (JWT, HS256)."""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def make_token(username: str, secret: str, now: datetime, ttl: timedelta) -> str:
    return jwt.encode({"sub": username, "iat": now, "exp": now + ttl}, secret, algorithm="HS256")


def read_token(token: str, secret: str) -> str | None:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None
