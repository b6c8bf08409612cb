"""The fast YAML path (values straight from the parser's events) gives what yaml.load gives,
and hands anything but plain data to the usual path."""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel

from core.yamlfile import _LOADER, ConfigError, _load_plain, _NotPlain, parse_model

PLAIN = [
    "a: 1\nb: -2.5e3\nc: true\nd: ~\ne: 'quoted 1'\nf: \"8\"\ng: 0x1F\nh: .inf\n",
    "when: 2026-11-30T08:00:00Z\nday: 2026-11-30\nplain: 08:00\n",
    "list:\n- 1\n- {x: [a, b, {}], y: []}\n- - nested\n  - 2\n",
    "text: |\n  two\n  lines\nfolded: >\n  one\n  line\nempty:\n",
    "1: int key\n2.5: float key\ntrue: bool key\nnull: null key\n",
    "yes: no\non: off\nname: 'O''Brien'\nunicode: 冷库 °C\n",
    "- top\n- level\n- list\n",
    "just a scalar\n",
    "dup: 1\ndup: 2\n",  # the last one wins, as yaml.load
    "",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_load_as_yaml_load_does(text: str) -> None:
    expected = yaml.load(text, Loader=_LOADER)
    got = _load_plain(text)
    assert got == expected
    assert repr(got) == repr(expected)  # same types too: 1 is no 1.0, "8" no 8


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1}\nother: *b\n",  # anchor and alias
        "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # merge key
        "tagged: !!str 12\n",
        "binary: !!binary aGVsbG8=\n",
        "custom: !thing 1\n",
        "a: 1\n---\nb: 2\n",  # two documents
    ],
)
def test_anything_but_plain_data_goes_the_usual_way(text: str) -> None:
    with pytest.raises(_NotPlain):
        _load_plain(text)


class _Doc(BaseModel):
    x: int
    y: int = 0


def test_a_file_with_anchors_still_loads_and_a_broken_one_names_its_line() -> None:
    assert parse_model(_Doc, "d: &d 3\nx: *d\n", "f.yaml") == _Doc(x=3)
    assert parse_model(_Doc, "x: 1\ny: 2\n", "f.yaml") == _Doc(x=1, y=2)
    with pytest.raises(ConfigError) as err:
        parse_model(_Doc, "x: 1\ny: [oops\n", "f.yaml")
    assert "YAML syntax" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_model(_Doc, "y: 2\nx: nope\n", "f.yaml")
    assert "f.yaml:2: x:" in str(err.value)


def test_an_unhashable_key_is_left_to_the_usual_path() -> None:
    with pytest.raises(TypeError):
        _load_plain("? [a, b]\n: 1\n")
