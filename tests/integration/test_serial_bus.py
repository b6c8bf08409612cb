"""The serial path for real: simulated meters answer on pty pairs, the gateway's bus master
polls them through pyserial with DL/T 645 and Modbus RTU frames, one master per port."""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.register_message import ReadInputRegistersResponse

from core.profiles import load_profiles
from core.readings import Reading
from core.serial import dlt645, modbus
from core.site import DeviceConfig, SerialLine, load_site
from firmware_sim.serial_slaves import SerialSimulator, request_length
from gateway.metrics import GatewayMetrics
from gateway.sources.serial.bus import SerialBus
from gateway.sources.serial.targets import PollTarget
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

DEVICES = [
    # id, profile, address, bus
    ("dlt-1", "dlt645-single-phase", "000000000001", "bus-a"),
    ("dlt-2", "dlt645-single-phase", "000000000002", "bus-a"),
    ("sdm120", "eastron-sdm120", "2", "bus-b"),
    ("water", "cfm-water-modbus", "3", "bus-b"),
    ("ddsu666", "chint-ddsu666", "5", "bus-b"),
    # INT32 low word first and INT16 (Carlo Gavazzi), INT32 high word first (ABB).
    ("et112", "carlo-gavazzi-et112", "6", "bus-b"),
    ("abb-b21", "abb-b21", "7", "bus-b"),
]


@dataclass
class Rig:
    sim: SerialSimulator
    buses: dict[str, SerialBus]
    metrics: GatewayMetrics
    readings: dict[str, list[Reading]] = field(default_factory=dict)
    status: list[tuple[str, bool, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, device: str) -> int:
        with self.lock:
            return len(self.readings.get(device, []))

    def latest(self, device: str) -> dict[str, float]:
        with self.lock:
            return {r.metric: float(r.value) for r in self.readings.get(device, [])}

    def target(self, device: str) -> PollTarget:
        return next(t for b in self.buses.values() for t in b.targets if t.device.id == device)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(
        yaml.safe_dump(
            {
                "site": "t",
                "name": "serial test",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "b", "name": "B", "kind": "utility"}],
                "devices": [
                    {
                        "id": d,
                        "profile": p,
                        "address": a,
                        "bus": bus,
                        "building": "b",
                        "location": d,
                        "gateway": "gw",
                    }
                    for d, p, a, bus in DEVICES
                ],
            }
        )
    )
    profiles = load_profiles()
    site = load_site(site_file, profiles)
    sim = SerialSimulator(site, profiles, tmp_path / "ports", seed=3)
    sim.start(physics=False)
    metrics = GatewayMetrics()
    rig = Rig(sim, {}, metrics)

    def deliver(device: str, readings: list[Reading]) -> None:
        with rig.lock:
            rig.readings.setdefault(device, []).extend(readings)

    for name, port in sim.ports.items():
        targets = [
            PollTarget(d, profiles[d.profile], poll_s=0.2) for d in site.devices if d.bus == name
        ]
        rig.buses[name] = SerialBus(
            name,
            port,
            targets,
            deliver,
            metrics,
            lambda dev, up, why: rig.status.append((dev, up, why)),
            retries=1,
            max_backoff_s=1.0,
        )
    for bus in rig.buses.values():
        bus.start()
    yield rig
    for bus in rig.buses.values():
        bus.stop()
    sim.stop()


@pytest.mark.parametrize("device", [d[0] for d in DEVICES])
def test_every_serial_profile_reads_the_meters_values(rig: Rig, device: str) -> None:
    profile_metrics = {m.key for m in rig.target(device).profile.metrics}
    wait_until(lambda: set(rig.latest(device)) == profile_metrics, 20, f"{device} read")
    want = rig.sim.meters[device].values()
    got = rig.latest(device)
    for key, value in got.items():
        # float32 keeps ~7 digits; DL/T 645 BCD keeps the identifier's decimals.
        assert value == pytest.approx(want[key], rel=1e-6, abs=0.051), key
    unit = {r.metric: r.unit for r in rig.readings[device]}
    assert unit.get("power", "W") == "W" and unit.get("energy", "kWh") == "kWh"


