"""Tiny GLAM configurations shared by the network tests."""

from __future__ import annotations

from typing import Any

#: A narrow GLAM that runs in milliseconds on 256×160 inputs with 64×64 patches.
SMALL: dict[str, Any] = {
    "patch_size": 64,
    "global_channels": (8, 8, 16, 16, 32),
    "global_blocks": (1, 1, 1, 1, 1),
    "local_channels": (8, 8, 16, 16),
    "local_blocks": (1, 1, 1, 1),
}


def small(**overrides: Any) -> dict[str, Any]:
    """``SMALL`` with some arguments replaced."""
    return {**SMALL, **overrides}
