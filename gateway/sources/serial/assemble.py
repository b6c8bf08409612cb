"""Serial source assembly: this gateway's serial devices grouped by bus (the site file's
`bus`), and one master per bus whose port is known. The serial libraries (pymodbus,
pyserial) are loaded only when the site gives this gateway a serial device."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.profiles import Profile, SerialTransport
from core.site import SiteConfig
from gateway.metrics import GatewayMetrics
from gateway.sources.serial.targets import PollTarget

if TYPE_CHECKING:
    from gateway.sources.serial.bus import Deliver, SerialBus

log = logging.getLogger(__name__)


def targets_by_bus(
    site: SiteConfig, profiles: dict[str, Profile], gateway_id: str
) -> dict[str, list[PollTarget]]:
    """The serial devices this gateway polls, by bus name. ValueError for a serial device
    the site file puts on no bus."""
    by_bus: dict[str, list[PollTarget]] = {}
    for device in site.devices:
        profile = profiles[device.profile]
        if device.gateway != gateway_id or not isinstance(profile.transport, SerialTransport):
            continue
        if device.bus is None:
            raise ValueError(f"serial device {device.id} has no 'bus' in the site file")
        line = site.buses.get(device.bus)
        by_bus.setdefault(device.bus, []).append(PollTarget(device, profile, line=line))
    return by_bus


def assemble_buses(
    site: SiteConfig,
    profiles: dict[str, Profile],
    gateway_id: str,
    serial_ports: dict[str, str],
    deliver: Deliver,
    metrics: GatewayMetrics,
) -> list[SerialBus]:
    """One master per bus with a port: this host's adapter names (`serial_ports`, from the
    gateway's settings) win over the site file's. A bus with neither is logged and left out,
    its devices offline."""
    by_bus = targets_by_bus(site, profiles, gateway_id)
    if not by_bus:
        return []
    from gateway.sources.serial.bus import SerialBus

    buses = []
    for name, targets in sorted(by_bus.items()):
        line = site.buses.get(name)
        port = serial_ports.get(name) or (line.port if line else None)
        if port is None:
            log.warning(
                "serial bus %s (%s) has no port: set it in the site's buses or in "
                "FACILITY_GATEWAY_SERIAL_PORTS; its devices stay offline",
                name,
                ", ".join(t.device.id for t in targets),
            )
            continue
        buses.append(SerialBus(name, port, targets, deliver, metrics))
    return buses
