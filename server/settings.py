"""Server settings from environment (FACILITY_SERVER_*); defaults are the embedded demo."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.mqtturl import parse_broker_url
from core.profiles import DEFAULT_PROFILES_DIR
from core.site import DEFAULT_SITE_FILE

DEMO_SECRET = "demo-insecure-secret-change-me-0123456789"
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ServerSettings(BaseSettings):
    # hide_input_in_errors: a wrong broker or database URL is reported without its value,
    # which may carry a password.
    model_config = SettingsConfigDict(
        env_prefix="FACILITY_SERVER_", env_nested_delimiter="__", hide_input_in_errors=True
    )

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

    # -- the HTTP surface (docs/security.md) --------------------------------------------
    # Every other request body: JSON of a form, a transition, a user.
    max_body_bytes: int = Field(default=65_536, gt=0)
    # Peers whose X-Forwarded-For is believed (a reverse proxy): addresses or networks.
    # Empty: the client address is the TCP peer's, whatever a header says.
    trusted_proxies: list[str] = Field(default_factory=list)
    # /docs, /redoc and /openapi.json; None: on in demo mode only.
    api_docs: bool | None = None
    # /metrics: "off"; "local" = loopback peers only, or anyone sending metrics_token as a
    # bearer token; "public" = anyone (behind a proxy that restricts it).
    metrics: Literal["off", "local", "public"] = "local"
    metrics_token: SecretStr | None = None
    # Strict-Transport-Security, for a server reached over HTTPS (through its proxy).
    hsts: bool = False

    # -- accounts and sessions (docs/security.md) ------------------------------------------
    password_min_length: int = Field(default=10, ge=8, le=128)
    # Argon2id, OWASP's minimum profile (19 MiB, 2 passes, 1 lane): about 30 ms a hash here.
    # Hashes run on `password_hash_concurrency` threads of their own (a login waits its turn,
    # up to `password_hash_wait`, then gets 503), so logins hold at most that many times the
    # memory cost, whatever arrives (measured: 32 logins at once, +114 MiB with the pool,
    # +399 MiB when each request thread hashed on its own: the allocator keeps each thread's
    # block).
    password_hash_memory_kib: int = Field(default=19_456, ge=8_192, le=1_048_576)
    password_hash_time_cost: int = Field(default=2, ge=1, le=20)
    password_hash_concurrency: int = Field(default=4, ge=1, le=64)
    password_hash_wait: timedelta = timedelta(seconds=10)
    # Login throttling: an account (by the name tried, known or not) gets
    # `login_free_failures` free tries, then waits 2, 4, 8, ... s (at most
    # `login_max_backoff`) before the next; an address gets `login_address_failures` failures
    # per `login_address_window`, over any accounts.
    login_free_failures: int = Field(default=5, ge=1)
    login_max_backoff: timedelta = timedelta(minutes=15)
    login_address_failures: int = Field(default=20, ge=1)
    login_address_window: timedelta = timedelta(minutes=15)
    # Single-use tickets for the event stream (EventSource cannot send a header).
    stream_ticket_ttl: timedelta = timedelta(seconds=30)
    # The stream re-checks its session this often (revocations by another server process).
    stream_session_check: timedelta = timedelta(seconds=15)

    # -- the uplink boundary (docs/security.md) --------------------------------------------
    uplink_max_bytes: int = Field(default=4_000_000, gt=0)
    uplink_max_items: int = Field(default=50_000, gt=0)
    # Device and receive times later than now + this are refused (clock skew allowance).
    uplink_max_future: timedelta = timedelta(minutes=5)
    # ... and earlier than now - this (a gateway's buffer rarely holds more).
    uplink_max_age: timedelta = timedelta(days=400)
    dead_letter_max_rows: int = Field(default=10_000, ge=100)

    # -- load and scale (docs/deployment-district.md) ---------------------------------------
    # API requests running at once, waiting beyond them (each up to api_queue_wait), and
    # the rest refused at once with 503 + Retry-After (server/api/shedding.py).
    api_max_concurrency: int = Field(default=8, ge=1, le=1000)
    api_max_queue: int = Field(default=32, ge=0, le=10_000)
    api_queue_wait: timedelta = timedelta(seconds=2)
    # The API's database pool: a request waits at most db_pool_timeout for a connection
    # (then 503). Ingest, rules and clock jobs have their own pool of ingest_pool_size.
    db_pool_size: int = Field(default=8, ge=1, le=200)
    db_max_overflow: int = Field(default=8, ge=0, le=200)
    db_pool_timeout: float = Field(default=3.0, gt=0, le=60)
    ingest_pool_size: int = Field(default=4, ge=2, le=50)
    # "mqtt": one server reads the uplink from an MQTT broker (Mosquitto, the default).
    # "rabbitmq": several workers share it through RabbitMQ: gateways publish over its MQTT
    # plugin, a consistent-hash exchange spreads gateways over `partitions` quorum queues
    # with one active consumer each (server/ingest/partitioned.py); the live stream fans out
    # through it too, and one worker at a time runs the clock jobs.
    uplink: Literal["mqtt", "rabbitmq"] = "mqtt"
    amqp_url: SecretStr | None = None  # amqp://user:password@host:5672/vhost
    partitions: int = Field(default=12, ge=1, le=1000)
    # This worker's place among `workers`: it consumes partitions p % workers == worker_index
    # first, and stands by for the others (taking them over when their worker dies).
    worker_index: int = Field(default=0, ge=0)
    workers: int = Field(default=1, ge=1)
    # A worker stands by for another's partitions once that one has a consumer, or after
    # this long without one (its worker is missing: it takes them).
    partition_grace: timedelta = timedelta(seconds=10)
    # False: an API replica (no uplink, no clock jobs); it still serves the live stream.
    ingest: bool = True

    # -- maintenance windows and reports ---------------------------------------------------
    maintenance_max: timedelta = timedelta(hours=72)
    # A reported order's photo and contact are deleted this long after it is verified.
    report_retention: timedelta = timedelta(days=180)

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        try:
            parse_broker_url(value)
        except ValueError as exc:
            # The parser quotes the URL; say what is wrong without it (it may hold a password).
            reason = _without_urls(str(exc).replace(repr(value), "(as given)"))
            raise ValueError(reason) from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an address or network"
                ) from None
        return value

    @model_validator(mode="after")
    def _refuse_demo_secret(self) -> ServerSettings:
        secret = self.secret_key.get_secret_value()
        if not self.demo and secret == DEMO_SECRET:
            raise ValueError(
                "FACILITY_SERVER_SECRET_KEY must be set outside demo mode "
                "(the built-in key is public)"
            )
        if secret == DEMO_SECRET and not is_loopback(self.host):
            raise ValueError(
                f"the demo's built-in secret key is public: the server may bind only to "
                f"loopback with it, not {self.host}; set FACILITY_SERVER_SECRET_KEY"
            )
        if len(secret) < 32:
            raise ValueError("FACILITY_SERVER_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def docs_enabled(self) -> bool:
        return self.demo if self.api_docs is None else self.api_docs

    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'server.db'}"

    def ts_url(self) -> str:
        return self.tsdb_url or f"sqlite:///{self.data_dir.parent / 'gateway' / 'timeseries.db'}"


def _without_urls(text: str) -> str:
    """`text` with anything URL-shaped replaced: error messages must not carry credentials."""
    import re

    return re.sub(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+", "<url>", text)
