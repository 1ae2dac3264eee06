"""RecordIO framing (docs/reference/formats.md#framing): magic, length word, payload, zero padding to 4 bytes.

Runs of records that all have the same size are found with one numpy comparison instead of a Python loop.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import numpy as np

from containers.toolkit.codecs._wire import ByteData
from containers.toolkit.errors import UserError

logger = logging.getLogger(__name__)

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
HEADER = struct.Struct("<II")
_LENGTH_MASK = (1 << 29) - 1


def padding(length: int) -> int:
    return ((length + 3) >> 2 << 2) - length


def frame(payload: bytes) -> bytes:
    """One RecordIO record around ``payload`` (cflag 0)."""
    if len(payload) > _LENGTH_MASK:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds the RecordIO limit of {_LENGTH_MASK}")
    return HEADER.pack(MAGIC, len(payload)) + payload + b"\0" * padding(len(payload))


@dataclass
class Frames:
    """Where the payloads of a buffer lie.

    ``uniform`` leading records all have size ``stride`` (header and padding included) and start at 0; the
    rest are listed in ``starts``/``lengths``. ``consumed`` is how many bytes of the buffer were used.
    """

    uniform: int
    stride: int
    payload_length: int
    starts: list[int]
    lengths: list[int]
    consumed: int

    @property
    def count(self) -> int:
        return self.uniform + len(self.starts)


def _check_header(magic: int, word: int, offset: int, source: str) -> int:
    if magic != MAGIC:
        raise UserError(
            f"Invalid RecordIO magic 0x{magic:08x} at offset {offset} in {source} (expected 0x{MAGIC:08x})."
        )
    cflag = word >> 29
    if cflag:
        raise UserError(
            f"RecordIO record at offset {offset} in {source} has cflag={cflag} (a split multi-part record); "
            "only whole records (cflag=0) are supported."
        )
    return word & _LENGTH_MASK


def _uniform_prefix(buf: ByteData, source: str, base: int) -> tuple[int, int, int]:
    """(count, stride, payload length) of the leading records whose header equals the first one."""
    if len(buf) < HEADER.size:
        return 0, 0, 0
    magic, word = HEADER.unpack_from(buf, 0)
    length = _check_header(magic, word, base, source)
    stride = HEADER.size + length + padding(length)
    count = len(buf) // stride
    if count < 2:
        return 0, stride, length
    rows = np.frombuffer(buf, dtype=np.uint8, count=count * stride).reshape(count, stride)
    same = (rows[:, : HEADER.size] == rows[0, : HEADER.size]).all(axis=1)
    if not same.all():
        count = int(np.argmin(same))
    return count, stride, length


def split_frames(buf: ByteData, *, final: bool, source: str, base: int = 0) -> Frames:
    """Locate the records in ``buf`` (``base`` is its offset in the whole stream, for messages).

    With ``final=False`` an incomplete record at the end is left unconsumed for the next call; with
    ``final=True`` it is a truncation error. A missing last padding at the very end is accepted.
    """
    uniform, stride, length = _uniform_prefix(buf, source, base)
    pos = uniform * stride
    starts: list[int] = []
    lengths: list[int] = []
    end = len(buf)
    unpack = HEADER.unpack_from
    while pos < end:
        if end - pos < 8:
            if final:
                raise UserError(f"Truncated RecordIO header at offset {base + pos} in {source}.")
            break
        magic, size = unpack(buf, pos)
        if magic != MAGIC or size >> 29:
            _check_header(magic, size, base + pos, source)
        stop = pos + 8 + size
        following = stop + (-size & 3)
        if following > end and (stop > end or not final):
            if final:
                raise UserError(
                    f"Truncated RecordIO record at offset {base + pos} in {source}: "
                    f"expected {size} payload bytes, found {end - pos - 8}."
                )
            break
        starts.append(pos + 8)
        lengths.append(size)
        pos = following if following < end else end
    return Frames(uniform, stride, length, starts, lengths, pos)
