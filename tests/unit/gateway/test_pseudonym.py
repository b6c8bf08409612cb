"""Card numbers become pseudonyms with a key that is the operator's or made once and kept, so
a card keeps its pseudonym across restarts and nobody can recompute it without the key."""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import SecretStr

from gateway.pseudonym import KEY_FILE, Pseudonymizer, load_key


def test_a_key_is_made_once_kept_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    first = load_key(None, data)
    assert len(first) == 32
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert load_key(None, data) == first  # a restart reads the same key
    assert Pseudonymizer(first)(8165538) == Pseudonymizer(load_key(None, data))(8165538)


def test_a_configured_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    assert load_key(SecretStr("campus-secret"), tmp_path) == b"campus-secret"
    assert not (tmp_path / KEY_FILE).exists()


def test_the_same_card_as_number_or_text_is_one_pseudonym_and_keys_differ() -> None:
    one, other = Pseudonymizer(b"k" * 32), Pseudonymizer(b"j" * 32)
    assert one(8165538) == one("8165538") != other(8165538)
    assert one(8165538).startswith("p-") and "8165538" not in one(8165538)
