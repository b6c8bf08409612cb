"""Simulated meters answering as RS-485 slaves on pseudo-terminal pairs.

Each bus of the site gets a pty pair; the gateway opens the slave side through a stable
symlink (like /dev/serial/by-id/...), and this module answers on the master side: DL/T 645
replies built by core.serial.dlt645, Modbus RTU replies built by pymodbus's PDU classes and
framer. `unplug()` and `replug()` simulate a USB adapter pulled out and put back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import struct
import threading
import time
import tty
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from core.clock import utcnow
from core.profiles import Dlt645Source, MetricSpec, ModbusSource, Profile, SerialTransport
from core.serial import dlt645, modbus
from core.serial.errors import FrameError
from core.site import SiteConfig
from core.units import convert
from firmware_sim.devices.meters import ElectricityMeter, WaterMeter

log = logging.getLogger(__name__)

_REQUESTS = DecodePDU(True)
_REPLY_FRAMER = FramerRTU(DecodePDU(True))
REPLY_DELAY_S = 0.005
STALE_INPUT_S = 0.2  # a partial request this old is line noise: drop it


class Meter(Protocol):
    device_id: str

    def set_fault(self, fault: str) -> None: ...
    def clear(self) -> None: ...
    def step(self, now: datetime, dt_s: float) -> None: ...
    def values(self) -> dict[str, float]: ...

    @property
    def faults(self) -> set[str]: ...


def wire_value(spec: MetricSpec, value: float) -> float:
    """The profile's conversion run backwards: normalised value -> what the meter sends."""
    unit = spec.resolved_unit
    if spec.source_unit and unit:
        value = convert(value, unit, spec.source_unit)
    return (value - spec.offset) / spec.scale


def encode_registers(source: ModbusSource, value: float) -> list[int]:
    if source.type == "float32":
        return modbus.float32_registers(value, source.word_order)
    n = round(value)
    if source.type in ("uint16", "int16"):
        return [n & 0xFFFF]
    hi, lo = (n >> 16) & 0xFFFF, n & 0xFFFF
    return [hi, lo] if source.word_order == "big" else [lo, hi]


@dataclass
class SimulatedSlave:
    device_id: str
    protocol: str  # "dlt645" | "modbus_rtu"
    address: str
    profile: Profile
    meter: Meter
    rng: random.Random

    def reply(self, request: bytes) -> bytes | None:
        """The reply on the line, or None for no answer (comm_loss, not addressed to us)."""
        if "comm_loss" in self.meter.faults:
            return None
        out = self._dlt645(request) if self.protocol == "dlt645" else self._modbus(request)
        if out is not None and "bad_crc" in self.meter.faults and self.rng.random() < 0.3:
            out = out[:-2] + bytes([out[-2] ^ 0x5A]) + out[-1:]
        return out

    def _values_by(self) -> dict[str, float]:
        return self.meter.values()

    def _dlt645(self, request: bytes) -> bytes | None:
        frame = dlt645.parse(request)
        if frame.address not in (self.address, "AAAAAAAAAAAA"):
            return None
        if frame.function != dlt645.READ & 0x1F or len(frame.data) != 4:
            return dlt645.build(self.address, dlt645.READ_ERROR, bytes([0x01]))
        di = int.from_bytes(frame.data, "little")
        values = self._values_by()
        for spec in self.profile.metrics:
            if (
                isinstance(spec.source, Dlt645Source)
                and dlt645.parse_di(spec.source.di) == di
                and spec.key in values
            ):
                return dlt645.build_read_reply(self.address, di, wire_value(spec, values[spec.key]))
        return dlt645.build_error_reply(self.address, 0x02)  # no such data

    def _modbus(self, request: bytes) -> bytes | None:
        frame = modbus.parse(request)
        if frame.slave != int(self.address) or frame.kind != "request":
            return None
        pdu = frame.pdu
        function = "input" if frame.function == 4 else "holding" if frame.function == 3 else None
        address, count = int(getattr(pdu, "address", 0)), int(getattr(pdu, "count", 0))
        regs: dict[int, int] = {}
        values = self._values_by()
        for spec in self.profile.metrics:
            src = spec.source
            if isinstance(src, ModbusSource) and src.function == function and spec.key in values:
                for i, word in enumerate(encode_registers(src, wire_value(spec, values[spec.key]))):
                    regs[src.register_ + i] = word
        wanted = range(address, address + count)
        if function is None or not count or any(r not in regs for r in wanted):
            code = 1 if function is None else 2
            exc = ExceptionResponse(frame.function, code, device_id=frame.slave)
            return bytes(_REPLY_FRAMER.buildFrame(exc))
        cls = ReadInputRegistersResponse if function == "input" else ReadHoldingRegistersResponse
        reply = cls(registers=[regs[r] for r in wanted], dev_id=frame.slave)
        return bytes(_REPLY_FRAMER.buildFrame(reply))


