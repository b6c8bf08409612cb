"""Gateway health: the retained status on the uplink (the broker publishes `offline` as the
uplink's last will) with the outbox's fill and the serial devices that stopped answering,
and the fill gauge. Reads the other stages' state; changes none of it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from core.wire import OUTBOX_ALERT_FILL, OUTBOX_CLEAR_FILL
from gateway.metrics import GatewayMetrics
from gateway.sources.serial.targets import PollTarget

log = logging.getLogger(__name__)


class StatusPublisher(Protocol):
    """Where the status goes (gateway.sinks.uplink_mqtt.UplinkSink)."""

    @property
    def connected(self) -> bool: ...

    def publish_status(
        self,
        state: Literal["online", "offline"],
        offline_devices: list[str] | None = None,
        outbox_fill: float | None = None,
    ) -> None: ...


class HealthReporter:
    """Publishes the status when what it says changes, and every `every_s` anyway.

    "Changes" is the outbox crossing the shared alert levels (core.wire: high from
    OUTBOX_ALERT_FILL until back under OUTBOX_CLEAR_FILL, as the server judges it) or the
    set of unreachable serial devices; the fill itself moves all the time.
    """

    def __init__(
        self,
        *,
        fill: Callable[[], float],
        uplink: StatusPublisher,
        serial_targets: Sequence[PollTarget],
        metrics: GatewayMetrics,
        every_s: float,
        cap: int,
    ) -> None:
        self._fill = fill
        self._uplink = uplink
        self._targets = serial_targets
        self._metrics = metrics
        self._every_s = every_s
        self._cap = cap
        self.high = False
        self._sent: tuple[bool, tuple[str, ...]] | None = None
        self._sent_at = 0.0

    def offline_devices(self) -> tuple[str, ...]:
        return tuple(sorted(t.device.id for t in self._targets if t.online is False))

    def check(self, now: float) -> bool:
        """One look at the gateway (`now`: monotonic seconds); True if a status went out."""
        fill = self._fill()
        self._metrics.outbox_fill.set(fill)
        was_high = self.high
        self.high = fill >= (OUTBOX_CLEAR_FILL if was_high else OUTBOX_ALERT_FILL)
        if self.high and not was_high:
            log.warning(
                "outbox %.0f %% full (cap %d items): a sink is not keeping up",
                fill * 100,
                self._cap,
            )
        said = (self.high, self.offline_devices())
        if said == self._sent and now - self._sent_at < self._every_s:
            return False
        if not self._uplink.connected:
            return False  # said again once connected: nothing is marked sent
        self._uplink.publish_status("online", list(said[1]), fill)
        self._sent, self._sent_at = said, now
        return True

    def run(self, stop: threading.Event) -> None:
        """Check every second until `stop` is set."""
        while not stop.wait(1.0):
            self.check(time.monotonic())
