"""Byte-level edits of DICOM test files, for values pydicom refuses to write (malformed decimal strings)."""

from __future__ import annotations

import struct

__all__ = ["set_decimal_string"]


def set_decimal_string(raw: bytes, group: int, element: int, value: str) -> bytes:
    """Replace the value of a DS element in an explicit-VR little-endian DICOM file's bytes."""
    head = struct.pack("<HH", group, element) + b"DS"
    start = raw.index(head)
    (length,) = struct.unpack("<H", raw[start + 6 : start + 8])
    data = value.encode("ascii")
    data += b" " * (len(data) % 2)
    return raw[: start + 6] + struct.pack("<H", len(data)) + data + raw[start + 8 + length :]
