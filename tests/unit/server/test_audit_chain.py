"""The audit hash chain, its signed day heads and signed report files (server/audit/)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from server.audit import chain, heads
from server.audit.keys import load_or_create
from server.audit.model import AuditEntry
from server.audit.report_signature import sign_report, verify_report
from server.audit.verify import verify_chain
from server.db.engine import make_engine, migrate, session_factory

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 10, 2, tzinfo=UTC)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    return session_factory(engine)()


def no_record_check(_s: Session, _e: AuditEntry) -> str | None:
    return None


def fill(s: Session) -> None:
    for i in range(5):
        chain.record(
            s,
            kind="sample",
            ref=f"sample:{i}",
            payload={"dish": f"d{i}", "g": 125.0},
            actor="food",
            at=T0 + timedelta(minutes=i),
        )
    s.commit()


def test_the_same_record_twice_is_chained_once_and_a_change_again(session: Session) -> None:
    fill(session)
    again = chain.record(
        session,
        kind="sample",
        ref="sample:0",
        payload={"dish": "d0", "g": 125.0},
        actor="food",
        at=T0,
    )
    assert again is None
    changed = chain.record(
        session,
        kind="sample",
        ref="sample:0",
        payload={"dish": "d0", "g": 1.0},
        actor="food",
        at=T0,
    )
    assert changed is not None and changed.seq == 6 and changed.op == "update"


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        (
            "UPDATE audit_entries SET payload = replace(payload, 'd2', 'x') WHERE seq = 3",
            "content hash",
        ),
        (
            "UPDATE audit_entries SET actor = 'x', at = '2026-03-10 02:30:00' WHERE seq = 3",
            "entry hash",
        ),
        ("DELETE FROM audit_entries WHERE seq = 3", "missing"),
    ],
    ids=["payload", "time", "deleted"],
)
def test_a_changed_entry_is_named(session: Session, statement: str, problem: str) -> None:
    fill(session)
    assert verify_chain(session, no_record_check).ok
    session.execute(text(statement))
    session.commit()
    result = verify_chain(session, no_record_check)
    assert result.first_bad is not None and "entry #3" in str(result.first_bad)
    assert problem in result.first_bad.detail


def test_day_heads_are_signed_once_and_checked(session: Session, tmp_path: Path) -> None:
    key = load_or_create(tmp_path)
    fill(session)
    assert heads.sign_due(session, key, TZ, T0 + timedelta(hours=1)) == []  # day not over
    days = heads.sign_due(session, key, TZ, T0 + timedelta(days=1))
    assert [d.isoformat() for d in days] == ["2026-03-10"]
    assert heads.sign_due(session, key, TZ, T0 + timedelta(days=1)) == []
    session.commit()
    result = verify_chain(session, no_record_check)
    assert result.ok and result.heads == [(days[0], 5, True)]
    session.execute(text("UPDATE audit_day_heads SET seq = 4"))
    session.commit()
    assert not verify_chain(session, no_record_check).ok


def test_the_key_is_made_once_with_owner_only_permissions(tmp_path: Path) -> None:
    key = load_or_create(tmp_path)
    path = tmp_path / "audit-signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create(tmp_path)
    assert again.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    assert (tmp_path / "audit-signing-key.pub.pem").exists()


def test_the_key_file_may_come_from_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.pem"
    monkeypatch.setenv("FACILITY_SERVER_AUDIT_KEY_FILE", str(secret))
    with pytest.raises(ValueError, match="does not exist"):
        load_or_create(tmp_path / "data")
    monkeypatch.delenv("FACILITY_SERVER_AUDIT_KEY_FILE")
    made = load_or_create(tmp_path / "made")
    os.replace(tmp_path / "made" / "audit-signing-key.pem", secret)
    monkeypatch.setenv("FACILITY_SERVER_AUDIT_KEY_FILE", str(secret))
    assert load_or_create(tmp_path / "data").public_key().public_bytes_raw() == (
        made.public_key().public_bytes_raw()
    )


@pytest.mark.parametrize("fmt", ["pdf", "csv"])
def test_a_signed_report_fails_with_any_byte_changed(tmp_path: Path, fmt: str) -> None:
    key = load_or_create(tmp_path)
    body = b"%PDF-1.4\n...\n%%EOF\n" if fmt == "pdf" else "a,b\n1,留样\n".encode()
    signed = sign_report(body, key, fmt, {"site": "demo"})
    assert verify_report(signed).ok
    assert verify_report(signed, key.public_key()).ok
    for i in range(len(signed) - 1):  # every byte but the final newline
        broken = bytearray(signed)
        broken[i] ^= 0x01
        assert not verify_report(bytes(broken)).ok, f"byte {i}"
    other = load_or_create(tmp_path / "other")
    assert not verify_report(signed, other.public_key()).ok
