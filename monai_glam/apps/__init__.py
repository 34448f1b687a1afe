"""Applications built on monai_glam: the ``monai-glam`` command line and its sub-commands."""

from __future__ import annotations

__all__: list[str] = []
