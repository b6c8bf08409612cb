"""`facility audit verify`: check the cold-chain audit chain in a server's database, or an
exported report file offline (docs/cold-chain.md). Exit 0 when everything matches, 1 naming
the first entry (or the report) that does not, 2 for bad arguments."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    au = sub.add_parser("audit", help="cold-chain audit tools")
    ausub = au.add_subparsers(dest="audit_command", required=True)
    v = ausub.add_parser(
        "verify",
        help="check the audit hash chain (or a report file's signature); exit 1 naming the "
        "first entry that does not match",
    )
    where = v.add_mutually_exclusive_group()
    where.add_argument("--data-dir", help="the server's data folder (its SQLite database)")
    where.add_argument("--database", help="SQLAlchemy URL of the server's database")
    v.add_argument("--from", dest="start", type=date.fromisoformat, help="YYYY-MM-DD")
    v.add_argument("--to", dest="end", type=date.fromisoformat, help="YYYY-MM-DD")
    v.add_argument("--report", help="an exported report (PDF or CSV) to verify offline")
    v.add_argument("--public-key", help="the site's public key (PEM) the report must carry")
    v.add_argument("--site", help="site file (its time zone names the days); default: settings")
    au.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.report:
        return _report(Path(args.report), args.public_key)
    return _chain(args)


def _report(path: Path, public_key: str | None) -> int:
    from server.audit.keys import load_public
    from server.audit.report_signature import verify_report

    try:
        data = path.read_bytes()
        expected = load_public(Path(public_key)) if public_key else None
    except (OSError, ValueError) as exc:
        _err(f"error: {exc}")
        return EXIT_BAD_INPUT
    check = verify_report(data, expected)
    meta = check.meta or {}
    what = f"{meta.get('site', '?')} {meta.get('from', '?')}..{meta.get('to', '?')}"
    if not check.ok:
        _err(f"FAILED: {path}: {check.detail} (key {check.key_id or 'unknown'})")
        return EXIT_MISMATCH
    _out(f"ok: {path}: {check.detail}; report {what}; key {check.key_id}")
    if not public_key:
        _out("compare the key fingerprint with the one the school publishes")
    return 0


def _chain(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    import yaml
    from sqlalchemy.exc import SQLAlchemyError

    from server.audit.keys import fingerprint, key_path, load_public, raw_public
    from server.coldchain.report import verify
    from server.db.engine import make_engine, session_factory
    from server.settings import ServerSettings

    settings = ServerSettings(demo=True)  # only paths are read; no secret is needed here
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    url = args.database or (
        f"sqlite:///{data_dir / 'server.db'}" if args.data_dir else settings.db_url()
    )
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        _err(f"error: no database at {url}")
        return EXIT_BAD_INPUT
    # Only the site's time zone is needed (it names the days): read it, validate nothing else.
    site_file = Path(args.site) if args.site else settings.site_file
    tz = ZoneInfo(str(yaml.safe_load(site_file.read_text(encoding="utf-8")).get("timezone", "UTC")))
    pub_file = key_path(data_dir).with_name("audit-signing-key.pub.pem")
    expected = fingerprint(raw_public(load_public(pub_file))) if pub_file.exists() else None
    engine = make_engine(url)
    try:
        with session_factory(engine)() as s:
            result = verify(s, tz, args.start, args.end, None, expected_key_id=expected)
    except SQLAlchemyError as exc:
        _err(f"error: cannot read the audit chain: {exc.__class__.__name__}")
        return EXIT_BAD_INPUT
    finally:
        engine.dispose()
    if not result.ok:
        _err(f"FAILED: {result.first_bad}")
        return EXIT_MISMATCH
    heads = sum(1 for _, _, ok in result.heads if ok)
    _out(
        f"ok: {result.entries} entries, {result.records} records match the chain; "
        f"{heads} signed day heads verify" + (f" (key {expected})" if expected else "")
    )
    return 0


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
