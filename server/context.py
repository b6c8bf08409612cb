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
from server.history.reader import HistoryReader
from server.ingest.consumer import UplinkConsumer
from server.ingest.processor import Processor
from server.notifications.notifier import Notifier
from server.notifications.stream import Broadcaster
from server.settings import ServerSettings
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
    broadcaster: Broadcaster
    processor: Processor
    history: HistoryReader
    registry: CollectorRegistry
    notifier: Notifier
    form_tokens: FormTokens
    consumer: UplinkConsumer | None = None
    public_limiter: RateLimiter = field(default_factory=RateLimiter)
