"""Roles as data (issue 14): a role the site file declares is a login with the rights of the
built-in role it acts as and the scope it declares; it is told of its alerts and orders;
a rule naming a role nobody declared stops the server, naming it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from core.site import DEFAULT_SITE_FILE
from core.yamlfile import ConfigError
from server.app import create_app
from server.auth import accounts
from server.settings import ServerSettings
from tests.harness.webhook import Webhook
from tests.helpers import batch, reading, token, wait_until

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BIN, SOIL, DOOR = "canteen-bin-01", "garden-soil-01", "dorm-a-door-01"


def site_with(tmp_path: Path, **changes: Any) -> Path:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    doc.update(changes)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def app(tmp_path: Path, site: Path, clock: ManualClock) -> TestClient:
    settings = ServerSettings(
        demo=True, data_dir=tmp_path, broker="mqtt://127.0.0.1:1", site_file=site
    )
    return TestClient(create_app(settings, clock=clock, consume=False))


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


def get(client: TestClient, user: str, path: str) -> Any:
    r = client.get(path, headers=token(client, user))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_site_role_sees_its_scope_acts_as_its_built_in_role_and_is_told(
    tmp_path: Path, hook: Webhook
) -> None:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    notifications = doc.get("notifications") or {}
    notifications["channels"] = [
        {
            "id": "cleaning-robot",
            "url": f"json://127.0.0.1:{hook.port}/cleaning",
            "role": "cleaning",
        },
        {"id": "grounds-robot", "url": f"json://127.0.0.1:{hook.port}/grounds", "role": "grounds"},
    ]
    clock = ManualClock(T0)
    with app(tmp_path, site_with(tmp_path, notifications=notifications), clock) as client:
        ctx: Any = client.app.state.ctx  # type: ignore[attr-defined]
        ctx.pipeline.handle_batch(
            batch([reading(BIN, "fill_level", 85.0, T0, unit="%")], gateway_id="gw-canteen")
        )
        me = get(client, "cleaning", "/api/me")
        assert (me["role"], me["acts_as"]) == ("cleaning", "maintenance")
        assert me["role_label"] == {"zh-CN": "保洁", "en": "Cleaning"}
        # Only the bins: not the fridges, doors or the soil sensor.
        devices = get(client, "cleaning", "/api/devices?limit=1000")
        assert {d["device_class"] for d in devices} == {"waste_bin"}
        assert BIN in {d["id"] for d in devices}
        assert {a["rule"] for a in get(client, "cleaning", "/api/alerts")} == {"bin_full"}
        orders = get(client, "cleaning", "/api/work-orders")
        assert [(o["device_id"], o["category"]) for o in orders] == [(BIN, "cleaning")]
        # Acting as maintenance it works the order: it may start it, not verify it.
        assert "in_progress" in orders[0]["next"] and "verified" not in orders[0]["next"]
        r = client.post(
            f"/api/work-orders/{orders[0]['id']}/transitions",
            json={"to": "in_progress"},
            headers=token(client, "cleaning"),
        )
        assert r.status_code == 200, r.text
        # Grounds sees none of it; a door is neither's.
        assert get(client, "grounds", "/api/work-orders") == []
        assert {d["device_class"] for d in get(client, "grounds", "/api/devices")} == {
            "soil_moisture"
        }
        r = client.get(f"/api/devices/{DOOR}", headers=token(client, "cleaning"))
        assert r.status_code == 404
        # The cleaning channel heard of the alert and the new order; grounds of nothing.
        ctx.notifier.drain()
        wait_until(lambda: len(hook.by_path().get("/cleaning", [])) >= 2, 10, "cleaning told")
        titles = hook.by_path()["/cleaning"]
        assert any("bin full" in t for t in titles) and any("work order" in t for t in titles)
        assert "/grounds" not in hook.by_path()


def test_a_rule_naming_a_role_nobody_declared_stops_the_server(tmp_path: Path) -> None:
    overrides = [{"rule": "bin_full", "device_class": "waste_bin", "set": {"notify": ["janitors"]}}]
    site = site_with(tmp_path, rule_overrides=overrides)
    with pytest.raises(ConfigError, match="notifies 'janitors'"):
        create_app(
            ServerSettings(
                demo=True, data_dir=tmp_path, broker="mqtt://127.0.0.1:1", site_file=site
            ),
            clock=ManualClock(T0),
            consume=False,
        )


def test_a_site_role_cannot_take_a_built_in_name(tmp_path: Path) -> None:
    roles = {"maintenance": {"acts_as": "admin"}}
    with pytest.raises(ConfigError, match="'maintenance' is a built-in role"):
        create_app(
            ServerSettings(
                demo=True,
                data_dir=tmp_path,
                broker="mqtt://127.0.0.1:1",
                site_file=site_with(tmp_path, roles=roles),
            ),
            clock=ManualClock(T0),
            consume=False,
        )


def test_accounts_take_the_site_roles_and_refuse_unknown_ones(tmp_path: Path) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    with app(tmp_path, DEFAULT_SITE_FILE, clock) as client:
        ctx: Any = client.app.state.ctx  # type: ignore[attr-defined]
        admin = token(client, "admin")
        ok = client.post(
            "/api/users",
            json={"username": "li.hua", "role": "grounds", "password": "Quiet-Garden-2026!"},
            headers=admin,
        )
        assert ok.status_code == 201, ok.text
        bad = client.post(
            "/api/users",
            json={"username": "wang.wu", "role": "janitor", "password": "Quiet-Garden-2026!"},
            headers=admin,
        )
        assert bad.status_code == 422 and "unknown role 'janitor'" in bad.text
        assert "cleaning" in bad.text and "grounds" in bad.text  # the known ones are named
        with ctx.sessions() as s:
            user = accounts.by_username(s, "li.hua")
            assert user is not None and user.role == "grounds"
