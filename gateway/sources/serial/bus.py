"""Serial source: one master per RS-485 port. A single thread owns the port and polls its
devices strictly in turn (never two requests on one bus), each at its own interval, with
timeouts, retries with back-off, the protocol's inter-frame silence, and per-device and
per-bus statistics. It schedules, frames and does I/O; what an answer means is decoded in
gateway/decode/ (serial.py, modbus_registers.py, dlt645_items.py).

Modbus RTU goes through pymodbus's sync ModbusSerialClient (framing, CRC, reply sizes and
timeouts are pymodbus's); DL/T 645-2007 through core.serial.dlt645 on the same pyserial handle.
The master opens the port itself and lends that handle to the client, so one bus is one handle
whatever its devices speak, the reason a port cannot be opened is reported as it is, and the
line settings are switched per device when they differ.
"""

from __future__ import annotations

import logging
import struct
import termios
import threading
import time
from collections.abc import Callable
from datetime import datetime

import serial
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import DecodePDU

from core.clock import utcnow
from core.profiles import Dlt645Source, MetricSpec, ModbusSource, SerialTransport
from core.readings import Reading
from core.serial import dlt645, modbus
from core.serial.errors import BusError, FrameError
from gateway.decode.modbus_registers import register_count
from gateway.decode.serial import SerialAnswer, answer_number, reject_reason, serial_reading
from gateway.decode.values import ValueRejected, coerce
from gateway.metrics import GatewayMetrics
from gateway.sources.serial.targets import PollTarget

log = logging.getLogger(__name__)


class _CountedHere(logging.Filter):
    """pymodbus logs each unanswered request at ERROR; this master counts and reports those
    per device with their reason, so pymodbus's duplicate lines would only bury real errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("No response received", "Repeating"))


logging.getLogger("pymodbus.logging").addFilter(_CountedHere())

_REPLY_DECODER = DecodePDU(False)
MAX_BACKOFF_S = 60.0


class ReplyTimeout(Exception):
    pass


Deliver = Callable[[str, list[Reading]], None]
"""Hands a poll's readings to the gateway; returns once they are durably in the outbox."""
StatusChange = Callable[[str, bool, str], None]
"""(device_id, online, why) when a device starts or stops answering."""


def char_time(baudrate: int, parity: str) -> float:
    """Seconds per character on the line: start + 8 data + parity + stop bits."""
    bits = 10 + (0 if parity == "N" else 1)
    return bits / baudrate


def silence_s(transport: SerialTransport) -> float:
    """Inter-frame gap before a request. Modbus: 3.5 characters (1.75 ms fixed above
    19200 baud, as the spec allows). DL/T 645 names no figure; masters use tens of ms."""
    if transport.kind == "modbus_rtu":
        return (
            0.00175
            if transport.baudrate > 19200
            else 3.5 * char_time(transport.baudrate, transport.parity)
        )
    return max(0.02, 3.5 * char_time(transport.baudrate, transport.parity))


def modbus_reply_length(buf: bytes) -> int | None:
    """Bytes of the whole reply once its header has arrived (pymodbus's size rules)."""
    if len(buf) < 3:
        return None
    if buf[1] & 0x80:
        need = 5
    else:
        try:
            cls = _REPLY_DECODER.lookupPduClass(buf)
            need = cls.calculateRtuFrameSize(buf) if cls is not None else 0
        except (IndexError, struct.error, ValueError):
            need = 0
        if not need:
            return None  # unknown: read until the timeout, then the parser names the fault
    return need if len(buf) >= need else None


