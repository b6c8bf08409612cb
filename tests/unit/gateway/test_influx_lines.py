"""The InfluxDB sink's own line protocol: escaping, field types, one point per message."""

from __future__ import annotations

from pathlib import Path

from core.profiles import load_profiles
from core.site import load_site
from core.wire import wire_event, wire_reading
from gateway.sinks.influx import InfluxSink
from gateway.sinks.line_protocol import field, series_key

SITE = Path(__file__).resolve().parents[3] / "sites" / "demo" / "site.yaml"


def test_escaping_follows_line_protocol() -> None:
    assert series_key("cold room", {"device": "a,b=c", "site": "x y", "room": ""}) == (
        r"cold\ room,device=a\,b\=c,site=x\ y"  # sorted, empty tags left out
    )
    assert field("temp c", 3.0) == r"temp\ c=3"
    assert field("t", 3.25) == "t=3.25"
    assert field("door", True) == "door=true"
    assert field("battery", 90) == "battery=90"  # a float field, never 90i
    assert field("t", float("nan")) is None
    assert field("state", 'say "hi"\\') == r'state="say \"hi\"\\"'


def test_readings_of_one_message_share_a_point_with_seq_as_an_integer_field() -> None:
    profiles = load_profiles()
    sink = InfluxSink(
        "http://127.0.0.1:1", "", "campus", "b", load_site(SITE, profiles), profiles, "gw-1"
    )
    try:
        fridge = "canteen-fridge-01"
        lines = sink.lines(
            [
                wire_reading(
                    f"{fridge}/t/1000/7", fridge, "temperature", 3.5, 1000, 1001, None, 7, None
                ),
                wire_reading(
                    f"{fridge}/d/1000/7", fridge, "door_open", False, 1000, 1001, None, 7, None
                ),
                wire_reading(
                    f"{fridge}/t/2000/8", fridge, "temperature", 3.6, 2000, 2001, None, 8, None
                ),
                wire_reading(
                    "not-in-site/x/1000", "not-in-site", "x", 1.0, 1000, 1001, None, None, None
                ),
            ],
            [
                wire_event(
                    "dorm-a-door-01/door_forced/5", "dorm-a-door-01", "door_forced", 5, 6, None
                )
            ],
        )
    finally:
        sink.close()
    tags = "building=canteen,device=canteen-fridge-01,gateway=gw-1,site=demo"
    assert lines == [
        f"chilled_fridge,{tags} seq=7i,temperature=3.5,door_open=false 1000",
        f"chilled_fridge,{tags} seq=8i,temperature=3.6 2000",
        "unknown,device=not-in-site x=1 1000",
        "device_event,building=dorm-a,device=dorm-a-door-01,gateway=gw-1,kind=door_forced,"
        'site=demo count=1i,event_id="dorm-a-door-01/door_forced/5" 5',
    ]
