"""The site file's `notifications:` section: clear errors for channels that would reach the
wrong people or nobody, and the escalation times by severity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from core.rules_spec import Severity
from core.site import SiteConfig


def site(notifications: dict[str, Any]) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "t",
            "name": "Test campus",
            "buildings": [{"id": "dorm-a", "name": "A", "kind": "dorm"}],
            "devices": [],
            "notifications": notifications,
        }
    )


def channel(**kw: Any) -> dict[str, Any]:
    return {"id": "c1", "url": "json://127.0.0.1/hook", "role": "maintenance", **kw}


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (channel(role="dorm_manager"), "a dorm_manager hears only about their buildings"),
        (channel(role="janitor"), "unknown role 'janitor'"),
        (channel(buildings=["dorm-z"]), "channel 'c1' names unknown building 'dorm-z'"),
        (channel(min_severity="loud"), "min_severity"),
    ],
)
def test_a_channel_that_would_reach_the_wrong_people_is_refused(
    bad: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        site({"channels": [bad]})


def test_channel_ids_are_unique_and_chains_name_known_roles() -> None:
    with pytest.raises(ValidationError, match="channel id 'c1' appears twice"):
        site({"channels": [channel(), channel()]})
    with pytest.raises(ValidationError, match="unknown role 'boss'"):
        site({"escalation": {"chain": ["boss"]}})
    with pytest.raises(ValidationError, match="unknown role 'warden'"):
        site({"escalation": {"chains": {"warden": ["admin"]}}})


def test_escalation_defaults_follow_the_severity_and_one_duration_applies_to_all() -> None:
    esc = site({}).notifications.escalation
    assert esc.after == {
        Severity.CRITICAL: timedelta(minutes=10),
        Severity.MAJOR: timedelta(minutes=15),
        Severity.WARNING: timedelta(minutes=30),
    }
    assert esc.max_reminders is None  # reminded until someone acknowledges
    one = site({"escalation": {"after": "20m"}}).notifications.escalation
    assert set(one.after.values()) == {timedelta(minutes=20)} and len(one.after) == 4
    custom = site(
        {"escalation": {"chain": ["admin"], "chains": {"dorm_manager": ["security", "admin"]}}}
    ).notifications.escalation
    assert custom.chain_for(("dorm_manager",)) == ("security", "admin")
    assert custom.chain_for(("food_safety", "canteen_manager")) == ("admin",)


def test_the_channel_url_is_kept_out_of_reprs() -> None:
    s = site({"channels": [channel(url="json://127.0.0.1/hook/${TOKEN}")]})
    assert "hook" not in repr(s.notifications.channels[0])
