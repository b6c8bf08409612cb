"""`facility deploy mosquitto-acl`: Mosquitto's ACL file for a site, from the site file and
the device profiles, so the broker enforces what the site file says.

Every account is listed by name; there are no `pattern` lines (a pattern applies to every
account, devices included, and would let a device name itself a gateway):

- `server` reads the uplink (data and status of every gateway) and writes nothing;
- each gateway (account = gateway id) writes only its own uplink data and status, and reads
  only the topics of its own devices (what it subscribes to beyond them, e.g. its site's
  whole namespace to spot misconfigured sensors, delivers nothing else);
- each MQTT device that logs in (account = device id) writes only its own topic.

tests/security/test_mosquitto_acl.py runs a real Mosquitto with deploy/mosquitto/ and proves
each denial; it also checks that deploy/mosquitto/acl is this command's output for the demo
site.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from core.profiles import MqttTransport, Profile
from core.site import SiteConfig
from core.wire import data_topic, status_topic

SERVER_ACCOUNT = "server"
UPLINK_FILTERS = ("facility/v1/gw/+/data", "facility/v1/gw/+/status")


def device_topics(site: SiteConfig, profiles: dict[str, Profile]) -> dict[str, tuple[str, str]]:
    """device id -> (gateway id, MQTT topic) for the site's MQTT devices."""
    out: dict[str, tuple[str, str]] = {}
    for d in site.devices:
        transport = profiles[d.profile].transport
        if isinstance(transport, MqttTransport):
            topic = d.mqtt_topic(site.site, transport)
            out[d.id] = (d.gateway, topic)
    return out


def render_acl(site: SiteConfig, profiles: dict[str, Profile]) -> str:
    topics = device_topics(site, profiles)
    by_gateway: dict[str, list[str]] = defaultdict(list)
    for gateway, topic in topics.values():
        by_gateway[gateway].append(topic)
    for d in site.devices:  # gateways with serial devices only still publish an uplink
        by_gateway.setdefault(d.gateway, [])
    lines = [
        f"# Mosquitto ACL for site {site.site!r}, made by `facility deploy mosquitto-acl`",
        "# from the site file: regenerate it when devices or gateways change.",
        "# Accounts: `server`, one per gateway (its gateway id), one per MQTT device that",
        "# logs in (its device id). Anything not listed here is denied.",
        "",
        f"user {SERVER_ACCOUNT}",
        *(f"topic read {f}" for f in UPLINK_FILTERS),
    ]
    for gateway in sorted(by_gateway):
        lines += [
            "",
            f"user {gateway}",
            f"topic write {data_topic(gateway)}",
            f"topic readwrite {status_topic(gateway)}",
            *(f"topic read {t}" for t in sorted(by_gateway[gateway])),
        ]
    for device_id in sorted(topics):
        lines += ["", f"user {device_id}", f"topic write {topics[device_id][1]}"]
    return "\n".join(lines) + "\n"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    import sites

    dep = sub.add_parser("deploy", help="deployment files made from the site file")
    dsub = dep.add_subparsers(dest="deploy_command", required=True)
    acl = dsub.add_parser("mosquitto-acl", help="print Mosquitto's ACL file for a site")
    acl.add_argument("--site", default=str(sites.DEMO_SITE_FILE))
    acl.add_argument("--profiles", help="profiles folder (default: shipped)")
    dep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.profiles import DEFAULT_PROFILES_DIR, load_profiles
    from core.site import load_site
    from core.yamlfile import ConfigError, ConfigErrors

    try:
        profiles = load_profiles(Path(args.profiles or DEFAULT_PROFILES_DIR))
        site = load_site(Path(args.site), profiles)
    except (ConfigError, ConfigErrors, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(render_acl(site, profiles))
    return 0
