"""Runs the site's simulated MQTT devices against a broker and obeys fault commands."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from core.clock import Clock, SystemClock
from core.mqtturl import BrokerEndpoint, make_client
from core.profiles import MqttTransport, Profile
from core.site import SiteConfig
from core.wire import TOPIC_ROOT, sim_command_topic
from firmware_sim.devices.campus import (
    AirSensor,
    BinSensor,
    CampusModel,
    LeakSensor,
    PatrolReader,
    SoilSensor,
)
from firmware_sim.devices.door import DEFAULT_CURFEW, DoorController
from firmware_sim.devices.fridge import CHILLED, FREEZER, SAMPLE, Fridge
from firmware_sim.faults import UnknownFault
from firmware_sim.guard import Guard
from firmware_sim.serial_slaves import SerialSimulator

log = logging.getLogger(__name__)

FRIDGE_PARAMS = {"chilled_fridge": CHILLED, "freezer": FREEZER, "sample_fridge": SAMPLE}
# Device class -> the campus model simulating it and the option that sets how often it reports.
CAMPUS_MODELS: dict[str, tuple[type[CampusModel], str]] = {
    "soil_moisture": (SoilSensor, "sensor_report_every_s"),
    "indoor_air": (AirSensor, "sensor_report_every_s"),
    "leak_sensor": (LeakSensor, "leak_report_every_s"),
    "patrol_checkpoint": (PatrolReader, "reader_heartbeat_s"),
    "waste_bin": (BinSensor, "bin_report_every_s"),
}


@dataclass
class _Sim:
    device_id: str
    topic: str
    model: Fridge | DoorController | CampusModel
    seq: int = 0


@dataclass(frozen=True, slots=True)
class SimOptions:
    time_scale: float = 1.0  # simulated seconds per real second (fridge physics)
    report_every_s: float = 60.0  # fridge report interval, real seconds
    door_heartbeat_s: float = 60.0
    held_alarm_s: float = 60.0
    invalid_card_every_s: float = 3.0  # `invalid_cards`: gap between refused cards
    tick_s: float = 1.0
    # Kitchen door openings per simulated hour; 0 for tests that watch one fault alone.
    fridge_door_openings_per_h: float = 4.0
    sensor_report_every_s: float = 60.0  # Zigbee soil and air sensors, real seconds
    leak_report_every_s: float = 300.0  # a leak detector reports changes at once anyway
    reader_heartbeat_s: float = 300.0  # patrol checkpoint readers
    bin_report_every_s: float = 1200.0  # LoRaWAN bin sensors (shared/DOMAIN.md)
    guard_walk_s: float = 60.0  # the simulated guard, between checkpoints of a round
    seed: int | None = None


class SimRunner:
    def __init__(
        self,
        site: SiteConfig,
        profiles: dict[str, Profile],
        broker: BrokerEndpoint,
        options: SimOptions = SimOptions(),
        clock: Clock | None = None,
        serial: SerialSimulator | None = None,
    ) -> None:
        self.site = site
        self.serial = serial  # serial meters take their fault commands through us too
        self.options = options
        self.clock = clock or SystemClock()
        self._broker = broker
        self._rng = random.Random(options.seed)
        self._sims: dict[str, _Sim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for device in site.devices:
            profile = profiles[device.profile]
            if not isinstance(profile.transport, MqttTransport):
                continue
            topic = device.mqtt_topic(site.site, profile.transport)
            cls = device.device_class or profile.device_class
            rng = random.Random(self._rng.random())
            model: Fridge | DoorController | CampusModel
            if cls in FRIDGE_PARAMS:
                model = Fridge(
                    device.id,
                    FRIDGE_PARAMS[cls],
                    rng,
                    door_openings_per_h=options.fridge_door_openings_per_h,
                )
            elif cls == "dorm_door":
                building = site.building(device.building)
                model = DoorController(
                    device.id,
                    rng,
                    held_alarm_s=options.held_alarm_s,
                    invalid_every_s=options.invalid_card_every_s,
                    curfew=building.curfew if building and building.curfew else DEFAULT_CURFEW,
                )
            elif cls in CAMPUS_MODELS:
                kind, every = CAMPUS_MODELS[cls]
                model = kind(device.id, rng, report_every_s=getattr(options, every))
                if isinstance(model, BinSensor):  # its uplink names its LoRaWAN identity
                    model.dev_eui = device.transport_address
                    model.application_id = device.topic_values.get("application_id", "")
            else:
                continue
            self._sims[device.id] = _Sim(device.id, topic, model)
        readers = {s.device_id: s.model for s in self._sims.values()}
        self.guard = Guard(
            site,
            {k: m for k, m in readers.items() if isinstance(m, PatrolReader)},
            options.guard_walk_s,
        )
        self._client = make_client(
            broker, f"facility-sim-{site.site}-{self._rng.randrange(1 << 30)}"
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    @property
    def device_ids(self) -> list[str]:
        return sorted(self._sims)

    def start(self) -> None:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{TOPIC_ROOT}/sim/+/command", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        device_id = msg.topic.split("/")[-2]
        try:
            command = orjson.loads(msg.payload)
            self.command(device_id, command.get("fault"), clear=bool(command.get("clear")))
        except (orjson.JSONDecodeError, AttributeError, UnknownFault, KeyError) as exc:
            log.warning("sim command for %s ignored: %s", device_id, exc)

    def command(self, device_id: str, fault: str | None, *, clear: bool = False) -> None:
        if self.serial is not None and device_id in self.serial.meters:
            self.serial.command(device_id, fault, clear=clear)
            log.info("sim %s: %s", device_id, "faults cleared" if clear else f"fault {fault}")
            return
        with self._lock:
            sim = self._sims.get(device_id)
            if sim is None:
                raise KeyError(f"no simulated device {device_id!r}")
            if clear:
                sim.model.clear()
                log.info("sim %s: faults cleared", device_id)
            elif fault:
                sim.model.set_fault(fault)
                log.info("sim %s: fault %s", device_id, fault)

    def _publish(self, sim: _Sim, body: dict[str, Any]) -> None:
        self._client.publish(sim.topic, orjson.dumps(body), qos=1)

    def _run(self) -> None:
        opts = self.options
        since_report = opts.report_every_s  # report at once on start
        since_heartbeat = opts.door_heartbeat_s
        while not self._stop.wait(opts.tick_s):
            now = self.clock.now()
            local = now.astimezone(self.site.tz)
            ts_ms = int(now.timestamp() * 1000)
            since_report += opts.tick_s
            since_heartbeat += opts.tick_s
            report = since_report >= opts.report_every_s
            heartbeat = since_heartbeat >= opts.door_heartbeat_s
            with self._lock:
                self.guard.step(now)
                for sim in self._sims.values():
                    if isinstance(sim.model, Fridge):
                        sim.model.step(opts.tick_s * opts.time_scale, 6 <= local.hour < 20)
                        if report:
                            sim.seq += 1
                            body = sim.model.payload(sim.seq, ts_ms)
                            if body is not None:
                                self._publish(sim, body)
                    else:
                        sim.model.step(opts.tick_s, local)
                        msgs = sim.model.messages(sim.seq + 1, ts_ms, heartbeat)
                        sim.seq += len(msgs)
                        for body in msgs:
                            self._publish(sim, body)
            if report:
                since_report = 0.0
            if heartbeat:
                since_heartbeat = 0.0


def send_command(
    broker: BrokerEndpoint,
    device_id: str,
    fault: str | None,
    clear: bool = False,
    timeout: float = 10.0,
) -> None:
    """What `facility sim fault|clear` does: one QoS 1 command on the device's topic."""
    client = make_client(broker, f"facility-sim-cli-{random.randrange(1 << 30)}")
    client.connect(broker.host, broker.port, keepalive=10)
    client.loop_start()
    try:
        body = {"clear": True} if clear else {"fault": fault}
        info = client.publish(sim_command_topic(device_id), orjson.dumps(body), qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"broker {broker} did not acknowledge the command")
    finally:
        client.disconnect()
        client.loop_stop()
