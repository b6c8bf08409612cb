"""The public fault-report form (no account): minimum fill time proven by a signed form
token, a honeypot, a per-address hourly limit, size and type limits, and 4xx errors that
name the field; the public page with the service commitments."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.clock import ManualClock
from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import production_site, token
from tests.live_server import start_server

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
URL = "/api/public/fault-reports"
REPORT = {"location": "Dorm B, room 204", "description": "The tap drips all night long"}
# The smallest valid PNG: a real image, as a phone's browser would send it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def client(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=production_site(tmp_path),
        public_reports_per_hour=3,
        public_untokened_reports_per_hour=1,
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as c:
        yield c


def orders(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/api/work-orders", params={"source": "manual"}, headers=token(client, "maint"))
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()
    return result


def form_token(client: TestClient) -> str:
    r = client.get("/api/public/form-token")
    assert r.status_code == 200 and r.json()["min_fill_seconds"] == 3
    value: str = r.json()["form_token"]
    return value


def test_a_form_sent_faster_than_a_person_can_fill_it_is_refused(
    client: TestClient, clock: ManualClock
) -> None:
    tok = form_token(client)
    clock.advance(timedelta(seconds=1))
    r = client.post(URL, json={**REPORT, "form_token": tok})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("form_token: sent 1.0 s after the form was opened")
    assert orders(client) == []

    clock.advance(timedelta(seconds=3))
    r = client.post(URL, json={**REPORT, "form_token": tok})
    assert r.status_code == 201, r.text
    wo = next(w for w in orders(client) if w["id"] == r.json()["id"])
    assert (wo["location"], wo["priority"], wo["status"]) == ("Dorm B, room 204", "P3", "open")

    stamp, mac = tok.split(".")
    forged = f"{int(stamp) - 60_000}.{mac}"  # an older time to skip the wait
    r = client.post(URL, json={**REPORT, "form_token": forged})
    assert r.status_code == 422 and "not a token this server issued" in r.json()["detail"]
    clock.advance(timedelta(hours=13))
    r = client.post(URL, json={**REPORT, "form_token": tok})
    assert r.status_code == 422 and "too long ago" in r.json()["detail"]


def test_the_honeypot_looks_accepted_but_stores_nothing(
    client: TestClient, clock: ManualClock
) -> None:
    tok = form_token(client)
    clock.advance(timedelta(seconds=5))
    r = client.post(URL, json={**REPORT, "form_token": tok, "website": "http://spam.example"})
    assert r.status_code == 201 and r.json() == {"id": None, "status": "received"}
    assert orders(client) == []


def test_errors_name_the_field_and_do_not_echo_what_was_sent(client: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"description": "The tap drips all night"}, "location"),
        ({"location": "   ", "description": "The tap drips all night"}, "location"),
        ({"location": "Gym", "description": "bad"}, "description"),
        ({**REPORT, "colour": "red"}, "colour"),
        ({**REPORT, "contact": "x" * 129}, "contact"),
    ]
    for body, field in cases:
        r = client.post(URL, json=body)
        assert r.status_code == 422, (body, r.text)
        j = r.json()
        assert [e["field"] for e in j["detail"]] == [field], j
        assert j["message"].startswith(f"{field}: "), j
        assert "input" not in j["detail"][0]  # a stranger's text is not reflected back
    # Staff routes keep FastAPI's usual error body.
    staff = client.post("/api/work-orders", json={}, headers=token(client, "maint"))
    assert staff.status_code == 422 and "field" not in staff.json()["detail"][0]

    for photo, says in (
        ("data:image/png;base64," + base64.b64encode(b"MZ\x90\x00 not an image").decode(), "PNG"),
        (
            "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" * 275_000).decode(),
            "2 MB",
        ),
        ("https://example.com/x.png", "data URL"),
    ):
        r = client.post(URL, json={**REPORT, "photo": photo})
        assert r.status_code == 422 and r.json()["detail"].startswith("photo: "), r.text
        assert says in r.json()["detail"], r.text
    r = client.post(URL, json={**REPORT, "form_token": "123.abc"})
    assert r.status_code == 422 and r.json()["detail"].startswith("form_token: ")
    # Bigger than any allowed report: refused by its Content-Length before it is parsed.
    r = client.post(URL, content=b"x" * 3_300_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"].startswith("request body: ")
    assert orders(client) == []


def test_a_report_with_a_photo_keeps_it_for_staff(client: TestClient) -> None:
    photo = "data:image/png;base64," + base64.b64encode(PNG).decode()
    r = client.post(URL, json={**REPORT, "photo": photo, "contact": " room 204 "})
    assert r.status_code == 201, r.text
    wo_id = r.json()["id"]
    got = client.get(f"/api/work-orders/{wo_id}/photo", headers=token(client, "maint"))
    assert got.status_code == 200 and got.content == PNG
    detail = client.get(f"/api/work-orders/{wo_id}", headers=token(client, "maint")).json()
    assert detail["contact"] == "room 204" and detail["requester"] == "public"


def test_reports_are_limited_per_address_and_hour(client: TestClient, clock: ManualClock) -> None:
    tok = form_token(client)
    clock.advance(timedelta(seconds=5))
    for _ in range(3):
        assert client.post(URL, json={**REPORT, "form_token": tok}).status_code == 201
    r = client.post(URL, json={**REPORT, "form_token": tok})
    assert r.status_code == 429 and "at most 3 an hour" in r.json()["detail"]
    assert r.headers["Retry-After"] == "3600"
    # Without the page's token (a script), the budget is smaller and separate.
    assert client.post(URL, json=REPORT).status_code == 201
    assert client.post(URL, json=REPORT).status_code == 429
    assert len(orders(client)) == 4
    clock.advance(timedelta(hours=1))
    assert client.post(URL, json=REPORT).status_code == 201


def test_another_address_has_its_own_budget_and_chunked_floods_are_cut_off(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    live = start_server(tmp_path, clock=clock)
    try:
        # Default budget without a form token: 5 an hour per address.
        with httpx.Client(base_url=live.url, timeout=10) as here:
            codes = [here.post(URL, json=REPORT).status_code for _ in range(6)]
        assert codes == [201] * 5 + [429]
        elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=live.url, timeout=10, transport=elsewhere) as there:
            assert there.post(URL, json=REPORT).status_code == 201

            def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
                for _ in range(4):
                    yield b" " * 1_000_000

            r = there.post(URL, content=chunks(), headers={"Content-Type": "application/json"})
            assert r.status_code == 413, r.text
        assert len(live.get("/api/work-orders?source=manual", "maint")) == 6
    finally:
        live.stop()


def test_the_public_page_shows_the_commitments_and_the_form(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for part in ('id="commitments"', 'name="website"', 'name="photo"', "/static/js/public.js"):
        assert part in page.text, part
    # The page's script fetches the form token (no inline script: the CSP allows none).
    assert "/api/public/form-token" in client.get("/static/js/public.js").text
    c = client.get("/api/public/commitments").json()
    assert [(x["priority"], x["respond"]) for x in c["commitments"]] == [
        ("P1", "10 min"),
        ("P2", "2 h"),
        ("P3", "24 h"),
    ]
    assert c["commitments"][2]["repair"] == "3 working days"
