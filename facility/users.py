# ruff: noqa: T201  (a command line tool: it prints)
"""`facility users add|list|disable|enable|set-password`: accounts in the server's database.

Run on the server's host with the server's environment (FACILITY_SERVER_DATABASE_URL, ...)
or with --database URL; the schema is created or migrated first, so the first admin of a
fresh installation is made before the server ever starts. The same rules as the API
(server/auth/accounts.py): password policy, roles, buildings of the site file.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import TYPE_CHECKING

from pydantic import SecretStr, ValidationError

if TYPE_CHECKING:
    from server.settings import ServerSettings

EXIT_BAD_INPUT = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from core.roles import Role

    u = sub.add_parser(
        "users", help="accounts in the server's database (settings: FACILITY_SERVER_* env)"
    )
    u.add_argument("--database", help="SQLAlchemy URL (default: the server's settings)")
    usub = u.add_subparsers(dest="users_command", required=True)
    a = usub.add_parser("add", help="create an account")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=[r.value for r in Role])
    a.add_argument("--building", action="append", default=[], help="repeat for several")
    a.add_argument("--display-name")
    a.add_argument("--email")
    a.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    usub.add_parser("list", help="list accounts")
    for name, text in (
        ("disable", "disable an account (ends its sessions)"),
        ("enable", "enable a disabled account"),
    ):
        d = usub.add_parser(name, help=text)
        d.add_argument("name")
    sp = usub.add_parser("set-password", help="set a password (ends the account's sessions)")
    sp.add_argument("name")
    sp.add_argument("--password-stdin", action="store_true")
    u.set_defaults(func=run)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise SystemExit("error: no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("error: the two passwords differ")
    return first


def _settings(database: str | None) -> ServerSettings:
    from server.settings import ServerSettings

    # Accounts need no secret key: a throw-away one keeps the server's check from asking.
    overrides: dict[str, object] = {"secret_key": SecretStr(secrets.token_urlsafe(48))}
    if database:
        overrides["database_url"] = database
    return ServerSettings(**overrides)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from core.clock import utcnow
    from core.profiles import load_profiles
    from core.roles import RoleBook
    from core.site import load_site
    from core.yamlfile import ConfigError, ConfigErrors
    from server.auth import accounts
    from server.auth.model import User
    from server.auth.services import make_hasher
    from server.db.engine import make_engine, migrate, session_factory

    try:
        settings = _settings(args.database)
    except ValidationError as exc:
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "settings"
            print(f"error: {where}: {e['msg']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = make_engine(settings.db_url())
    try:
        migrate(engine)
        sessions = session_factory(engine)
        known: set[str] | None
        roles = RoleBook()
        try:
            site = load_site(settings.site_file, load_profiles(settings.profiles_dir))
            known, roles = {b.id for b in site.buildings}, site.role_book
        except (ConfigError, ConfigErrors, OSError):
            known = None  # no site file here: buildings are not checked against it
        rules = accounts.PasswordRules(make_hasher(settings), settings.password_min_length)
        command = args.users_command
        with sessions.begin() as s:
            if command == "list":
                for user in s.scalars(select(User).order_by(User.username)):
                    state = "active" if user.active else "disabled"
                    where = ",".join(user.buildings or []) or "-"
                    print(f"{user.username:<24} {user.role:<16} {where:<20} {state}")
                return 0
            if command == "add":
                user = accounts.create_user(
                    s,
                    rules,
                    username=args.name,
                    role=args.role,
                    password=_password(args.password_stdin),
                    buildings=args.building,
                    display_name=args.display_name,
                    email=args.email,
                    known_buildings=known,
                    roles=roles,
                )
                print(f"created {user.username} ({user.role})")
                return 0
            found = accounts.by_username(s, args.name)
            if found is None:
                print(f"error: no user {args.name!r}", file=sys.stderr)
                return EXIT_BAD_INPUT
            now = utcnow()
            if command in ("disable", "enable"):
                ended = accounts.update_user(s, found, now=now, active=command == "enable")
                print(f"{command}d {found.username}; {len(ended)} session(s) ended")
            else:
                password = _password(args.password_stdin)
                ended = accounts.set_password(s, rules, found, password, now=now)
                print(f"password of {found.username} set; {len(ended)} session(s) ended")
            return 0
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        engine.dispose()
