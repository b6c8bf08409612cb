"""The embedded MQTT broker for the one-command demo (amqtt, in its own thread and loop)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """amqtt on 127.0.0.1: a demo convenience; production uses Mosquitto or EMQX."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1884) -> None:
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._broker: Any = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self, timeout: float = 15.0) -> None:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("embedded MQTT broker did not start")
        if self._error is not None:
            raise RuntimeError(
                f"embedded MQTT broker on {self.host}:{self.port} failed: {self._error}"
            ) from self._error

    def stop(self) -> None:
        if self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(timeout=10)
        except Exception:  # shutting down anyway
            log.debug("broker shutdown raised", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
