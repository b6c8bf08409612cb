"""Gateway settings from environment (FACILITY_GATEWAY_*) with embedded-demo defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.profiles import DEFAULT_PROFILES_DIR
from core.site import DEFAULT_SITE_FILE


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACILITY_GATEWAY_", env_nested_delimiter="__")

    gateway_id: str = Field(default="gw-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    site_file: Path = DEFAULT_SITE_FILE
    profiles_dir: Path = DEFAULT_PROFILES_DIR
    # Topic filter watched whole ({site} filled in); "" to listen to profile topics only.
    watch_namespace: str = "campus/{site}/#"
    # Any MQTT payload larger than this is refused as oversize before it is routed; each
    # profile may set a lower max_bytes of its own (16 KiB by default).
    max_payload_bytes: int = Field(default=65536, gt=0)
    # RS-485 ports of this gateway by the bus names of the site file, e.g.
    # FACILITY_GATEWAY_SERIAL_PORTS='{"rs485-1": "/dev/serial/by-id/usb-FTDI_..."}'
    serial_ports: dict[str, str] = {}
    data_dir: Path = Path("data") / "gateway"

    device_broker: str = "mqtt://127.0.0.1:1883"
    uplink_broker: str | None = None  # default: the device broker
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None  # per-gateway credentials in production
    # The site's key for pseudonymising card numbers, the same on every gateway of the site
    # (gateway/pseudonym.py), or a file holding it (a systemd credential, a Docker secret).
    # Without either, only a gateway alone on its machine (the demo) makes its own, in the
    # data folder; any other refuses to start.
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None

    tsdb: Literal["sql", "influx", "none"] = "sql"
    tsdb_url: str | None = None  # sql: SQLAlchemy URL (default SQLite in data_dir)
    # SQL store: raw readings older than this are rolled up hourly (min/max/mean) and
    # deleted; 0 keeps every raw reading (cold-chain logs must be kept at least 2 years).
    tsdb_retention_days: int = Field(default=0, ge=0)
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: SecretStr = SecretStr("")
    influx_org: str = "campus"
    influx_bucket: str = "facility"

    # Items the outbox may hold for its slowest sink; at 80 % the server raises an alert,
    # at 100 % new data is refused (counted, logged) and nothing held is deleted.
    outbox_max_pending: int = Field(default=2_000_000, gt=0)
    status_every_s: float = Field(default=60.0, gt=0)
    # Device messages decoded and written to the outbox together (one fsync, one ack write).
    batch_max: int = Field(default=1000, gt=0)
    metrics_port: int = 0  # Prometheus exporter on 127.0.0.1; 0 = off
    metrics_host: str = "127.0.0.1"

    def sql_url(self) -> str:
        return self.tsdb_url or f"sqlite:///{self.data_dir / 'timeseries.db'}"
