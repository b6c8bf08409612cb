"""Who may read the patrol log and scan checkpoints, and the QR codes on the checkpoints.

Scope until roles are site data (then server/auth/scope.py decides): admin and campus
security see and scan every building; a dorm manager their own buildings; no one else.
A checkpoint's QR code carries `cfm-patrol:<checkpoint>:<code>`, the code an HMAC of the
checkpoint under the server's secret: a phone that posts it was shown that very code, which
the checkpoint's id alone cannot forge."""

from __future__ import annotations

import hashlib
import hmac

from core.roles import Role
from server.auth.scope import Viewer

_PURPOSE = b"cfm-patrol-qr:"
QR_PREFIX = "cfm-patrol"
ALL_BUILDINGS = frozenset({Role.ADMIN, Role.SECURITY})


def may_patrol(viewer: Viewer, building: str) -> bool:
    """Read the building's patrol log, and scan its checkpoints."""
    if viewer.role in ALL_BUILDINGS:
        return True
    return viewer.role is Role.DORM_MANAGER and building in viewer.buildings


def patrols_anything(viewer: Viewer) -> bool:
    return viewer.role in ALL_BUILDINGS or viewer.role is Role.DORM_MANAGER


def qr_code(secret: str, checkpoint: str) -> str:
    key = hashlib.sha256(_PURPOSE + secret.encode()).digest()  # not the login key
    return hmac.new(key, checkpoint.encode(), hashlib.sha256).hexdigest()[:16]


def qr_text(secret: str, checkpoint: str) -> str:
    """What the printed QR code on a checkpoint says."""
    return f"{QR_PREFIX}:{checkpoint}:{qr_code(secret, checkpoint)}"


def code_matches(secret: str, checkpoint: str, code: str) -> bool:
    return hmac.compare_digest(qr_code(secret, checkpoint), code.strip().lower())
