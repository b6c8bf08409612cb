"""The web UI's message catalogues: every string the pages and scripts use is in both
languages, every enumerated value the server sends has its word, and no page carries text,
script or style outside the catalogues and static files (the CSP allows no inline script)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.profiles import DEFAULT_PROFILES_DIR
from core.roles import Role
from core.rules_spec import Priority, Severity
from server.web.pages import CATALOGUES, LANGUAGES, STATIC, WEB, negotiate
from server.work_orders.model import Status

TEMPLATES = sorted((WEB / "templates").glob("*.html"))
SCRIPTS = sorted((STATIC / "js").rglob("*.js"))
CATALOGUE = {
    lang: json.loads((CATALOGUES / f"{lang}.json").read_text("utf-8")) for lang in LANGUAGES
}
KEYS = set(CATALOGUE[LANGUAGES[0]])
NAMESPACES = {k.split(".")[0] for k in KEYS}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _source(path: Path) -> str:
    return path.read_text("utf-8")


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    zh, en = CATALOGUE["zh-CN"], CATALOGUE["en"]
    assert set(zh) == set(en), {"only zh-CN": set(zh) - set(en), "only en": set(en) - set(zh)}
    for key in zh:
        assert zh[key].strip() and en[key].strip(), f"{key}: empty text"
        assert set(PLACEHOLDER.findall(zh[key])) == set(PLACEHOLDER.findall(en[key])), key


def _literal_keys(text: str) -> set[str]:
    """Quoted strings shaped like a catalogue key whose namespace the catalogue has."""
    found = set(re.findall(r"['\"]([a-z][a-z0-9_]*(?:\.[A-Za-z0-9_-]+)+)['\"]", text))
    return {k for k in found if k.split(".")[0] in NAMESPACES and not k.endswith((".js", ".json"))}


def test_every_key_the_pages_and_scripts_use_is_in_the_catalogue() -> None:
    used: dict[str, set[str]] = {}
    for path in [*TEMPLATES, *SCRIPTS]:
        text = _source(path)
        keys = _literal_keys(text)
        # t('lang.name.' ~ other) in the base template: every language's own name.
        keys |= {f"lang.name.{lang}" for lang in LANGUAGES} if "lang.name." in text else set()
        keys = {k for k in keys if not k.endswith(".")}
        used[path.name] = keys - KEYS
    missing = {name: sorted(keys) for name, keys in used.items() if keys}
    assert not missing, f"strings missing from the catalogues: {missing}"


def _dynamic_prefixes() -> set[str]:
    """Prefixes the scripts build keys from at run time: t(`status.${...}`), word('class', ..)."""
    prefixes: set[str] = set()
    for path in SCRIPTS:
        text = _source(path)
        prefixes |= set(re.findall(r"\bt\(`([a-z_.]+)\.\$\{", text))
        prefixes |= set(re.findall(r"\b(?:word|wordText|label)\('([a-z_.]+)',", text))
        prefixes |= set(re.findall(r"\blabel\(`([a-z_.]+)\.\$\{", text))
    return prefixes


def _class_files() -> list[dict[str, Any]]:
    """The device-class files as written (device_profiles/classes/*.yaml)."""
    return [
        yaml.safe_load(p.read_text("utf-8"))
        for p in sorted((DEFAULT_PROFILES_DIR / "classes").glob("*.yaml"))
    ]


def _profile_files() -> list[dict[str, Any]]:
    return [
        yaml.safe_load(p.read_text("utf-8")) for p in sorted(DEFAULT_PROFILES_DIR.glob("*.yaml"))
    ]


def _event_kinds(profile: dict[str, Any]) -> set[str]:
    kinds: set[str] = set()
    for e in profile.get("events") or []:
        if e.get("kind"):
            kinds.add(e["kind"])
        kinds |= {str(v) for v in ((e.get("from_field") or {}).get("map") or {}).values()}
    return kinds


def _enumerations() -> dict[str, set[str]]:
    profiles = _profile_files()
    classes = _class_files()
    categories = {"reported"}
    rules: list[dict[str, Any]] = [r for c in classes for r in c.get("rules") or []]
    for c in classes:
        if c.get("work_order_category"):
            categories.add(c["work_order_category"])
    for rule in rules:
        for order in (rule.get("work_order"), (rule.get("repeat") or {}).get("work_order")):
            if order and order.get("category"):
                categories.add(order["category"])
    for p in profiles:
        for rule in p.get("default_rules") or []:
            if (rule.get("work_order") or {}).get("category"):
                categories.add(rule["work_order"]["category"])
    statuses = {s.value for s in Status}
    return {
        "status": {"online", "alarm", "offline", "no_data_yet", "maintenance"},
        "severity": {s.value for s in Severity},
        "alert_state": {"active", "acknowledged", "resolved"},
        "wo_status": statuses,
        "wo.move": statuses,
        "receipt.status": statuses,
        "receipt.step": {"open", "in_progress", "resolved", "verified"},
        "wo_source": {"auto", "manual"},
        "role": {r.value for r in Role},
        # A class file that names its class in both languages (`label:`) needs no catalogue
        # word: the pages take the file's (GET /api/ui/site, class_labels).
        "class": {
            c["device_class"]
            for c in classes
            if not all((c.get("label") or {}).get(lang) for lang in LANGUAGES)
        },
        "metric": {m["key"] for p in profiles for m in p.get("metrics") or []},
        "event": set().union(*(_event_kinds(p) for p in profiles)),
        "category": categories,
        "commit.P1": {"name", "examples"},
        "commit.P2": {"name", "examples"},
        "commit.P3": {"name", "examples"},
        "rating": {"1", "2", "3", "4", "5"},
        "live": {"connecting", "live", "lost"},
        "value": {"true", "false"},
    }


def test_every_value_the_server_sends_has_its_word() -> None:
    enums = _enumerations()
    assert {f"commit.{p.value}" for p in Priority} <= set(enums)
    missing = {
        prefix: sorted(f"{prefix}.{v}" for v in values if f"{prefix}.{v}" not in KEYS)
        for prefix, values in enums.items()
    }
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"values without a word in the catalogue: {missing}"


def test_keys_built_at_run_time_come_from_known_enumerations_or_exist() -> None:
    """A key a script builds (t(`x.${value}`)) is covered above, or the catalogue has keys
    under its prefix for every value the script can pass (small fixed sets: lanes, tabs)."""
    enums = _enumerations()
    for prefix in _dynamic_prefixes():
        if prefix in enums or prefix == "commit":
            continue
        assert any(k.startswith(prefix + ".") for k in KEYS), f"no keys under {prefix}."


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("an inline <script>")
        for name in names:
            if name.startswith("on"):
                self.problems.append(f"an inline event handler {name}=")
            if name == "style":
                self.problems.append("an inline style=")
        if tag == "style":
            self.problems.append("a <style> block")

    def handle_data(self, data: str) -> None:
        if re.search(r"[^\W\d_]", data):  # words; a separator such as "·" is no text
            self.text.append(data.strip())


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_templates_hold_no_text_script_or_style_of_their_own(path: Path) -> None:
    source = _source(path)
    # Everything a person reads comes through t(...) or is data ({{ site_name }}).
    # Blocks that name a script, a class or a link are not text.
    source = re.sub(
        r"\{% block (script|body_class|home) %\}.*?\{% endblock %\}", "", source, flags=re.S
    )
    stripped = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", "", source, flags=re.S)
    parser = _Text()
    parser.feed(stripped)
    assert parser.problems == [], parser.problems
    assert parser.text == [], f"text outside the catalogue in {path.name}: {parser.text}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_build_pages_without_html_strings_or_inline_styles(path: Path) -> None:
    source = _source(path)
    for pattern in (
        r"\.innerHTML\s*=",
        r"\.outerHTML\s*=",
        r"insertAdjacentHTML",
        r"\.style\.",
        r"\beval\(",
    ):
        assert not re.search(pattern, source), f"{path.name}: {pattern}"


@pytest.mark.parametrize(
    ("cookie", "header", "site", "expected"),
    [
        (None, "", "zh-CN", "zh-CN"),
        (None, "en-GB,en;q=0.9", "zh-CN", "en"),
        (None, "fr-FR,zh-TW;q=0.8,en;q=0.5", "zh-CN", "zh-CN"),
        (None, "de, en;q=0.1", "zh-CN", "en"),
        ("en", "zh-CN", "zh-CN", "en"),
        ("xx", "zh-CN,zh", "en", "zh-CN"),
        (None, "fr", "en", "en"),
    ],
)
def test_page_language_is_the_choice_then_the_browser_then_the_site(
    cookie: str | None, header: str, site: str, expected: str
) -> None:
    assert negotiate(cookie, header, site) == expected
