"""Card numbers become pseudonyms with the site's key, given to every gateway of the site
(or, for a gateway alone on its machine, made once and kept), so a card keeps one pseudonym
across gateways and restarts and nobody can recompute it without the key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.pseudonym import (
    KEY_FILE,
    Pseudonymizer,
    PseudonymKeyError,
    load_key,
    missing_key_reason,
)

SITE_KEY = "site-key-of-the-campus-0123456789abcdef"


def test_a_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    first = load_key(None, data)
    assert len(first) == 32
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert load_key(None, data) == first  # a restart reads the same key
    assert Pseudonymizer(first)(8165538) == Pseudonymizer(load_key(None, data))(8165538)


def test_a_configured_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    assert load_key(SecretStr(SITE_KEY), tmp_path) == SITE_KEY.encode()
    assert not (tmp_path / KEY_FILE).exists()


def test_a_key_file_gives_the_same_key_as_the_variable(tmp_path: Path) -> None:
    secret = tmp_path / "pseudonym-key"
    secret.write_text(SITE_KEY + "\n")  # as `echo` or an editor leaves it
    assert load_key(None, tmp_path, key_file=secret) == load_key(SecretStr(SITE_KEY), tmp_path)
    assert not (tmp_path / KEY_FILE).exists()


def test_a_gateway_that_may_not_make_its_own_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(PseudonymKeyError, match="FACILITY_GATEWAY_PSEUDONYM_KEY") as err:
        load_key(None, tmp_path, required_because="the site file names 2 gateways (a, b)")
    assert "the site file names 2 gateways" in str(err.value)
    assert not (tmp_path / KEY_FILE).exists()
    # With the site's key it starts.
    assert load_key(SecretStr(SITE_KEY), tmp_path, required_because="two gateways")


def test_bad_keys_are_refused_without_showing_them(tmp_path: Path) -> None:
    short = "campus-secret"
    with pytest.raises(PseudonymKeyError, match="shorter than 32") as err:
        load_key(SecretStr(short), tmp_path)
    assert short not in str(err.value)
    with pytest.raises(PseudonymKeyError, match="not both"):
        load_key(SecretStr(SITE_KEY), tmp_path, key_file=tmp_path / "k")
    with pytest.raises(PseudonymKeyError, match=r"cannot read .*missing-key"):
        load_key(None, tmp_path, key_file=tmp_path / "missing-key")


def test_only_a_gateway_alone_on_its_machine_may_make_its_own_key() -> None:
    assert missing_key_reason(["127.0.0.1", "localhost"], ["gw-1", "gw-1"]) is None
    assert missing_key_reason(["::1"], ["gw-1"]) is None
    assert "2 gateways (gw-a, gw-b)" in (missing_key_reason(["127.0.0.1"], ["gw-b", "gw-a"]) or "")
    assert "broker.school.lan is on another machine" in (
        missing_key_reason(["127.0.0.1", "broker.school.lan"], ["gw-1"]) or ""
    )
    assert missing_key_reason(["10.0.0.5"], ["gw-1"]) is not None
    assert missing_key_reason(["mosquitto"], ["gw-1"]) is not None  # a container's name


def test_the_same_card_as_number_or_text_is_one_pseudonym_and_keys_differ() -> None:
    one, other = Pseudonymizer(b"k" * 32), Pseudonymizer(b"j" * 32)
    assert one(8165538) == one("8165538") != other(8165538)
    assert one(8165538).startswith("p-") and "8165538" not in one(8165538)
    assert "k" * 32 not in repr(one)
