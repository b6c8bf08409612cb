"""Everything a running server holds, built once by create_app (nothing at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.profiles import Profile
from core.ruleset import ClassRules
from core.site import SiteConfig
from server.auth.scope import Sights
from server.auth.services import AuthServices
from server.events.bus import EventBus
from server.history.reader import HistoryReader
from server.ingest.consumer import UplinkConsumer
from server.ingest.pipeline import IngestPipeline
from server.notifications.notifier import Notifier
from server.rules.runner import RuleRunner
from server.settings import ServerSettings
from server.stream.hub import LiveHub
from server.work_orders.intake import FormTokens, RateLimiter


@dataclass
class ServerContext:
    settings: ServerSettings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    site: SiteConfig
    profiles: dict[str, Profile]
    class_rules: dict[str, ClassRules]
    bus: EventBus  # domain events: producers publish after commit, consumers subscribe
    live: LiveHub  # the browser stream's subscribers
    rules: RuleRunner
    pipeline: IngestPipeline
    history: HistoryReader
    registry: CollectorRegistry
    notifier: Notifier
    form_tokens: FormTokens
    auth: AuthServices  # hashing, login throttle, open streams by session
    sights: Sights  # each role's scope (built-in and the site's own), for Viewer
    consumer: UplinkConsumer | None = None
    public_limiter: RateLimiter = field(default_factory=RateLimiter)
