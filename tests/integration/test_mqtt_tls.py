"""MQTT over TLS against a real Mosquitto with a campus's own CA (made by trustme): the
gateway's source (its fast lane reads through the TLS socket) and uplink, with a
per-gateway login, take every message once; a broker whose certificate the client
cannot verify is refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from sqlalchemy import create_engine, text

from core.mqtturl import make_client, parse_broker_url
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from tests.conftest import _start
from tests.harness import Mosquitto, start_mosquitto
from tests.helpers import wait_until
from tests.integration.test_gateway_mqtt import TOPIC

pytestmark = pytest.mark.integration
FRIDGE = "canteen-fridge-02"
USER, PASSWORD = "gw-canteen", "tls-secret-7"


@dataclass
class TlsBroker:
    broker: Mosquitto
    ca_file: Path

    def url(self, *, ca: bool = True, login: bool = True) -> str:
        auth = f"{USER}:{PASSWORD}@" if login else ""
        query = f"?ca={self.ca_file}" if ca else ""
        return f"mqtts://{auth}127.0.0.1:{self.broker.port}{query}"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    # The lines after `listener` configure that listener: it speaks TLS only.
    tls = [f"cafile {ca_file}", f"certfile {cert_file}", f"keyfile {key_file}"]
    broker = _start(
        lambda: start_mosquitto(tmp_path, username=USER, password=PASSWORD, extra_config=tls)
    )
    yield TlsBroker(broker, ca_file)
    broker.stop()


def test_gateway_over_tls_stores_every_message_once(tls_broker: TlsBroker, tmp_path: Path) -> None:
    url = tls_broker.url()
    settings = GatewaySettings(gateway_id="gw-canteen", data_dir=tmp_path / "gw", device_broker=url)
    gw = Gateway(settings)
    gw.start()
    try:
        wait_until(lambda: gw.source.connected and gw.uplink.connected, 20, "connected over TLS")
        ep = parse_broker_url(url)
        device = make_client(ep, "tls-device")
        device.max_inflight_messages_set(100)
        device.connect(ep.host, ep.port)
        device.loop_start()
        base = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp() * 1000)
        n = 2000
        infos = [
            device.publish(
                TOPIC.format(FRIDGE),
                b'{"seq": %d, "ts": %d, "t": %.2f, "door": false, "bat": 80}'
                % (seq, base + seq * 100, 3 + seq % 40 / 100),
                qos=1,
            )
            for seq in range(1, n + 1)
        ]
        wait_until(lambda: all(i.is_published() for i in infos), 60, "every publish acked")
        device.disconnect()
        device.loop_stop()

        engine = create_engine(settings.sql_url())

        def seqs() -> list[int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT seq FROM ts_readings WHERE device_id = :d AND metric = "
                        "'temperature' ORDER BY seq"
                    ),
                    {"d": FRIDGE},
                ).all()
            return [r[0] for r in rows]

        wait_until(lambda: len(seqs()) >= n, 60, f"{n} temperatures stored")
        assert seqs() == list(range(1, n + 1))
        engine.dispose()
        # The uplink, over TLS too, takes them all (readings, 3 a message) at its own pace.
        wait_until(
            lambda: (
                (
                    gw.metrics.registry.get_sample_value(
                        "gateway_sink_items_total", {"sink": "uplink"}
                    )
                    or 0
                )
                >= 3 * n
            ),
            60,
            "every reading sent on the uplink",
        )
    finally:
        gw.stop()


def test_unverified_broker_certificate_is_refused(tls_broker: TlsBroker) -> None:
    # Without the campus CA the broker's certificate does not verify against the system's.
    ep = parse_broker_url(tls_broker.url(ca=False))
    client = make_client(ep, "tls-no-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(ep.host, ep.port)
    # With it, but without the login, the broker refuses the connection.
    ep = parse_broker_url(tls_broker.url(login=False))
    client = make_client(ep, "tls-no-login")
    refused: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: refused.append(reason)
    client.connect(ep.host, ep.port)
    client.loop_start()
    wait_until(lambda: refused, 10, "CONNACK")
    client.loop_stop()
    assert getattr(refused[0], "is_failure", False), refused[0]
