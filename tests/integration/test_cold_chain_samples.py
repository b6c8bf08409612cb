"""Sample retention (留样) through the API, with notices by real SMTP (aiosmtpd): a dish of
a meal with no sample after the configured time, a sample under the minimum weight and a
sample removed after 20 h (before 48 h) each tell the food-safety officer once, and nobody
else; the meals endpoint shows each dish's state for the phone page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from server.app import create_app
from server.coldchain.service import ColdChainService
from server.settings import ServerSettings
from tests.harness import Smtp
from tests.helpers import batch, production_site, reading, token, wait_until

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 3, 10, tzinfo=TZ)
OFFICER = "food@campus.test"


def mail(smtp: Smtp, to: str) -> str:
    return f"mailto://127.0.0.1:{smtp.port}?from=monitor@campus.test&to={to}&mode=insecure"


@pytest.fixture
def server(tmp_path: Path, smtp_server: Smtp) -> Iterator[tuple[TestClient, ManualClock]]:
    doc = yaml.safe_load(production_site(tmp_path).read_text())
    doc["cold_chain"]["meals"] = [
        {"id": "lunch", "name": "午餐", "ends": "13:00", "dishes": ["红烧肉", "番茄炒蛋", "米饭"]}
    ]
    doc["notifications"] = {
        "channels": [
            {"id": "food", "url": mail(smtp_server, OFFICER), "role": "food_safety"},
            {"id": "maint", "url": mail(smtp_server, "maint@campus.test"), "role": "maintenance"},
            {
                "id": "canteen",
                "url": mail(smtp_server, "canteen@campus.test"),
                "role": "canteen_manager",
                "buildings": ["canteen"],
            },
        ]
    }
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc, allow_unicode=True))
    clock = ManualClock(DAY.replace(hour=11))
    settings = ServerSettings(
        demo=True, data_dir=tmp_path / "srv", broker="mqtt://127.0.0.1:1", site_file=site
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        yield client, clock


def officer_mail(smtp: Smtp) -> list[str]:
    return [m.subject + "\n" + m.text for m in smtp.messages if OFFICER in m.rcpt_tos]


def tick_at(client: TestClient, clock: ManualClock, at: datetime) -> None:
    svc: ColdChainService = client.app.state.cold_chain  # type: ignore[attr-defined]
    clock.set(at)
    svc.tick()
    svc.drain()


def test_missing_dish_and_early_removal_tell_the_officer_once(
    server: tuple[TestClient, ManualClock], smtp_server: Smtp
) -> None:
    client, clock = server
    food = token(client, "food")
    clock.set(DAY.replace(hour=12, minute=30))
    ids = {}
    for dish, grams in (("红烧肉", 150.0), ("番茄炒蛋", 110.0)):
        r = client.post(
            "/api/cold-chain/samples",
            headers=food,
            json={
                "date": "2026-03-10",
                "meal": "lunch",
                "dish": dish,
                "weight_g": grams,
                "person": "王师傅",
                "fridge": "canteen-sample-01",
            },
        )
        assert r.status_code == 201, r.text
        ids[dish] = r.json()["id"]
    meals: list[dict[str, Any]] = client.get(
        "/api/cold-chain/meals?date=2026-03-10", headers=food
    ).json()
    states = {d["dish"]: d["status"] for d in meals[0]["dishes"]}
    assert states == {"红烧肉": "ok", "番茄炒蛋": "pending", "米饭": "pending"}

    tick_at(client, clock, DAY.replace(hour=13, minute=59))  # due at 14:00: not yet
    assert officer_mail(smtp_server) == []
    tick_at(client, clock, DAY.replace(hour=14, minute=1))
    got = wait_until(lambda: len(officer_mail(smtp_server)) >= 2, 20, "two sample notices")
    tick_at(client, clock, DAY.replace(hour=15))  # again: nothing new
    states = {
        d["dish"]: d["status"]
        for d in client.get("/api/cold-chain/meals?date=2026-03-10", headers=food).json()[0][
            "dishes"
        ]
    }
    assert states == {"红烧肉": "ok", "番茄炒蛋": "underweight", "米饭": "missing"}

    # Taken at 12:30, removed the next morning at 08:30: after 20 h, before 48 h.
    clock.set(DAY + timedelta(days=1, hours=8, minutes=30))
    r = client.post(
        f"/api/cold-chain/samples/{ids['红烧肉']}/removal",
        headers=food,
        json={"reason": "误取 taken by mistake"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["held_h"] == 20.0
    wait_until(lambda: len(officer_mail(smtp_server)) >= 3, 20, "the early-removal notice")
    tick_at(client, clock, DAY + timedelta(days=1, hours=9))
    tick_at(client, clock, DAY + timedelta(days=1, hours=10))

    mails = officer_mail(smtp_server)
    assert len(mails) == 3, mails
    assert sum("米饭" in m and "no sample" in m for m in mails) == 1
    assert sum("番茄炒蛋" in m and "110 g" in m for m in mails) == 1
    assert sum("红烧肉" in m and "removed after 20 h" in m for m in mails) == 1
    assert got  # the first two arrived together
    others = [m for m in smtp_server.messages if OFFICER not in m.rcpt_tos]
    assert others == [], [m.subject for m in others]
    kinds = sorted(
        f["kind"]
        for f in client.get(
            "/api/cold-chain/findings?from=2026-03-10&to=2026-03-11", headers=food
        ).json()
    )
    assert kinds == ["sample_missing", "sample_removed_early", "sample_underweight"]


def test_samples_are_written_by_the_officer_and_read_by_the_canteen_only(
    server: tuple[TestClient, ManualClock],
) -> None:
    client, _ = server
    body = {
        "date": "2026-03-10",
        "meal": "lunch",
        "dish": "米饭",
        "weight_g": 130,
        "fridge": "canteen-sample-01",
    }
    assert (
        client.post(
            "/api/cold-chain/samples", headers=token(client, "dorm-a"), json=body
        ).status_code
        == 403
    )
    assert client.get("/api/cold-chain/samples", headers=token(client, "maint")).status_code == 403
    bad = client.post(
        "/api/cold-chain/samples", headers=token(client, "food"), json=body | {"meal": "supper"}
    )
    assert bad.status_code == 422 and "meal" in bad.text


def test_calibration_overdue_action_and_samples_at_risk_tell_the_officer_once(
    server: tuple[TestClient, ManualClock], smtp_server: Smtp
) -> None:
    client, clock = server
    food = token(client, "food")
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    clock.set(DAY.replace(hour=12, minute=10))
    r = client.post(
        "/api/cold-chain/calibrations",
        headers=food,
        json={
            "device_id": "canteen-sample-01",
            "calibrated_on": "2025-03-20",
            "reference": "Fluke 1524 #A117, cert. 2025-0311",
            "offset_c": 0.2,
            "result": "pass",
            "next_due": "2026-03-20",
        },
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/cold-chain/samples",
        headers=food,
        json={
            "date": "2026-03-10",
            "meal": "lunch",
            "dish": "米饭",
            "weight_g": 140,
            "fridge": "canteen-sample-01",
        },
    )
    assert r.status_code == 201, r.text
    # The sample fridge warms to 9 °C from 12:20 to 12:40 while it holds the sample.
    for i in range(10):
        t = DAY.replace(hour=12, minute=15) + timedelta(minutes=5 * i)
        value = 9.0 if 1 <= i <= 4 else 3.5
        clock.set(t + timedelta(seconds=2))
        ctx.pipeline.handle_batch(
            batch([reading("canteen-sample-01", "temperature", value, t, seq=i + 1)])
        )
    tick_at(client, clock, DAY.replace(hour=13))
    tick_at(client, clock, DAY.replace(hour=14, minute=30))  # 2 h after: no action yet
    tick_at(client, clock, DAY.replace(hour=15))

    def notices() -> list[str]:  # the rules' own alerts on the warm fridge come too
        return [m for m in officer_mail(smtp_server) if m.startswith("[cold chain]")]

    wait_until(lambda: len(notices()) >= 5, 20, "five cold-chain notices")
    mails = notices()
    assert sum("samples at risk" in m and "留样柜" in m for m in mails) == 1, mails
    assert sum("action overdue" in m for m in mails) == 1, mails
    assert sum("calibration due" in m and "2026-03-20" in m for m in mails) == 1, mails
    # Lunch's other two dishes have no sample: one notice each, nothing else.
    assert sum("sample missing" in m for m in mails) == 2 and len(mails) == 5, mails
    ex = client.get("/api/cold-chain/excursions?device=canteen-sample-01", headers=food).json()
    assert [(e["status"], e["overdue"]) for e in ex] == [("open", True)]
    config = client.get("/api/cold-chain/config", headers=food).json()
    sample = next(d for d in config["devices"] if d["id"] == "canteen-sample-01")
    assert sample["calibration"]["status"] == "due_soon"
    canteen = client.get("/api/cold-chain/excursions", headers=token(client, "dorm-a"))
    assert canteen.status_code == 403
