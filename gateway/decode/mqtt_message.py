"""Decode stage for MQTT: one raw message -> the device and profile its topic names -> wire
readings and events, or named rejections (oversize, unknown topic, unknown device). Pure
apart from the JSON decoder's memory of last values."""

from __future__ import annotations

from core.readings import Rejection, RejectReason
from core.wire import WireEvent, WireReading
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.sources.raw import RawMessage


class MessageDecoder:
    def __init__(self, matcher: TopicMatcher, decoder: JsonDecoder, max_payload_bytes: int) -> None:
        self.matcher = matcher
        self.decoder = decoder
        self.max_payload_bytes = max_payload_bytes

    def decode(self, msg: RawMessage) -> WireDecoded:
        out = WireDecoded()
        out.restamped = self.decode_into(msg, out.readings, out.events, out.rejections)
        return out

    def decode_into(
        self,
        msg: RawMessage,
        readings: list[WireReading],
        events: list[WireEvent],
        rejections: list[Rejection],
    ) -> int:
        """`decode` appending to the caller's lists; returns how many readings it added
        were restamped (JsonDecoder.decode_into)."""
        topic, payload = msg.topic, msg.payload
        if len(payload) > self.max_payload_bytes:
            # Checked before routing, so a huge message on any topic is named for its size.
            detail = f"payload of {len(payload)} bytes exceeds {self.max_payload_bytes}"
            rejections.append(
                Rejection(
                    reason=RejectReason.OVERSIZE, detail=detail, source=topic, raw=payload[:512]
                )
            )
            return 0
        route = self.matcher.route(topic)
        if route is None:
            pattern = self.matcher.pattern_for(topic)
            reason = RejectReason.UNKNOWN_DEVICE if pattern else RejectReason.UNKNOWN_TOPIC
            what = (
                f"no device of this site publishes on {topic!r} "
                f"(looks like profile {pattern.profile.profile})"
                if pattern
                else f"topic {topic!r} matches no device profile"
            )
            rejections.append(
                Rejection(reason=reason, detail=what, source=topic, raw=payload[:512])
            )
            return 0
        return self.decoder.decode_into(
            route.device_id,
            route.profile,
            topic,
            payload,
            msg.received_ms,
            msg.retain,
            route.address,
            readings,
            events,
            rejections,
        )
