"""Shared fixtures: the optional ``../shared`` folder (reference vectors, sample data) and CPU settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """Where the optional reference material lives (``$MONAI_GLAM_SHARED`` or ``../shared``)."""
    return Path(os.environ.get("MONAI_GLAM_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder; tests that use it skip cleanly on a fresh clone without it."""
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"reference folder {root} is absent")
    return root


@pytest.fixture(autouse=True)
def _cpu_threads():
    # The CI machine has two cores; keep tests deterministic and avoid oversubscription.
    torch.set_num_threads(2)
    yield
