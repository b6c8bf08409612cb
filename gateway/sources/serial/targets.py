"""What a serial bus master polls: each device with its profile, line settings and polling
state. Plain data, so the gateway can group its serial devices by bus without loading the
serial libraries."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.profiles import Profile, SerialTransport
from core.site import DeviceConfig, SerialLine


@dataclass
class DeviceStats:
    requests: int = 0
    timeouts: int = 0
    frame_errors: int = 0
    polls_ok: int = 0
    polls_failed: int = 0
    last_latency_s: float | None = None


@dataclass
class PollTarget:
    """A serial device and its polling state."""

    device: DeviceConfig
    profile: Profile
    next_due: float = 0.0
    failures: int = 0  # consecutive failed polls
    online: bool | None = None
    stats: DeviceStats = field(default_factory=DeviceStats)
    poll_s: float | None = None  # overrides the profile's poll interval
    line: SerialLine | None = None  # the site's settings of this device's line

    @property
    def transport(self) -> SerialTransport:
        t = self.profile.transport
        assert isinstance(t, SerialTransport)
        if self.line is None:
            return t
        update = {
            k: v
            for k, v in (
                ("baudrate", self.line.baudrate),
                ("parity", self.line.parity),
                ("stopbits", self.line.stopbits),
            )
            if v is not None
        }
        return t.model_copy(update=update) if update else t

    @property
    def interval_s(self) -> float:
        return self.poll_s if self.poll_s is not None else self.transport.poll.total_seconds()
