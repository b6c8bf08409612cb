"""SMTP for the tests: a real aiosmtpd server in a thread, keeping every message it accepts."""

from __future__ import annotations

import contextlib
import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.harness.process import (
    LOOPBACK,
    START_TIMEOUT,
    ServiceUnavailable,
    free_port,
    register,
    subdir,
    unregister,
)

__all__ = ["ReceivedMail", "Smtp", "start_smtp"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage
    login: str | None = None

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body (the first text/plain part), decoded."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())


class _Inbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._mails: list[ReceivedMail] = []
        self._cond = threading.Condition()

    def add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._mails.append(mail)
            (self.folder / f"{len(self._mails):04d}.eml").write_bytes(mail.data)
            self._cond.notify_all()

    def snapshot(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    def wait_for(self, predicate: Callable[[ReceivedMail], bool], timeout: float) -> ReceivedMail:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mail in self._mails:
                    if predicate(mail):
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(m.rcpt_tos, m.subject) for m in self._mails]
                    raise AssertionError(
                        f"no matching mail within {timeout:g} s; received: {got!r}"
                    )
                self._cond.wait(left)


class _Handler:
    """aiosmtpd handler: parse DATA into a ReceivedMail and keep it."""

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        message = email.message_from_bytes(data, policy=email.policy.default)
        login = session.login_data
        if isinstance(login, bytes):
            login = login.decode(errors="replace")
        self.inbox.add(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                data=data,
                message=message,
                login=login if isinstance(login, str) else None,
            )
        )
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Smtp:
    """A real SMTP server (aiosmtpd, in a thread of this process) on ``host:port``.

    Every accepted message is kept in order (``messages``) and written to
    ``folder/NNNN.eml``. With a username/password, AUTH PLAIN/LOGIN is offered without TLS
    and required.
    """

    host: str
    port: int
    url: str
    folder: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _controller: Any = field(repr=False, compare=False, default=None)
    _inbox: _Inbox = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of the messages received so far."""
        return self._inbox.snapshot()

    def wait_for(
        self, predicate: Callable[[ReceivedMail], bool] = lambda m: True, timeout: float = 10.0
    ) -> ReceivedMail:
        """The first received message for which ``predicate`` holds, waiting up to ``timeout``."""
        return self._inbox.wait_for(predicate, timeout)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._controller.stop()
        unregister(self)


def start_smtp(
    tmp: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = START_TIMEOUT,
) -> Smtp:
    """Start an aiosmtpd ``Controller`` on 127.0.0.1 collecting messages into a list."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        raise ServiceUnavailable(
            "aiosmtpd", "PyPI aiosmtpd", "install the dev extras: bash scripts/bootstrap.sh dev"
        ) from None
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    folder = subdir(tmp, "smtp-")
    inbox = _Inbox(folder)
    port = free_port()
    kwargs: dict[str, Any] = {}
    if username is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> Any:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == username
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False, auth_data=username if ok else None)

        kwargs.update(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    controller = Controller(
        _Handler(inbox),
        hostname=LOOPBACK,
        port=port,
        ready_timeout=timeout,
        server_hostname="cfm-test-smtp",
        **kwargs,
    )
    controller.start()
    handle = Smtp(
        host=LOOPBACK,
        port=port,
        url=f"smtp://{LOOPBACK}:{port}",
        folder=folder,
        username=username,
        password=password,
        _controller=controller,
        _inbox=inbox,
    )
    register(handle)
    return handle
