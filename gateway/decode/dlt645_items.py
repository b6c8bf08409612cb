"""Decode stage for DL/T 645-2007: a read reply's data field (data identifier + BCD value,
33H offset already removed by the framing) -> the number its identifier describes. Pure;
the bus master asks and frames, core.serial.dlt645 checks the frame.

Scale, unit conversion and the valid range are the metric's, applied afterwards by
`gateway.decode.values` exactly as for a JSON payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.profiles import Dlt645Source
from core.serial import dlt645
from core.serial.errors import FrameError


@dataclass(frozen=True, slots=True)
class Item:
    """One data item of a read reply."""

    di: int
    value: float
    spec: dlt645.DataId


def read_item(data: bytes, di: int | None = None) -> Item:
    """The identifier and value in a read reply's data; FrameError when it answers another
    identifier than `di`, one we do not decode, or its length or BCD is wrong."""
    if len(data) < 4:
        raise FrameError("length", "read reply without a data identifier")
    got = int.from_bytes(data[:4], "little")
    if di is not None and got != di:
        raise FrameError("wrong_id", f"reply for {got:08X}, asked {di:08X}")
    spec = dlt645.DATA_IDS.get(got)
    if spec is None:
        raise FrameError("unknown_id", f"data identifier {got:08X} is not one we decode")
    payload = data[4:]
    if len(payload) != spec.length:
        raise FrameError(
            "length", f"{spec.name}: {len(payload)} data bytes, expected {spec.length}"
        )
    return Item(got, dlt645.bcd_value(payload, spec.decimals, spec.signed), spec)


def decode_read_reply(
    frame: dlt645.Frame, *, address: str | None = None, di: int | None = None
) -> Item:
    """The item of a meter's normal read reply: the frame checked as our reply (an error
    answer, another meter, a request raise FrameError), then its data item."""
    dlt645.expect_reply(frame, address=address, function=dlt645.READ)
    return read_item(frame.data, di)


def item_number(data: bytes, source: Dlt645Source) -> float:
    """The number a profile's DL/T 645 source reads from a reply's data."""
    return read_item(data, dlt645.parse_di(source.di)).value
