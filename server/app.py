"""create_app(settings): builds the whole server; nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DataError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.clock import Clock, SystemClock
from core.device_classes import catalogue_for, cold_storage_classes
from core.mqtturl import parse_broker_url, with_credentials
from core.profiles import load_profiles
from core.ruleset import rule_problems
from core.site import SiteConfig, load_site
from core.yamlfile import ConfigError
from server.api.deps import enforce_permission
from server.api.limits import BodyLimit, public_validation_errors
from server.api.routes import (
    alerts,
    auth,
    dead_letters,
    devices,
    dorms,
    kpis,
    public,
    repair_photos,
    stream,
    ui,
    users,
    work_orders,
)
from server.api.routes import rules as rule_routes
from server.api.security import (
    SecurityHeaders,
    add_docs,
    document_errors,
    install_log_redaction,
    internal_error,
    out_of_range,
)
from server.api.shedding import LoadShedder, busy
from server.auth.scope import Sights
from server.auth.services import AuthServices
from server.auth.users import ensure_demo_users
from server.coldchain import service as cold_chain
from server.context import ServerContext
from server.db.engine import make_engine, migrate, session_factory
from server.dorms.late_returns import LateReturnRecorder
from server.events.bus import EventBus
from server.history.influxql import InfluxQLHistory
from server.history.reader import HistoryReader, SqlHistory
from server.ingest import cluster as partitioned
from server.ingest.consumer import UplinkConsumer
from server.ingest.pipeline import IngestPipeline
from server.ingest.uplink_check import UplinkGuard
from server.notifications.notifier import Notifier
from server.patrols import wiring as patrols
from server.retention import Housekeeping
from server.rules.index import RuleIndex
from server.rules.runner import RuleRunner
from server.settings import ServerSettings
from server.stream.hub import LiveHub
from server.web import pages
from server.work_orders import overdue
from server.work_orders.intake import FormTokens
from server.work_orders.overdue import OverdueWatch

log = logging.getLogger(__name__)


def build_context(settings: ServerSettings, clock: Clock | None = None) -> ServerContext:
    clock = clock or SystemClock()
    # The API's pool: short waits (a burst is refused, not queued); ingest, rules and the
    # clock get a pool of their own, so no burst of requests can starve them.
    engine = make_engine(
        settings.db_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
    )
    migrate(engine)
    sessions = session_factory(engine)
    ingest_engine = make_engine(
        settings.db_url(), pool_size=settings.ingest_pool_size, max_overflow=2, pool_timeout=30
    )
    class_rules = catalogue_for(settings.profiles_dir)  # device classes: their files
    classes = {name: c.metrics for name, c in class_rules.items()}
    profiles = load_profiles(settings.profiles_dir, classes)
    site = load_site(settings.site_file, profiles, classes)
    problems = rule_problems(site, profiles, class_rules)
    if problems:  # a rule that can never be judged or told to anyone: refuse to start
        raise ConfigError(str(settings.site_file), problems)
    registry = CollectorRegistry()
    bus = EventBus(registry)
    rules = RuleRunner(RuleIndex(site, profiles, class_rules), site.tz)
    pipeline = IngestPipeline(session_factory(ingest_engine), site, profiles, rules, bus)
    pipeline.sync_devices()
    auth_services = AuthServices.build(settings, registry)
    if settings.demo:
        with sessions.begin() as s:
            ensure_demo_users(
                s, settings.demo_password.get_secret_value(), auth_services.hasher, site.role_book
            )
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
    auth_services.revocations.subscribe_to(bus)
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
        auth=auth_services,
        sights=Sights(site.role_book, cold_storage_classes(class_rules)),
    )


def uplink_guard(settings: ServerSettings, site: SiteConfig) -> UplinkGuard:
    return UplinkGuard(
        site,
        max_bytes=settings.uplink_max_bytes,
        max_items=settings.uplink_max_items,
        max_future=settings.uplink_max_future,
        max_age=settings.uplink_max_age,
    )


def create_app(
    settings: ServerSettings, *, clock: Clock | None = None, consume: bool = True
) -> FastAPI:
    ctx = build_context(settings, clock)
    # Several workers share the uplink through RabbitMQ (server/ingest/cluster.py); an API
    # replica (ingest off) consumes nothing and runs no clock jobs.
    cluster = settings.uplink == "rabbitmq"
    consume = consume and settings.ingest
    single = consume and not cluster

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.notifier.start(settings.tick_seconds if single else None)
        housekeeping = Housekeeping(
            ctx.sessions, settings.data_dir, ctx.clock, settings.report_retention
        )
        housekeeping.start()
        if single:
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
                guard=uplink_guard(settings, ctx.site),
                max_dead_letters=settings.dead_letter_max_rows,
            )
            ctx.consumer.start()
        try:
            yield
        finally:
            if ctx.consumer is not None:
                ctx.consumer.stop()
            housekeeping.stop()
            ctx.auth.hasher.close()
            ctx.notifier.stop()
            ctx.engine.dispose()
            ctx.pipeline.sessions.kw["bind"].dispose()

    docs = settings.docs_enabled
    app = FastAPI(
        title="Campus Facility Monitor",
        version="0.1.0",
        lifespan=lifespan,
        # Every route's declared permission (server/auth/permissions.py), on every request.
        dependencies=[Depends(enforce_permission)],
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.ctx = ctx
    if docs:
        add_docs(app)
    document_errors(app)
    install_log_redaction()
    # Every body is capped before it is read whole; the public form's photo gets more.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger={
            r"/api/public/fault-reports": settings.public_max_body_bytes,
            r"/api/work-orders/\d+/resolution-photo": settings.public_max_body_bytes,
        },
    )
    # Past `api_max_concurrency` running and `api_max_queue` waiting: 503 + Retry-After.
    app.add_middleware(
        LoadShedder,
        limit=settings.api_max_concurrency,
        queue=settings.api_max_queue,
        wait_s=settings.api_queue_wait.total_seconds(),
        registry=ctx.registry,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.hsts)
    app.add_exception_handler(RequestValidationError, public_validation_errors)
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(PoolTimeout, busy)  # no database connection within its wait
    for too_big in (OverflowError, DataError):  # an id of 10**40 in a path, a BIGINT overflow
        app.add_exception_handler(too_big, out_of_range)
    for module in (public, auth, devices, alerts, work_orders, kpis, stream, dorms, ui):
        app.include_router(module.router)
    for module in (
        rule_routes,
        repair_photos,
    ):  # the rules in force and their dry run; repair photos
        app.include_router(module.router)
    for module in (users, dead_letters):  # accounts and the uplink's refusals, for admins
        app.include_router(module.router)
    # The cold-chain record: listeners, /api/cold-chain, its tick (the clock leader's in a cluster).
    cold = cold_chain.install(app, ctx, own_ticker=not cluster)
    # Their ticks run with the uplink consumer, as the notifier's do (tests tick by hand).
    tick = settings.tick_seconds if single else None
    patrol = patrols.install(app, ctx, tick)  # patrol rounds: reader scans, /api/patrols, judging
    watch = OverdueWatch(ctx.sessions, ctx.bus, ctx.clock)
    overdue.install(app, watch, tick)
    if cluster:  # the clock jobs run on one worker at a time
        jobs = [("rules", ctx.pipeline.tick), ("notifications", ctx.notifier.tick)]
        jobs += [("overdue", watch.tick), ("patrols", patrol.tick), ("coldchain", cold.tick)]
        partitioned.install(app, ctx, uplink_guard(settings, ctx.site), ingest=consume, jobs=jobs)
    pages.mount(app)  # the web UI: pages at /, /app, /receipt; files under /static
    return app
