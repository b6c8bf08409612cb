"""Decode stage for MQTT: one raw message -> the device and profile its topic names -> wire
readings and events, or named rejections (oversize, unknown topic, unknown device). Pure
apart from the JSON decoder's memory of last values."""

from __future__ import annotations

from core.readings import Rejection, RejectReason
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.sources.raw import RawMessage


class MessageDecoder:
    def __init__(self, matcher: TopicMatcher, decoder: JsonDecoder, max_payload_bytes: int) -> None:
        self.matcher = matcher
        self.decoder = decoder
        self.max_payload_bytes = max_payload_bytes

    def decode(self, msg: RawMessage) -> WireDecoded:
        if len(msg.payload) > self.max_payload_bytes:
            # Checked before routing, so a huge message on any topic is named for its size.
            detail = f"payload of {len(msg.payload)} bytes exceeds {self.max_payload_bytes}"
            return refused(
                Rejection(
                    reason=RejectReason.OVERSIZE,
                    detail=detail,
                    source=msg.topic,
                    raw=msg.payload[:512],
                )
            )
        route = self.matcher.route(msg.topic)
        if route is None:
            pattern = self.matcher.pattern_for(msg.topic)
            reason = RejectReason.UNKNOWN_DEVICE if pattern else RejectReason.UNKNOWN_TOPIC
            what = (
                f"no device of this site publishes on {msg.topic!r} "
                f"(looks like profile {pattern.profile.profile})"
                if pattern
                else f"topic {msg.topic!r} matches no device profile"
            )
            return refused(
                Rejection(reason=reason, detail=what, source=msg.topic, raw=msg.payload[:512])
            )
        return self.decoder.decode_wire(
            device_id=route.device.id,
            profile=route.profile,
            topic=msg.topic,
            payload=msg.payload,
            received_ms=msg.received_ms,
            retained=msg.retain,
            address=route.device.transport_address,
        )


def refused(rejection: Rejection) -> WireDecoded:
    """A message that yields nothing but its rejection."""
    return WireDecoded(readings=[], events=[], rejections=[rejection], restamped=0)
