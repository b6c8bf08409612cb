"""Broker URLs and the one way we build paho clients.

mqtt://user:pass@host:port, or mqtts://... for TLS, checked against the system's CAs or,
with `?ca=/path/ca.pem`, against a campus's own CA (the usual case for a broker on the
school's network)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs
    ca_file: str | None = None  # TLS: the CA that signed the broker's certificate

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def redacted(url: str) -> str:
    """The URL as an error may quote it: a password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def parse_broker_url(url: str) -> BrokerEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp"}:
        raise ValueError(f"broker URL {redacted(url)!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"broker URL {redacted(url)!r} has no host")
    tls = parts.scheme == "mqtts"
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - {"ca"})
    if unknown:
        raise ValueError(f"broker URL option {unknown[0]!r} is unknown (known: ca)")
    ca_file = options.get("ca") or None
    if ca_file is not None and not tls:
        raise ValueError("broker URL option 'ca' needs an mqtts:// URL")
    return BrokerEndpoint(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ca_file=ca_file,
    )


def make_client(
    endpoint: BrokerEndpoint,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    will: tuple[str, bytes] | None = None,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho client for MQTT 3.1.1 (the embedded broker speaks 3.1.1; Mosquitto both).

    persistent=True keeps the session on the broker (clean_session off), so QoS 1 messages
    sent while we are away are delivered when we reconnect.
    """
    client = client_class(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set(ca_certs=endpoint.ca_file)  # None: the system's CAs
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=15)
    # Unlimited queue while disconnected; the outbox, not paho, is our durable buffer.
    client.max_queued_messages_set(0)
    return client


def with_credentials(
    endpoint: BrokerEndpoint, username: str | None, password: str | None
) -> BrokerEndpoint:
    if not username:
        return endpoint
    return replace(endpoint, username=username, password=password)
