"""The account services a running server holds (built once by create_app)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from server.auth.accounts import PasswordRules
from server.auth.passwords import Hasher
from server.auth.revocations import Revocations
from server.auth.throttle import LoginThrottle
from server.settings import ServerSettings


@dataclass
class AuthServices:
    hasher: Hasher
    throttle: LoginThrottle
    revocations: Revocations
    rules: PasswordRules
    login_failures: Counter

    @classmethod
    def build(cls, settings: ServerSettings, registry: CollectorRegistry | None) -> AuthServices:
        hasher = make_hasher(settings, registry)
        return cls(
            hasher=hasher,
            throttle=LoginThrottle(
                free_failures=settings.login_free_failures,
                max_backoff_s=settings.login_max_backoff.total_seconds(),
                address_failures=settings.login_address_failures,
                address_window_s=settings.login_address_window.total_seconds(),
            ),
            revocations=Revocations(),
            rules=PasswordRules(hasher, settings.password_min_length),
            login_failures=Counter(
                "server_login_failures",
                "Refused logins and password checks, by reason",
                ["reason"],  # wrong_password | unknown_user | disabled | throttled
                registry=registry,
            ),
        )


def make_hasher(settings: ServerSettings, registry: CollectorRegistry | None = None) -> Hasher:
    return Hasher(
        memory_kib=settings.password_hash_memory_kib,
        time_cost=settings.password_hash_time_cost,
        concurrency=settings.password_hash_concurrency,
        wait_s=settings.password_hash_wait.total_seconds(),
        registry=registry,
    )