def request_length(buf: bytes) -> int | None:
    """Length of the request at the start of `buf` once it has all arrived."""
    i = 0
    while i < len(buf) and buf[i] == 0xFE:
        i += 1
    if i < len(buf) and buf[i] == dlt645.START:
        n = dlt645.frame_length(buf)
        return n
    if len(buf) < 2:
        return None
    try:
        cls = _REQUESTS.lookupPduClass(buf)
        need = cls.calculateRtuFrameSize(buf) if cls is not None else 0
    except (IndexError, struct.error, ValueError):
        need = 0
    if not need:
        return -1  # not a request we know: noise
    return need if len(buf) >= need else None


class VirtualPort:
    """A pty pair standing in for one RS-485 adapter, reachable through `link`."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master_fd, self._slave_fd = master, slave
        tmp = self.link.with_suffix(".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)

    def unplug(self) -> None:
        """The adapter is pulled out: the device node disappears, open handles fail."""
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master_fd, self._slave_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = None

    @property
    def plugged(self) -> bool:
        return self.master_fd is not None


class SlaveBus:
    """The slaves sharing one port; a thread answers requests in the order they come."""

    def __init__(self, name: str, port: VirtualPort, slaves: list[SimulatedSlave]) -> None:
        self.name = name
        self.port = port
        self.slaves = slaves
        self.requests = 0
        self.answered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"sim-bus-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        buf = b""
        last_byte = time.monotonic()
        while not self._stop.is_set():
            fd = self.port.master_fd
            if fd is None:
                buf = b""
                self._stop.wait(0.05)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    buf += os.read(fd, 512)
                    last_byte = time.monotonic()
            except OSError:
                self._stop.wait(0.05)  # unplugged under us
                continue
            if buf and time.monotonic() - last_byte > STALE_INPUT_S:
                buf = b""
            while buf:
                n = request_length(buf)
                if n is None:
                    break
                if n < 0:
                    buf = buf[1:]
                    continue
                request, buf = buf[:n], buf[n:]
                self._answer(fd, request)

    def _answer(self, fd: int, request: bytes) -> None:
        self.requests += 1
        for slave in self.slaves:
            try:
                reply = slave.reply(request)
            except FrameError:
                continue  # a damaged request: real slaves stay silent
            if reply is not None:
                time.sleep(REPLY_DELAY_S)
                with contextlib.suppress(OSError):
                    os.write(fd, reply)
                self.answered += 1
                return


class SerialSimulator:
    """Every serial meter of a site, on one virtual port per bus, with its physics ticking."""

    def __init__(
        self,
        site: SiteConfig,
        profiles: dict[str, Profile],
        ports_dir: Path,
        *,
        time_scale: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.time_scale = time_scale
        rng = random.Random(seed)
        ports_dir.mkdir(parents=True, exist_ok=True)
        by_bus: dict[str, list[SimulatedSlave]] = {}
        self.meters: dict[str, Meter] = {}
        for device in site.devices:
            profile = profiles[device.profile]
            transport = profile.transport
            if not isinstance(transport, SerialTransport) or device.bus is None:
                continue
            cls = device.device_class or profile.device_class
            meter: Meter
            if cls.value == "water_meter":
                meter = WaterMeter(device.id, random.Random(rng.random()), site.tz)
            else:
                # A dorm room draws a few hundred watts (limits are 300-800 W); a kitchen
                # circuit kilowatts.
                kinds = {b.id: b.kind for b in site.buildings}
                peak = 450.0 if kinds.get(device.building) == "dorm" else 6000.0
                meter = ElectricityMeter(
                    device.id, random.Random(rng.random()), site.tz, peak_w=peak
                )
            self.meters[device.id] = meter
            by_bus.setdefault(device.bus, []).append(
                SimulatedSlave(
                    device.id,
                    transport.kind,
                    device.transport_address,
                    profile,
                    meter,
                    random.Random(rng.random()),
                )
            )
        self.buses = {
            name: SlaveBus(name, VirtualPort(ports_dir / f"tty-{name}"), slaves)
            for name, slaves in sorted(by_bus.items())
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = utcnow()
        for m in self.meters.values():
            m.step(self._last, 0.0)

    @property
    def ports(self) -> dict[str, str]:
        """Bus name -> port path, as the gateway's serial_ports setting wants it."""
        return {name: str(bus.port.link) for name, bus in self.buses.items()}

    def start(self, *, physics: bool = True) -> None:
        """Answer on every bus; `physics=False` freezes the meters' values (for tests that
        compare what the gateway read with what the meter holds)."""
        for bus in self.buses.values():
            bus.start()
        if physics:
            self._thread = threading.Thread(target=self._physics, name="sim-meters", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for bus in self.buses.values():
            bus.stop()
            bus.port.unplug()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _physics(self) -> None:
        while not self._stop.wait(0.5):
            now = utcnow()
            dt = (now - self._last).total_seconds() * self.time_scale
            self._last = now
            for m in self.meters.values():
                m.step(now, dt)

    def command(self, device_id: str, fault: str | None, *, clear: bool = False) -> None:
        meter = self.meters[device_id]
        if clear:
            meter.clear()
        elif fault:
            meter.set_fault(fault)