def test_a_silent_meter_goes_offline_and_its_bus_neighbour_keeps_answering(rig: Rig) -> None:
    wait_until(lambda: rig.count("dlt-1") > 0 and rig.count("dlt-2") > 0, 20, "both polled")
    rig.sim.command("dlt-2", "comm_loss")
    wait_until(lambda: ("dlt-2", False) in {(d, up) for d, up, _ in rig.status}, 30, "offline")
    before = rig.count("dlt-1")
    wait_until(lambda: rig.count("dlt-1") > before + 8, 20, "dlt-1 still polled")
    assert rig.target("dlt-2").stats.timeouts >= 3
    assert (
        rig.metrics.registry.get_sample_value("gateway_serial_device_online", {"device": "dlt-2"})
        == 0
    )
    rig.sim.command("dlt-2", None, clear=True)
    wait_until(lambda: rig.target("dlt-2").online is True, 30, "dlt-2 back")


def test_corrupt_replies_are_counted_and_retried(rig: Rig) -> None:
    rig.sim.command("sdm120", "bad_crc")
    before = rig.count("sdm120")

    def crc_errors() -> float:
        v = rig.metrics.registry.get_sample_value(
            "gateway_serial_frame_errors_total",
            {"bus": "bus-b", "device": "sdm120", "reason": "crc"},
        )
        return v or 0.0

    wait_until(lambda: crc_errors() >= 3, 30, "CRC errors counted")
    wait_until(lambda: rig.count("sdm120") > before + 10, 30, "readings still arriving")
    assert rig.target("sdm120").online is True
    # Nothing corrupt got through: every value is still the meter's.
    want = rig.sim.meters["sdm120"].values()
    for key, value in rig.latest("sdm120").items():
        assert value == pytest.approx(want[key], rel=1e-6), key


def test_an_unplugged_adapter_is_a_bus_error_and_is_reopened(rig: Rig) -> None:
    bus = rig.buses["bus-b"]
    wait_until(lambda: rig.count("water") > 0, 20, "water meter polled")
    port = rig.sim.buses["bus-b"].port
    port.unplug()
    wait_until(lambda: not bus.bus_up, 20, "bus error seen")
    assert all(t.online is False for t in bus.targets)
    assert any("bus bus-b error" in why for _, up, why in rig.status if not up)
    assert rig.buses["bus-a"].bus_up  # the other port is not affected
    port.plug()
    before = rig.count("water")
    wait_until(lambda: bus.bus_up and rig.count("water") > before, 30, "bus reopened")
    wait_until(lambda: all(t.online for t in bus.targets), 20, "devices back online")


# -- a slave that answers wrongly, on a real pty --------------------------------------------


