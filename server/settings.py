"""Server settings from environment (FACILITY_SERVER_*); defaults are the embedded demo."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.profiles import DEFAULT_PROFILES_DIR
from core.site import DEFAULT_SITE_FILE

DEMO_SECRET = "demo-insecure-secret-change-me-0123456789"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACILITY_SERVER_", env_nested_delimiter="__")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data") / "server"
    database_url: str | None = None  # default: SQLite in data_dir
    site_file: Path = DEFAULT_SITE_FILE
    profiles_dir: Path = DEFAULT_PROFILES_DIR

    broker: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = "facility-server"

    # History reads: "sql" = the gateway's SQL time-series store; "influx" = InfluxQL /query.
    tsdb: Literal["sql", "influx"] = "sql"
    tsdb_url: str | None = None
    influx_url: str = "http://127.0.0.1:8086"
    influx_token: SecretStr = SecretStr("")
    influx_database: str = "facility"

    secret_key: SecretStr = SecretStr(DEMO_SECRET)
    token_ttl: timedelta = timedelta(hours=12)
    demo: bool = False
    demo_password: SecretStr = SecretStr("demo")
    # Seconds between checks of time-driven rules (offline); short in tests.
    tick_seconds: float = Field(default=5.0, gt=0)
    # Public fault-report form (no account). Per client address and hour; reports sent
    # without the page's form token (scripts, integrations) get the smaller budget, since
    # only the page proves the minimum fill time.
    public_reports_per_hour: int = Field(default=20, ge=0)
    public_untokened_reports_per_hour: int = Field(default=5, ge=0)
    public_form_min_fill: timedelta = timedelta(seconds=3)
    public_form_max_age: timedelta = timedelta(hours=12)
    public_max_body_bytes: int = Field(default=3_200_000, gt=0)  # a 2 MB photo as base64

    @model_validator(mode="after")
    def _refuse_demo_secret(self) -> ServerSettings:
        if not self.demo and self.secret_key.get_secret_value() == DEMO_SECRET:
            raise ValueError(
                "FACILITY_SERVER_SECRET_KEY must be set outside demo mode "
                "(the built-in key is public)"
            )
        if len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("FACILITY_SERVER_SECRET_KEY must be at least 32 characters")
        return self

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'server.db'}"

    def ts_url(self) -> str:
        return self.tsdb_url or f"sqlite:///{self.data_dir.parent / 'gateway' / 'timeseries.db'}"
