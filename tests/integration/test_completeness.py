"""Data completeness in /api/devices: messages received against messages expected, through
a real Mosquitto, the gateway and the server's uplink consumer; plus the counting rules
(redelivery, counter restart, polled devices) on the server's ingest directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import Gateway
from gateway.settings import GatewaySettings
from server.app import create_app
from server.settings import ServerSettings
from tests.harness import Mosquitto
from tests.helpers import batch, reading, token, wait_until
from tests.integration.test_gateway_mqtt import TOPIC, publish, publisher

pytestmark = pytest.mark.integration


def devices(client: TestClient) -> dict[str, dict[str, Any]]:
    got = client.get("/api/devices", headers=token(client, "maint")).json()
    return {d["id"]: d for d in got}


def test_a_device_that_skips_numbers_is_less_than_complete(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    gw = Gateway(
        GatewaySettings(
            gateway_id="gw-canteen", data_dir=tmp_path / "gw", device_broker=mosquitto.url
        )
    )
    app = create_app(
        ServerSettings(demo=True, data_dir=tmp_path / "srv", broker=mosquitto.url, tick_seconds=1)
    )
    gw.start()
    dev = publisher(mosquitto.url)
    try:
        with TestClient(app) as client:
            wait_until(lambda: gw.source.connected, 10, "gateway subscribed")
            base = int((datetime.now(UTC) - timedelta(minutes=30)).timestamp() * 1000)
            # 20 numbered messages a minute apart; 4 and 7 never arrive, 12 arrives again
            # after 15 (a device resending what it thinks was lost).
            sent = [s for s in range(1, 16) if s not in (4, 7)] + [12, 16, 17, 18, 19, 20]
            for seq in sent:
                body = b'{"seq": %d, "ts": %d, "t": %.2f, "door": false}' % (
                    seq,
                    base + seq * 60_000,
                    3 + seq / 100,
                )
                publish(dev, TOPIC.format("canteen-fridge-01"), body)
            for seq in range(1, 6):  # a complete device beside it
                body = b'{"seq": %d, "ts": %d, "t": 3.1}' % (seq, base + seq * 60_000)
                publish(dev, TOPIC.format("canteen-fridge-02"), body)

            def all_in() -> dict[str, dict[str, Any]] | None:
                d = devices(client)
                last = d["canteen-fridge-01"]["values"].get("temperature", {}).get("value")
                return d if last == 3.2 and d["canteen-fridge-02"]["received"] == 5 else None

            got = wait_until(all_in, 30, "both devices' last messages at the server")
    finally:
        dev.loop_stop()
        gw.stop()
    assert got is not None
    f1, f2 = got["canteen-fridge-01"], got["canteen-fridge-02"]
    assert (f1["received"], f1["gaps"]) == (18, 2)  # the duplicate of 12 counted once
    assert f1["completeness"] == pytest.approx(90.0)
    assert f1["cadence_s"] == pytest.approx(60.0)
    assert (f2["received"], f2["gaps"], f2["completeness"]) == (5, 0, 100.0)
    # A device that has not reported yet, or cannot tell what it missed, is not 100 %.
    assert got["dorm-a-door-01"]["completeness"] is None


def test_counting_survives_replays_and_restarts_and_polled_devices_count_missed_polls(
    tmp_path: Path,
) -> None:
    app = create_app(
        ServerSettings(demo=True, data_dir=tmp_path / "srv", broker="mqtt://127.0.0.1:1"),
        consume=False,
    )
    t0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    with TestClient(app) as client:
        pipeline = client.app.state.ctx.pipeline  # type: ignore[attr-defined]

        def fridge(seqs: list[int], start: int = 0) -> list[Any]:
            return [
                reading("canteen-fridge-03", m, 3.0, t0 + timedelta(minutes=start + i), seq=s)
                for i, s in enumerate(seqs)
                for m in ("temperature", "door_open")
            ]

        first = fridge([1, 2, 3, 5])
        pipeline.handle_batch(batch(first))
        pipeline.handle_batch(batch(first))  # the uplink redelivers the whole batch
        pipeline.handle_batch(batch(fridge([1, 2], start=10)))  # rebooted: counts again
        # The electricity meter is polled every 15 s (its profile); 2 polls missed at 0:30.
        polls = [t0 + timedelta(seconds=s) for s in (0, 15, 30, 75, 90)]
        pipeline.handle_batch(
            batch([reading("meter-elec-01", "power", 1.0, at, unit="W") for at in polls])
        )
        got = devices(client)
    f3 = got["canteen-fridge-03"]
    assert (f3["received"], f3["gaps"]) == (6, 1)
    assert f3["completeness"] == pytest.approx(100 * 6 / 7, abs=0.01)
    meter = got["meter-elec-01"]
    assert (meter["received"], meter["gaps"], meter["cadence_s"]) == (5, 2, 15.0)
    assert meter["completeness"] == pytest.approx(100 * 5 / 7, abs=0.01)
