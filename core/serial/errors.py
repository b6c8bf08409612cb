"""Errors of the serial path, each with a short reason that labels the metrics."""

from __future__ import annotations


class FrameError(ValueError):
    """A frame that cannot be used. `reason` is a metric label (checksum, crc, truncated,
    noise, delimiter, length, wrong_address, error_reply, bad_bcd, unknown_id, function);
    the message says what exactly was wrong, for a field engineer reading a capture."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BusError(OSError):
    """The port itself failed (adapter unplugged, permission, closed pty)."""
