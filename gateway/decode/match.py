"""Which device (and so which profile) an MQTT topic belongs to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.profiles import MqttTransport, Profile
from core.site import SiteConfig


@dataclass(frozen=True, slots=True)
class Route:
    """What a message on one device's topic needs: no DeviceConfig, so a gateway need not
    keep its site's (thousands of) device objects once it has its routes."""

    profile: Profile
    device_id: str
    address: str  # the device's transport address (its topic's {address})


@dataclass(frozen=True, slots=True)
class TopicPattern:
    profile: Profile
    regex: re.Pattern[str]
    subscription: str  # the same template as an MQTT wildcard subscription


class TopicMatcher:
    """Exact topic -> device map for the site's devices, plus profile patterns for unknowns."""

    def __init__(
        self,
        site: SiteConfig,
        profiles: dict[str, Profile],
        gateway_id: str,
        namespace: str | None = "campus/{site}/#",
    ) -> None:
        # The site's own topic namespace is watched whole, so a sensor set up with a wrong
        # topic shows up as a counted `unknown_topic` instead of being silently unheard.
        self.namespace = namespace.format(site=site.site) if namespace else None
        self._routes: dict[str, Route] = {}
        self._patterns: list[TopicPattern] = []
        used: set[str] = set()
        for device in site.devices:
            profile = profiles[device.profile]
            if device.gateway != gateway_id or not isinstance(profile.transport, MqttTransport):
                continue
            if "+" in device.transport_address or "#" in device.transport_address:
                # No device can publish on such a topic (MQTT forbids wildcards there).
                raise ValueError(
                    f"device {device.id}: MQTT address {device.transport_address!r} "
                    "contains a wildcard (+ or #)"
                )
            topic = device.mqtt_topic(site.site, profile.transport)
            if topic in self._routes:
                raise ValueError(
                    f"devices {self._routes[topic].device_id} and {device.id} "
                    f"both publish on {topic!r}"
                )
            self._routes[topic] = Route(profile, device.id, device.transport_address)
            used.add(profile.profile)
        for name in sorted(used):
            profile = profiles[name]
            assert isinstance(profile.transport, MqttTransport)
            template = profile.transport.topic.replace("{site}", site.site)
            # {address} and any other placeholder ({application_id}) is one topic level.
            parts = re.split(r"({\w+})", template)
            level = re.compile(r"{\w+}")
            regex = "".join("([^/]+)" if level.fullmatch(p) else re.escape(p) for p in parts)
            subscription = "".join("+" if level.fullmatch(p) else p for p in parts)
            self._patterns.append(TopicPattern(profile, re.compile(f"^{regex}$"), subscription))

    def route(self, topic: str) -> Route | None:
        return self._routes.get(topic)

    def pattern_for(self, topic: str) -> TopicPattern | None:
        """The profile whose topic shape this is, for naming an unknown device."""
        return next((p for p in self._patterns if p.regex.match(topic)), None)

    @property
    def subscriptions(self) -> list[str]:
        """Profile filters plus the namespace; filters inside the namespace are dropped, so a
        message never arrives twice through overlapping subscriptions. A device whose
        address holds a "/" (Zigbee2MQTT friendly names may) is beyond its profile's
        single-level `+`, so its exact topic is subscribed too."""
        subs = list(dict.fromkeys(p.subscription for p in self._patterns))
        subs += [t for t in self._routes if not any(p.regex.match(t) for p in self._patterns)]
        if self.namespace is None:
            return subs
        root = self.namespace.removesuffix("#")
        return [self.namespace, *(s for s in subs if not s.startswith(root))]

    @property
    def device_ids(self) -> list[str]:
        return [r.device_id for r in self._routes.values()]
