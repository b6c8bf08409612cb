"""The uplink boundary: what the server believes of a message on a gateway's topic. Pure
(no I/O); the consumer counts, logs and dead-letters what is refused.

The gateway is the one named by the topic (the broker's ACL lets each gateway account write
only its own), never the message's `gw` field. Refused whole: a message on a malformed
topic, over the size or item cap, not JSON, not the wire schema, or whose `gw` differs from
the topic. Refused item by item, the rest of the batch kept (a gateway may forge readings of
its own devices anyway, so keeping them adds no risk): readings and events of devices the
site file does not list or gives to another gateway, times later than now plus the allowed
clock skew or out of range (before 2000, older than the age limit, or not a Unix-ms
integer), sequence numbers beyond 64 bits. A gateway the site file does not name is refused
whole, data and status alike (no account may pass itself off as a new gateway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import orjson

from core.readings import unix_ms
from core.site import SiteConfig
from core.wire import TOPIC_ROOT, UplinkBatch, WireError, decode_batch

TOPIC = re.compile(rf"^{re.escape(TOPIC_ROOT)}/gw/([A-Za-z0-9._-]{{1,64}})/(data|status)$")
EPOCH_FLOOR_MS = unix_ms(datetime(2000, 1, 1, tzinfo=UTC))
INT64_MAX = 2**63 - 1
DETAILS_KEPT = 20  # item refusals described per message; the rest are counted


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    detail: str


@dataclass
class Verdict:
    """What to process of one message, and what was refused (with `whole` if everything)."""

    gateway_id: str | None
    batch: UplinkBatch | None = None
    refusals: list[Refusal] = field(default_factory=list)
    refused_items: int = 0
    whole: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # refusals by reason, all of them

    def refuse_whole(self, reason: str, detail: str) -> Verdict:
        self.batch = None
        self.whole = True
        self.refusals.append(Refusal(reason, detail))
        self.counts[reason] = self.counts.get(reason, 0) + 1
        return self

    @property
    def reason(self) -> str | None:
        """The message's main reason: the first refusal's."""
        return self.refusals[0].reason if self.refusals else None


def topic_gateway(topic: str) -> tuple[str, str] | None:
    """(gateway id, "data" | "status") of an uplink topic, or None if it is not one."""
    m = TOPIC.match(topic)
    return (m.group(1), m.group(2)) if m else None


class UplinkGuard:
    def __init__(
        self,
        site: SiteConfig,
        *,
        max_bytes: int,
        max_items: int,
        max_future: timedelta,
        max_age: timedelta,
    ) -> None:
        self.gateway_of = {d.id: d.gateway for d in site.devices}
        self.gateways = frozenset(self.gateway_of.values())
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.max_future = max_future
        self.max_age = max_age

    def check_data(self, topic: str, payload: bytes, now: tuple[datetime, ...]) -> Verdict:
        """`now`: the clocks to judge times by (wall and rule clock): an item is in the future
        when it is ahead of the latest of them, too old when behind the earliest."""
        parsed = topic_gateway(topic)
        v = Verdict(parsed[0] if parsed else None)
        if parsed is None or parsed[1] != "data":
            return v.refuse_whole("bad_topic", f"not a gateway data topic: {topic[:200]!r}")
        if parsed[0] not in self.gateways:
            return v.refuse_whole(
                "unknown_gateway", f"gateway {parsed[0]!r} has no devices in the site file"
            )
        if len(payload) > self.max_bytes:
            return v.refuse_whole(
                "oversize", f"{len(payload)} bytes; at most {self.max_bytes} are taken"
            )
        try:
            raw = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            return v.refuse_whole("not_json", f"uplink payload is not JSON: {exc}")
        if not isinstance(raw, dict):
            return v.refuse_whole("wire_schema", "uplink payload is not a JSON object")
        gw = raw.get("gw")
        if gw != v.gateway_id:
            return v.refuse_whole(
                "gateway_mismatch",
                f"batch says gw={str(gw)[:64]!r} on the topic of gateway {v.gateway_id!r}",
            )
        for key in ("first", "last"):
            pos = raw.get(key)
            if not _int(pos) or not 0 <= pos <= INT64_MAX:
                return v.refuse_whole("wire_schema", f"{key}: not an outbox position")
        lists = [raw.get("readings", []), raw.get("events", [])]
        if not all(isinstance(x, list) for x in lists):
            return v.refuse_whole("wire_schema", "readings and events must be lists")
        if sum(len(x) for x in lists) > self.max_items:
            return v.refuse_whole(
                "oversize", f"{sum(len(x) for x in lists)} items; at most {self.max_items}"
            )
        lo = max(EPOCH_FLOOR_MS, unix_ms(min(now) - self.max_age))
        hi = unix_ms(max(now) + self.max_future)
        changed = False
        for key, items in zip(("readings", "events"), lists, strict=True):
            kept = [i for i in items if self._item_ok(v, i, lo, hi)]
            if len(kept) != len(items):
                raw[key] = kept
                changed = True
        try:
            v.batch = decode_batch(orjson.dumps(raw) if changed else payload)
        except WireError as exc:
            return v.refuse_whole("wire_schema", str(exc))
        return v

    def _item_ok(self, v: Verdict, item: Any, lo: int, hi: int) -> bool:
        if not isinstance(item, dict):
            return True  # the schema check names it, and refuses the whole message
        device = str(item.get("d", ""))[:64]
        reason = detail = ""
        owner = self.gateway_of.get(device, None)
        if device not in self.gateway_of:
            reason, detail = "unknown_device", "not in the site file"
        elif owner != v.gateway_id:
            reason, detail = "foreign_device", f"belongs to gateway {owner!r}"
        else:
            for key in ("t", "r"):
                t = item.get(key)
                if not _int(t) or t < lo:
                    reason, detail = "time_out_of_range", f"{key}={str(t)[:32]} (Unix ms)"
                    break
                if t > hi:
                    reason, detail = "future_time", f"{key}={t} is ahead of the server's clock"
                    break
            s = item.get("s")
            if not reason and s is not None and (not _int(s) or not -INT64_MAX <= s <= INT64_MAX):
                reason, detail = "bad_value", f"s={str(s)[:32]} is not a 64-bit counter"
        if not reason:
            return True
        v.refused_items += 1
        v.counts[reason] = v.counts.get(reason, 0) + 1
        if len(v.refusals) < DETAILS_KEPT:
            v.refusals.append(Refusal(reason, f"{device!r}: {detail}"))
        return False


def _int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)