class MisbehavingSlave:
    """One meter on its own pty pair whose replies are damaged on purpose (`mode`): what a
    bad cable, a second master or an address clash put on a real RS-485 line."""

    OTHER_DLT = "000000000099"

    def __init__(self, protocol: str, address: str) -> None:
        self.protocol, self.address = protocol, address
        self.master, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        self.port = os.ttyname(self._slave_fd)
        self.mode = "good"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self.master)
        os.close(self._slave_fd)

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                buf += os.read(self.master, 512)
            n = request_length(buf)
            if n is None:
                continue
            if n < 0:
                buf = b""
                continue
            request, buf = buf[:n], buf[n:]
            reply = self.reply(request)
            if reply:
                os.write(self.master, reply)

    def reply(self, request: bytes) -> bytes:
        if self.protocol == "dlt645":
            di = int.from_bytes(dlt645.parse(request).data, "little")
            good = dlt645.build_read_reply(self.address, di, 1.0)
            wrong = dlt645.build_read_reply(self.OTHER_DLT, di, 1.0)
            error = dlt645.build_error_reply(self.address, 0x02)
        else:
            req = modbus.parse(request).pdu
            regs = modbus.float32_registers(1.0) * (int(req.count) // 2)
            framer = FramerRTU(DecodePDU(True))
            good = bytes(framer.buildFrame(ReadInputRegistersResponse(registers=regs, dev_id=2)))
            wrong = bytes(framer.buildFrame(ReadInputRegistersResponse(registers=regs, dev_id=3)))
            error = bytes(framer.buildFrame(ExceptionResponse(4, 2, device_id=2)))
        return {
            "good": good,
            "wrong_address": wrong,
            "truncated": good[:-3],
            "noise": bytes([0x00, 0x5A, 0xA5, 0x3C, 0xC3, 0x99]),
            "checksum": good[:-2] + bytes([good[-2] ^ 0x01]) + good[-1:],  # DL/T 645 CS
            "crc": good[:-1] + bytes([good[-1] ^ 0x01]),  # Modbus CRC high byte
            "error_reply": error,
        }[self.mode]


@pytest.mark.parametrize(
    ("protocol", "mode"),
    [
        ("dlt645", "wrong_address"),
        ("dlt645", "truncated"),
        ("dlt645", "noise"),
        ("dlt645", "checksum"),
        ("dlt645", "error_reply"),
        ("modbus", "wrong_address"),
        ("modbus", "truncated"),
        ("modbus", "noise"),
        ("modbus", "crc"),
        ("modbus", "error_reply"),
    ],
)
def test_bad_replies_are_refused_with_their_reason_and_the_bus_carries_on(
    protocol: str, mode: str
) -> None:
    profiles = load_profiles()
    profile = profiles["dlt645-single-phase" if protocol == "dlt645" else "eastron-sdm120"]
    address = "000000000001" if protocol == "dlt645" else "2"
    slave = MisbehavingSlave(protocol, address)
    device = DeviceConfig(
        id="m", profile=profile.profile, building="b", location="x", address=address, bus="t"
    )
    metrics = GatewayMetrics()
    got: list[Reading] = []
    bus = SerialBus(
        "t",
        slave.port,
        [PollTarget(device, profile, poll_s=0.2)],
        lambda _dev, readings: got.extend(readings),
        metrics,
        retries=1,
        max_backoff_s=1.0,
    )

    def errors() -> float:
        labels = {"bus": "t", "device": "m", "reason": mode}
        v = metrics.registry.get_sample_value("gateway_serial_frame_errors_total", labels)
        return v or 0.0

    slave.mode = mode
    bus.start()
    try:
        wait_until(lambda: errors() >= 2, 30, f"{mode} replies counted")
        assert got == []  # nothing from a damaged reply reached the outbox
        assert bus.bus_up
        slave.mode = "good"  # the line heals: the same master reads the meter again
        wait_until(lambda: {r.metric for r in got} >= {"voltage", "power"}, 30, "good reads")
        # Every value the slave sends is 1.0; DL/T 645 carries power in kW, normalised to W.
        kw = 1000.0 if protocol == "dlt645" else 1.0
        assert {r.metric: r.value for r in got}["power"] == pytest.approx(kw)
        assert {r.metric: r.value for r in got}["voltage"] == pytest.approx(1.0)
    finally:
        bus.stop()
        slave.close()


def test_the_sites_line_settings_override_the_profiles() -> None:
    profiles = load_profiles()
    profile = profiles["dlt645-single-phase"]
    device = DeviceConfig(id="m", profile=profile.profile, building="b", location="x", bus="t")
    plain = PollTarget(device, profile)
    tuned = PollTarget(device, profile, line=SerialLine(baudrate=9600, parity="N"))
    assert (plain.transport.baudrate, plain.transport.parity) == (2400, "E")
    assert (tuned.transport.baudrate, tuned.transport.parity) == (9600, "N")
    assert tuned.transport.poll == plain.transport.poll  # what the site leaves out is kept
