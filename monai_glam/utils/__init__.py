"""Shared utilities."""

from __future__ import annotations

from monai_glam.utils.enums import GLAMKeys

__all__ = ["GLAMKeys"]
