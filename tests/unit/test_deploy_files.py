"""docker-compose.yml cannot run here (no Docker engine); check what can be checked by reading."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_images_are_pinned_to_a_version() -> None:
    for name, svc in COMPOSE["services"].items():
        if "image" in svc:
            image = svc["image"]
            assert re.search(r":\d+(\.\d+)+$", image), f"{name}: {image} is not pinned"
        else:
            assert (ROOT / svc["build"] / "Dockerfile").is_file(), name


def test_bind_mounted_files_exist() -> None:
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_published_ports_bind_loopback_only() -> None:
    for name, svc in COMPOSE["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_secrets_come_from_the_environment() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for key in ("PASSWORD", "SECRET_KEY"):
        for line in text.splitlines():
            if f"{key}:" in line and not line.strip().startswith("#"):
                value = line.split(":", 1)[1]
                assert "${" in value, f"literal secret in: {line.strip()}"


def test_broker_refuses_anonymous_clients() -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "password_file" in conf


def test_dockerfile_copies_only_existing_paths() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src


def test_grafana_dashboards_are_valid_json() -> None:
    import json

    # One folder per store back-end (InfluxQL, PostgreSQL), the same dashboards in each.
    by_store = {
        d.name: sorted(f.name for f in d.glob("*.json"))
        for d in (ROOT / "dashboards/json").iterdir()
        if d.is_dir()
    }
    assert set(by_store) == {"influxql", "postgres"}
    assert by_store["influxql"] == by_store["postgres"] and by_store["postgres"]
    for f in (ROOT / "dashboards/json").glob("*/*.json"):
        assert json.loads(f.read_text())["panels"], f.name
