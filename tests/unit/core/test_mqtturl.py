"""Broker URLs: what they carry, what they refuse, and that a password never prints."""

from __future__ import annotations

import pytest

from core.mqtturl import parse_broker_url, with_credentials


def test_plain_and_tls_urls() -> None:
    ep = parse_broker_url("mqtt://gw-a:s%40cret@broker.campus:1884")
    assert (ep.host, ep.port, ep.tls, ep.username, ep.password, ep.ca_file) == (
        "broker.campus",
        1884,
        False,
        "gw-a",
        "s@cret",
        None,
    )
    ep = parse_broker_url("mqtts://broker.campus?ca=/etc/facility/campus-ca.pem")
    assert (ep.port, ep.tls, ep.ca_file) == (8883, True, "/etc/facility/campus-ca.pem")
    assert "s@cret" not in repr(parse_broker_url("mqtt://gw-a:s%40cret@h"))
    assert str(parse_broker_url("mqtt://gw-a:s%40cret@h")) == "mqtt://gw-a@h:1883"


def test_credentials_keep_the_ca() -> None:
    ep = with_credentials(parse_broker_url("mqtts://h?ca=/ca.pem"), "gw-b", "pw")
    assert (ep.username, ep.password, ep.ca_file, ep.tls) == ("gw-b", "pw", "/ca.pem", True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "has no host"),
        ("mqtt://h?ca=/ca.pem", "'ca' needs an mqtts:// URL"),
        ("mqtts://h?cafile=/ca.pem", "option 'cafile' is unknown"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_broker_url(url)


@pytest.mark.parametrize(
    "url", ["http://gw-a:s3cret-pw@h:1883", "mqtt://gw-a:s3cret-pw@:1883", "ftp://:s3cret-pw@x"]
)
def test_a_bad_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_broker_url(url)
    assert "s3cret-pw" not in str(caught.value) and "***" in str(caught.value)
