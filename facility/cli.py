"""The `facility` command. Each subcommand imports its side lazily (gateway and server are
separate deployments; neither needs the other installed to start)."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import sites

EXIT_BAD_INPUT = 2


class _JsonFormatter(logging.Formatter):
    """One JSON object per line (ts, level, logger, thread, msg, exc), for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _cmd_demo(args: argparse.Namespace) -> int:
    from facility.demo import run_demo

    run_demo(
        port=args.port,
        mqtt_port=args.mqtt_port,
        data_dir=Path(args.data_dir),
        open_browser=not args.no_browser,
        demo_password=args.demo_password,
    )
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _cmd_gateway(_args: argparse.Namespace) -> int:
    from gateway.app import build_gateway
    from gateway.settings import GatewaySettings

    gateway = build_gateway(GatewaySettings())
    # The site and its profiles (a million objects for 10,000 devices) live as long as the
    # process: freezing them keeps the cyclic collector from walking them again and again
    # while thousands of short-lived readings a second go by.
    gc.collect()
    gc.freeze()
    gateway.start()
    _wait_for_signal()
    gateway.stop()
    return 0


def _cmd_server(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from server.app import create_app
    from server.settings import ServerSettings

    overrides: dict[str, Any] = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    # Several workers on one uplink (FACILITY_SERVER_UPLINK=rabbitmq): docs/deployment-district.md
    if args.worker_index is not None:
        overrides["worker_index"] = args.worker_index
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.no_ingest:
        overrides["ingest"] = False
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        # Named by setting, without the value given (a URL may carry a password).
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "settings"
            print(f"error: FACILITY_SERVER_{where.upper()}: {e['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # The client address is the app's business (X-Forwarded-For only from the configured
    # FACILITY_SERVER_TRUSTED_PROXIES), so uvicorn must not rewrite it from headers first.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
    )
    return 0


def _cmd_sim(args: argparse.Namespace) -> int:
    from core.mqtturl import parse_broker_url
    from firmware_sim.faults import ALL_FAULTS

    broker = parse_broker_url(args.broker)
    if args.sim_command == "run":
        from core.profiles import load_profiles
        from core.site import load_site
        from firmware_sim.runner import SimOptions, SimRunner

        profiles = load_profiles()
        site = load_site(Path(args.site), profiles)
        runner = SimRunner(
            site,
            profiles,
            broker,
            SimOptions(time_scale=args.time_scale, report_every_s=args.report_every),
        )
        runner.start()
        _wait_for_signal()
        runner.stop()
        return 0
    from firmware_sim.runner import send_command

    if args.sim_command == "fault":
        if args.fault not in ALL_FAULTS:
            print(
                f"error: unknown fault {args.fault!r}; known: {', '.join(sorted(ALL_FAULTS))}",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        send_command(broker, args.device_id, args.fault)
        print(f"sent fault {args.fault} to {args.device_id} via {broker}")
    else:
        send_command(broker, args.device_id, None, clear=True)
        print(f"cleared faults of {args.device_id} via {broker}")
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from core.serial.errors import FrameError
    from gateway.decode_tools import decode_hex

    try:
        result = decode_hex(args.protocol, args.hex)
    except (FrameError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from core.device_classes import catalogue_for
    from core.profiles import DEFAULT_PROFILES_DIR, load_profiles
    from core.ruleset import rule_problems
    from core.site import load_site
    from core.yamlfile import ConfigError, ConfigErrors

    profiles_dir = Path(args.profiles or DEFAULT_PROFILES_DIR)
    try:
        catalogue = catalogue_for(profiles_dir)
        classes = {name: c.metrics for name, c in catalogue.items()}
        profiles = load_profiles(profiles_dir, classes)
        for site_file in args.site or []:
            site = load_site(Path(site_file), profiles, classes)
            problems = rule_problems(site, profiles, catalogue)
            if problems:
                raise ConfigError(site_file, problems)
    except (ConfigError, ConfigErrors) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"ok: {len(profiles)} profiles in {profiles_dir}"
        + (f", {len(args.site)} site file(s)" if args.site else "")
    )
    return 0


def _cmd_rules(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from core.profiles import DEFAULT_PROFILES_DIR
    from core.yamlfile import ConfigError, ConfigErrors
    from server.rules.replay import ReplayError, read_records, replay

    try:
        items = read_records(Path(args.replay))
        alerts = replay(
            items,
            site_file=Path(args.site),
            profiles_dir=Path(args.profiles or DEFAULT_PROFILES_DIR),
            burst=args.burst,
            tick=timedelta(seconds=args.tick),
        )
    except (ReplayError, ConfigError, ConfigErrors, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps([a.as_dict() for a in alerts], indent=2, ensure_ascii=False))
        return 0
    mode = "one burst" if args.burst else "live, in event-time order"
    print(f"{len(items)} records replayed ({mode}); {len(alerts)} alert(s) would be raised")
    for a in alerts:
        end = a.resolved_at.isoformat() if a.resolved_at else "still active"
        print(
            f"{a.raised_at.isoformat()}  {a.severity:<8} {a.device_id:<20} {a.rule:<22} "
            f"until {end}  {a.message}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facility", description=__doc__)
    p.add_argument("--log-level", default=os.environ.get("FACILITY_LOG_LEVEL", "info"))
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("FACILITY_LOG_FORMAT", "text"),
        help="json: one object per line (FACILITY_LOG_FORMAT)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run everything on embedded defaults (127.0.0.1)")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--mqtt-port", type=int, default=1884)
    d.add_argument("--data-dir", default="data/demo")
    d.add_argument("--no-browser", action="store_true")
    d.add_argument("--demo-password", default="demo")
    d.set_defaults(func=_cmd_demo)

    g = sub.add_parser("gateway", help="run a gateway (settings: FACILITY_GATEWAY_* env)")
    g.set_defaults(func=_cmd_gateway)

    s = sub.add_parser("server", help="run the server (settings: FACILITY_SERVER_* env)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--worker-index", type=int, help="this worker's place among --workers")
    s.add_argument("--workers", type=int, help="workers sharing the uplink (RabbitMQ)")
    s.add_argument("--no-ingest", action="store_true", help="an API replica: no uplink, no clock")
    s.set_defaults(func=_cmd_server)

    sim = sub.add_parser("sim", help="simulated devices: run them, or send fault commands")
    sim.add_argument("--broker", default="mqtt://127.0.0.1:1884")
    simsub = sim.add_subparsers(dest="sim_command", required=True)
    f = simsub.add_parser("fault", help="start a fault on a simulated device")
    f.add_argument("device_id")
    f.add_argument("fault")
    f.add_argument("--broker", default=argparse.SUPPRESS)
    c = simsub.add_parser("clear", help="end every fault of a simulated device")
    c.add_argument("device_id")
    c.add_argument("--broker", default=argparse.SUPPRESS)
    r = simsub.add_parser("run", help="run the site's simulated MQTT devices")
    r.add_argument(
        "--site",
        default=str(sites.DEMO_SITE_FILE),
    )
    r.add_argument("--time-scale", type=float, default=1.0)
    r.add_argument("--report-every", type=float, default=60.0)
    r.add_argument("--broker", default=argparse.SUPPRESS)
    sim.set_defaults(func=_cmd_sim)

    dec = sub.add_parser(
        "decode",
        help="decode a serial frame given as hex (a meter's error answer included); "
        "exit 2 for a broken frame",
    )
    dec.add_argument("protocol", choices=["dlt645", "modbus"])
    dec.add_argument("hex")
    dec.set_defaults(func=_cmd_decode)

    ru = sub.add_parser("rules", help="rule tools")
    rusub = ru.add_subparsers(dest="rules_command", required=True)
    rt = rusub.add_parser(
        "test", help="run the site's rules over recorded readings; print the alerts raised"
    )
    rt.add_argument(
        "--replay", required=True, help="JSON Lines: {device, at, metric, value} or {event}"
    )
    rt.add_argument(
        "--site",
        default=str(sites.DEMO_SITE_FILE),
        help="site config with the rule set to try (default: the demo site)",
    )
    rt.add_argument("--profiles", help="profiles folder (default: shipped)")
    rt.add_argument("--burst", action="store_true", help="all records in one batch")
    rt.add_argument("--tick", type=float, default=60.0, help="live tick, seconds of event time")
    rt.add_argument("--json", action="store_true", help="print the alerts as JSON")
    ru.set_defaults(func=_cmd_rules)

    from facility import mosquitto_acl, users

    users.add_parser(sub)
    mosquitto_acl.add_parser(sub)

    from facility import audit

    audit.add_parser(sub)

    pr = sub.add_parser("profiles", help="device profile tools")
    prsub = pr.add_subparsers(dest="profiles_command", required=True)
    chk = prsub.add_parser("check", help="validate profiles (and site files)")
    chk.add_argument("profiles", nargs="?", help="profiles folder (default: shipped)")
    chk.add_argument("--site", action="append", help="a site file to check too")
    pr.set_defaults(func=_cmd_profiles)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _logging(args.log_level, args.log_format)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
