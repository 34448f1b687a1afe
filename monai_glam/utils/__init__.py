"""Shared utilities."""

from __future__ import annotations

from monai_glam.utils.distributed import is_main_process, rank_and_world_size
from monai_glam.utils.enums import GLAMKeys

__all__ = ["GLAMKeys", "is_main_process", "rank_and_world_size"]
