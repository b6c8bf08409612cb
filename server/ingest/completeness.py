"""Data completeness per device: messages received against messages expected.

An auditor's first question about a cold-chain log is whether it has holes. Two sources
tell us what was expected:

- devices that number their messages (`seq`): every skipped number is a missing message;
  exact, whatever the cadence;
- serial devices the gateway polls: their poll interval is the expected cadence, so a
  silence of n intervals is n - 1 missing polls.

Devices with neither (event-driven door controllers) have no expected count: their
completeness is unknown (None), not 100 %.

Counting is idempotent: the readings of one message, a batch the uplink redelivers and a
replay after a gateway crash are not counted twice (a message at or before the last counted
one, by seq and time, is ignored). A device whose counter restarts (reboot) starts a new
run of numbers without counting the wrap as a gap. A late message that fills a gap already
counted stays counted as missing: conservative, never optimistic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.profiles import Profile, SerialTransport
from core.site import SiteConfig
from server.ingest.model import Device

if TYPE_CHECKING:
    from server.ingest.live_state import DeviceRow


# Weight of the newest interval in the learned cadence (exponential moving average).
CADENCE_WEIGHT = 0.2


def poll_intervals(site: SiteConfig, profiles: dict[str, Profile]) -> dict[str, int]:
    """Expected cadence (ms) of the devices the gateway polls, from their profiles."""
    out: dict[str, int] = {}
    for d in site.devices:
        transport = profiles[d.profile].transport
        if isinstance(transport, SerialTransport):
            out[d.id] = int(transport.poll.total_seconds() * 1000)
    return out


def count_message(
    device: Device | DeviceRow, seq: int | None, ts_ms: int, poll_ms: int | None
) -> None:
    """Count one reading's message (once per message, whatever the number of readings)."""
    last_ts = device.last_msg_ms
    if seq is not None:
        last_seq = device.last_seq
        if last_seq is not None and last_ts is not None:
            if seq <= last_seq and ts_ms <= last_ts:
                return  # this message, or an earlier one, again
            if seq > last_seq:
                device.seq_gaps = (device.seq_gaps or 0) + seq - last_seq - 1
                if ts_ms > last_ts:
                    _learn(device, (ts_ms - last_ts) / (seq - last_seq))
            # else: a lower number at a later time, the device's counter restarted.
        if device.first_seq is None:
            device.first_seq = seq
        device.last_seq = seq
    else:
        if last_ts is not None and ts_ms <= last_ts:
            return
        if poll_ms:
            device.cadence_ms = poll_ms
            if last_ts is not None:
                missed = round((ts_ms - last_ts) / poll_ms) - 1
                if missed > 0:
                    device.seq_gaps = (device.seq_gaps or 0) + missed
    device.received = (device.received or 0) + 1
    device.last_msg_ms = ts_ms if last_ts is None else max(ts_ms, last_ts)


def _learn(device: Device | DeviceRow, interval_ms: float) -> None:
    old = device.cadence_ms
    new = interval_ms if old is None else old + CADENCE_WEIGHT * (interval_ms - old)
    device.cadence_ms = max(1, round(new))


def completeness_pct(device: Device) -> float | None:
    """Received / expected in %, or None when nothing tells what was expected."""
    if not device.received or (device.first_seq is None and device.cadence_ms is None):
        return None
    gaps = device.seq_gaps or 0
    return round(100.0 * device.received / (device.received + gaps), 2)