class SerialBus:
    """The master of one port. `start()` runs it in its own thread until `stop()`."""

    def __init__(
        self,
        name: str,
        port: str,
        targets: list[PollTarget],
        deliver: Deliver,
        metrics: GatewayMetrics,
        on_status: StatusChange | None = None,
        *,
        retries: int = 2,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.name = name
        self.port = port
        self.targets = targets
        self.deliver = deliver
        self.metrics = metrics
        self.on_status = on_status
        self.retries = retries
        self.max_backoff_s = max_backoff_s
        self.port_errors = 0
        self.bus_up = False
        self._ser: serial.Serial | None = None
        self._line: tuple[int, str, int] | None = None
        self._last_activity = 0.0
        self._clients: dict[tuple[int, str, int, float], ModbusSerialClient] = {}
        self._rx_fault: FrameError | None = None  # what pymodbus dropped during this request
        self._rx_slave = 0
        self._rx_seen = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"serial-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if self._ser is None:
                try:
                    self._open()
                except (serial.SerialException, OSError) as exc:
                    self._bus_down(f"cannot open {self.port}: {exc}")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                backoff = 0.5
            target = min(self.targets, key=lambda t: t.next_due)
            wait = target.next_due - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 1.0))
                continue
            try:
                self.poll(target)
            except (serial.SerialException, OSError, termios.error) as exc:
                # The adapter went away mid-poll: every device behind it is unreachable.
                self._close()
                self._bus_down(f"{self.port} failed: {exc}")
            except Exception:
                # A bug must cost this poll, not the bus thread (the other devices keep going).
                log.exception("serial %s: poll of %s failed", self.name, target.device.id)
                target.next_due = time.monotonic() + target.interval_s

    # -- port ------------------------------------------------------------------------------
    def _open(self) -> None:
        first = self.targets[0].transport
        self._ser = serial.Serial(
            self.port,
            baudrate=first.baudrate,
            parity=first.parity,
            stopbits=first.stopbits,
            bytesize=8,
            timeout=0.01,
            write_timeout=2,
        )
        self._line = (first.baudrate, first.parity, first.stopbits)
        self.bus_up = True
        self.metrics.serial_bus_up.labels(self.name).set(1)
        log.info("serial bus %s: %s open", self.name, self.port)

    def _close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass
        self._ser = None
        self._line = None
        for client in self._clients.values():
            client.socket = None  # lent handle is gone; the next open lends the new one

    def _bus_down(self, why: str) -> None:
        self.port_errors += 1
        if self.bus_up or self.port_errors == 1:
            log.warning("serial bus %s down: %s", self.name, why)
        self.bus_up = False
        self.metrics.serial_bus_up.labels(self.name).set(0)
        for t in self.targets:
            self._set_online(t, False, f"bus {self.name} error: {why}")

    def _configure(self, transport: SerialTransport) -> serial.Serial:
        assert self._ser is not None
        line = (transport.baudrate, transport.parity, transport.stopbits)
        if line != self._line:
            self._ser.apply_settings({"baudrate": line[0], "parity": line[1], "stopbits": line[2]})
            self._line = line
        return self._ser

    def transact(
        self,
        transport: SerialTransport,
        request: bytes,
        reply_length: Callable[[bytes], int | None],
    ) -> bytes:
        """DL/T 645: send one request after the line's silence; return the reply once complete
        (or what came before the timeout, for the parser to name what is wrong with it)."""
        ser = self._configure(transport)
        self._keep_silence(transport)
        ser.reset_input_buffer()
        ser.write(request)
        ser.flush()
        started = time.monotonic()
        deadline = started + transport.timeout.total_seconds()
        buf = b""
        while time.monotonic() < deadline:
            chunk = ser.read(ser.in_waiting or 1)
            if not chunk:
                continue
            buf += chunk
            n = reply_length(buf)
            if n is not None:
                self._last_activity = time.monotonic()
                self.metrics.serial_latency.labels(self.name).observe(self._last_activity - started)
                return bytes(buf[:n])
        self._last_activity = time.monotonic()
        if buf:
            return bytes(buf)  # incomplete or noise: the parser says what is wrong with it
        raise ReplyTimeout(f"no reply within {transport.timeout.total_seconds():g} s")

    def _keep_silence(self, transport: SerialTransport) -> None:
        gap = silence_s(transport) - (time.monotonic() - self._last_activity)
        if gap > 0:
            time.sleep(gap)

    # -- Modbus through pymodbus's client ---------------------------------------------------
    def _modbus_client(self, transport: SerialTransport) -> ModbusSerialClient:
        """pymodbus's sync client for this line setting, on the port this master opened."""
        key = (
            transport.baudrate,
            transport.parity,
            transport.stopbits,
            transport.timeout.total_seconds(),
        )
        client = self._clients.get(key)
        if client is None:
            client = ModbusSerialClient(
                self.port,
                framer=FramerType.RTU,
                baudrate=transport.baudrate,
                parity=transport.parity,
                stopbits=transport.stopbits,
                timeout=transport.timeout.total_seconds(),
                retries=0,  # retried here, with back-off and counted per device
                trace_packet=self._trace_packet,
            )
            self._clients[key] = client
        # connect() keeps an existing socket: the client uses our handle and never opens its own.
        client.socket = self._configure(transport)
        return client

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Sees what pymodbus receives. Its framer silently drops a reply with a bad CRC or
        from another slave and then times out; note why, so the failure is counted as what it
        was (crc, wrong_address) instead of a plain timeout."""
        if sending or self._rx_fault is not None:
            return data
        self._rx_seen = data
        n = modbus_reply_length(data)
        if n is None:
            return data  # incomplete so far
        try:
            frame = modbus.parse(data[:n])
        except FrameError as exc:
            # Garbage that does not even start with our slave's address is line noise.
            noise = data[0] != self._rx_slave and exc.reason == "crc"
            self._rx_fault = FrameError("noise", f"{data[:n].hex(' ')}: {exc}") if noise else exc
        else:
            if frame.slave != self._rx_slave:
                self._rx_fault = FrameError(
                    "wrong_address", f"reply from slave {frame.slave}, asked {self._rx_slave}"
                )
        return data

    def _read_registers(
        self, transport: SerialTransport, slave: int, source: ModbusSource
    ) -> list[int]:
        count = register_count(source)
        client = self._modbus_client(transport)
        self._keep_silence(transport)
        self._rx_fault, self._rx_slave, self._rx_seen = None, slave, b""
        read = (
            client.read_input_registers
            if source.function == "input"
            else client.read_holding_registers
        )
        started = time.monotonic()
        try:
            reply = read(source.register_, count=count, device_id=slave)
        except ConnectionException as exc:
            raise BusError(f"{self.port}: {exc}") from exc  # the port failed under the client
        except ModbusException as exc:
            # Nothing usable before the timeout: silent, or a reply pymodbus refused.
            if self._rx_fault is not None:
                raise self._rx_fault from exc
            if self._rx_seen:
                raise FrameError(
                    "truncated" if self._rx_seen[0] == slave else "noise",
                    f"incomplete reply {self._rx_seen.hex(' ')} before the timeout",
                ) from exc
            raise ReplyTimeout(f"no reply within {transport.timeout.total_seconds():g} s") from exc
        finally:
            self._last_activity = time.monotonic()
        self.metrics.serial_latency.labels(self.name).observe(self._last_activity - started)
        if reply.isError():
            code = int(getattr(reply, "exception_code", 0))
            raise FrameError("error_reply", f"slave {slave}: {modbus.exception_text(code)}")
        return [int(r) for r in getattr(reply, "registers", [])]  # counted by the decoder

    # -- polling ---------------------------------------------------------------------------
    def poll(self, target: PollTarget) -> list[Reading]:
        """Read every metric of one device; deliver what was read. Failed reads are retried
        with a short back-off; a device with no answer at all counts a failed poll."""
        device = target.device
        readings: list[Reading] = []
        failed: list[str] = []
        for spec in target.profile.metrics:
            try:
                value, at = self._read_metric(target, spec)
            except ReplyTimeout as exc:
                # Silent after its retries: do not spend the bus on its other metrics now.
                failed.extend(
                    f"{m.key}: {exc}"
                    for m in target.profile.metrics
                    if m.key not in {r.metric for r in readings}
                )
                break
            except FrameError as exc:
                failed.append(f"{spec.key}: {exc}")
                continue
            try:
                coerced = coerce(spec, value, {})
            except ValueRejected as bad:
                self.metrics.rejected.labels(bad.reason.value).inc()
                log.warning("serial %s %s rejected: %s", device.id, spec.key, bad.detail)
                continue
            readings.append(serial_reading(device.id, spec, coerced, at))
        if readings:
            self.deliver(device.id, readings)  # returns once on disk: the poll is then done
            self.metrics.received.labels("serial").inc()
        answered = bool(readings) or len(failed) < len(target.profile.metrics)
        if answered:
            target.failures = 0
            target.stats.polls_ok += 1
            target.next_due = time.monotonic() + target.interval_s
            self._set_online(target, True, "answering")
        else:
            target.failures += 1
            target.stats.polls_failed += 1
            # Back off a silent device (up to 8 intervals) so it cannot starve the others.
            factor = min(2 ** (target.failures - 1), 8)
            target.next_due = time.monotonic() + target.interval_s * factor
            if target.failures >= 3:
                self._set_online(target, False, "; ".join(failed[:2]))
        if failed and readings:
            log.info("serial %s: partial poll: %s", device.id, "; ".join(failed))
        return readings

    def _read_metric(self, target: PollTarget, spec: MetricSpec) -> tuple[float, datetime]:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._stop.wait(0.05 * 2**attempt)
            target.stats.requests += 1
            self.metrics.serial_requests.labels(self.name, target.device.id).inc()
            try:
                # Decoded inside the retries: a reply for another identifier or with broken
                # BCD is as unusable as a bad checksum, and asked again.
                return answer_number(spec, self._request(target, spec)), utcnow()
            except ReplyTimeout as exc:
                target.stats.timeouts += 1
                self.metrics.serial_timeouts.labels(self.name, target.device.id).inc()
                last = exc
            except FrameError as exc:
                target.stats.frame_errors += 1
                self.metrics.serial_frame_errors.labels(
                    self.name, target.device.id, exc.reason
                ).inc()
                self.metrics.rejected.labels(reject_reason(exc).value).inc()
                log.debug("serial %s %s: %s", target.device.id, spec.key, exc)
                last = exc
        assert last is not None
        raise last

    def _request(self, target: PollTarget, spec: MetricSpec) -> SerialAnswer:
        """Ask the device for one metric: its register words, or its reply's data field."""
        transport = target.transport
        address = target.device.transport_address
        source = spec.source
        if transport.kind == "dlt645":
            if not isinstance(source, Dlt645Source):
                raise FrameError("config", f"{spec.key}: a DL/T 645 metric needs a 'di' source")
            di = dlt645.parse_di(source.di)
            reply = self.transact(transport, dlt645.build_read(address, di), dlt645.frame_length)
            frame = dlt645.parse(reply)
            dlt645.expect_reply(frame, address=address, function=dlt645.READ)
            return frame.data
        if not isinstance(source, ModbusSource):
            raise FrameError("config", f"{spec.key}: a Modbus metric needs a register source")
        return self._read_registers(transport, int(address), source)

    def _set_online(self, target: PollTarget, online: bool, why: str) -> None:
        if target.online == online:
            return
        target.online = online
        self.metrics.serial_device_online.labels(target.device.id).set(1 if online else 0)
        if online:
            log.info("serial %s on %s: answering", target.device.id, self.name)
        else:
            log.warning("serial %s on %s: offline (%s)", target.device.id, self.name, why)
        if self.on_status is not None:
            self.on_status(target.device.id, online, why)
