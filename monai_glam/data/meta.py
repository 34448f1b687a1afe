"""Metadata keys carried by mammogram :class:`~monai.data.MetaTensor` objects, and parsers for their values.

The keys themselves are defined once, in :class:`monai_glam.utils.enums.MetaKeys`; the constants here are
aliases of those members' values.

Laterality and view come, in order of preference, from the datalist, from DICOM tags, or from file names in
the NYU convention (``0_L-CC.png``, ``3_R-MLO_benign.png``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from monai_glam.utils.enums import MetaKeys

__all__ = [
    "BITS_STORED",
    "FILENAME",
    "HORIZONTAL_FLIP",
    "LATERALITY",
    "SPACING",
    "VIEW",
    "normalize_laterality",
    "normalize_view",
    "parse_horizontal_flip",
    "parse_view_name",
]

# Aliases of the MetaKeys members (plain ``str`` values), kept so existing imports keep working.
# MONAI's own key for the source of an image (``LoadImage`` uses it too, and ``SaveImage`` reads it).
FILENAME: str = MetaKeys.FILENAME.value
LATERALITY: str = MetaKeys.LATERALITY.value
VIEW: str = MetaKeys.VIEW.value
#: ``(row, col)`` pixel spacing in mm.
SPACING: str = MetaKeys.SPACING.value
BITS_STORED: str = MetaKeys.BITS_STORED.value
#: the exam list's flag that the raw image is stored mirrored.
HORIZONTAL_FLIP: str = MetaKeys.HORIZONTAL_FLIP.value

# Mammographic view codes (DICOM ViewPosition defined terms), longest first so "XCCL" wins over "CC".
_VIEWS = ("XCCL", "XCCM", "MLO", "LMO", "SIO", "CC", "FB", "ML", "LM", "AT")
_VIEW_NAME_PATTERN = re.compile(r"(?:^|[^A-Z])([LR])[-_ ]?(" + "|".join(_VIEWS) + r")(?=$|[^A-Z])")


def normalize_laterality(value: object) -> str:
    """Map a laterality value (``"L"``, ``"left"``, ``"R"``, …) to ``"L"``, ``"R"`` or ``""`` when unknown."""
    text = str(value or "").strip().upper()
    if text in ("L", "LEFT"):
        return "L"
    if text in ("R", "RIGHT"):
        return "R"
    return ""


def normalize_view(value: object) -> str:
    """Upper-case a view code and strip a laterality prefix: ``"r-mlo"`` -> ``"MLO"``, unknown -> ``""``."""
    text = str(value or "").strip().upper()
    match = re.fullmatch(r"(?:[LR][-_ ]?)?([A-Z]+)", text)
    return match.group(1) if match else ""


def parse_view_name(name: str | os.PathLike[str]) -> tuple[str, str]:
    """Laterality and view from a file name in the NYU convention.

    Args:
        name: a path or file name such as ``0_L-CC.png`` or ``exam3_R_MLO.dcm``.

    Returns:
        ``(laterality, view)``, each ``""`` when the name does not say.
    """
    stem = Path(name).name.upper()
    match = _VIEW_NAME_PATTERN.search(stem)
    if match is None:
        return "", ""
    return match.group(1), match.group(2)


def parse_horizontal_flip(value: object) -> bool:
    """The exam list's ``horizontal_flip`` flag (``"YES"``/``"NO"``, a bool, 0/1, or missing) as a bool.

    Raises:
        ValueError: for any other value.
    """
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().upper()
    if text in ("YES", "Y", "TRUE", "1"):
        return True
    if text in ("NO", "N", "FALSE", "0", ""):
        return False
    raise ValueError(f"horizontal_flip must be YES/NO or a bool, got {value!r}")
