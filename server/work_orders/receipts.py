"""Receipt tokens: the public reporter's link to their order (follow it, then confirm and
rate the repair). A token is `<order id>.<HMAC>` under a key derived from the server's secret
for this purpose only, so it names one order and cannot be forged for another; whoever holds
it is the reporter. No expiry: a repair can take days, and after verification the receipt
only shows what happened. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"cfm-public-receipt:"
MAX_LENGTH = 80


class ReceiptTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(_PURPOSE + secret.encode()).digest()  # not the login key

    def _mac(self, wo_id: int) -> str:
        return hmac.new(self._key, str(wo_id).encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, wo_id: int) -> str:
        return f"{wo_id}.{self._mac(wo_id)}"

    def order_id(self, token: str) -> int | None:
        """The order a genuine token names; None for anything else."""
        wo_id, _, mac = token.strip().partition(".")
        if not wo_id.isdigit() or len(wo_id) > 12 or len(token) > MAX_LENGTH:
            return None
        return int(wo_id) if hmac.compare_digest(mac, self._mac(int(wo_id))) else None
