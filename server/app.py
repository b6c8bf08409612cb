"""create_app(settings): builds the whole server; nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from core.clock import Clock, SystemClock
from core.mqtturl import parse_broker_url, with_credentials
from core.profiles import load_profiles
from core.ruleset import load_class_rules
from core.site import load_site
from server.api.limits import BodyLimit, public_validation_errors
from server.api.routes import alerts, auth, devices, dorms, kpis, public, stream, work_orders
from server.auth.users import ensure_demo_users
from server.context import ServerContext
from server.db.engine import make_engine, migrate, session_factory
from server.dorms.late_returns import LateReturnRecorder
from server.events.bus import EventBus
from server.history.influxql import InfluxQLHistory
from server.history.reader import HistoryReader, SqlHistory
from server.ingest.consumer import UplinkConsumer
from server.ingest.pipeline import IngestPipeline
from server.notifications.notifier import Notifier
from server.rules.index import RuleIndex
from server.rules.runner import RuleRunner
from server.settings import ServerSettings
from server.stream.hub import LiveHub
from server.work_orders.intake import FormTokens

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent / "web"


def build_context(settings: ServerSettings, clock: Clock | None = None) -> ServerContext:
    clock = clock or SystemClock()
    engine = make_engine(settings.db_url())
    migrate(engine)
    sessions = session_factory(engine)
    profiles = load_profiles(settings.profiles_dir)
    site = load_site(settings.site_file, profiles)
    class_rules = load_class_rules(settings.profiles_dir / "classes")
    registry = CollectorRegistry()
    bus = EventBus(registry)
    rules = RuleRunner(RuleIndex(site, profiles, class_rules), site.tz)
    pipeline = IngestPipeline(sessions, site, profiles, rules, bus)
    pipeline.sync_devices()
    if settings.demo:
        with sessions.begin() as s:
            ensure_demo_users(s, settings.demo_password.get_secret_value())
    history: HistoryReader
    if settings.tsdb == "influx":
        history = InfluxQLHistory(
            settings.influx_url,
            settings.influx_database,
            site,
            profiles,
            token=settings.influx_token.get_secret_value(),
        )
    else:
        history = SqlHistory(make_engine(settings.ts_url()))
    # The consumers of domain events; each subscribes to what it needs.
    live = LiveHub()
    live.subscribe_to(bus)
    notifier = Notifier(sessions, site, rules.index.notify_roles, clock, registry)
    notifier.subscribe(bus)
    LateReturnRecorder(sessions, site).subscribe_to(bus)
    return ServerContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        site=site,
        profiles=profiles,
        class_rules=class_rules,
        bus=bus,
        live=live,
        rules=rules,
        pipeline=pipeline,
        history=history,
        registry=registry,
        notifier=notifier,
        form_tokens=FormTokens(
            settings.secret_key.get_secret_value(),
            settings.public_form_min_fill,
            settings.public_form_max_age,
        ),
    )


def create_app(
    settings: ServerSettings, *, clock: Clock | None = None, consume: bool = True
) -> FastAPI:
    ctx = build_context(settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.notifier.start(settings.tick_seconds if consume else None)
        if consume:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            endpoint = with_credentials(
                parse_broker_url(settings.broker), settings.mqtt_username, password
            )
            ctx.consumer = UplinkConsumer(
                endpoint,
                settings.mqtt_client_id,
                ctx.pipeline,
                ctx.clock,
                settings.tick_seconds,
                ctx.registry,
            )
            ctx.consumer.start()
        try:
            yield
        finally:
            if ctx.consumer is not None:
                ctx.consumer.stop()
            ctx.notifier.stop()
            ctx.engine.dispose()

    app = FastAPI(title="Campus Facility Monitor", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ctx
    # The public form is open to anyone: refuse an oversized body before it is read whole.
    app.add_middleware(BodyLimit, prefix="/api/public/", max_bytes=settings.public_max_body_bytes)
    app.add_exception_handler(RequestValidationError, public_validation_errors)
    for module in (public, auth, devices, alerts, work_orders, kpis, stream, dorms):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(WEB / "public.html")

    @app.get("/app", include_in_schema=False)
    def web_app() -> FileResponse:
        return FileResponse(WEB / "app.html")

    return app
