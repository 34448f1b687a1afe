"""Which process of a ``torch.distributed`` (``torchrun``) job this is."""

from __future__ import annotations

import os

import torch.distributed as dist

__all__ = ["is_main_process", "rank_and_world_size"]


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True on rank 0 (the process that logs and writes files) and outside distributed jobs.

    Before the process group exists (or after it is destroyed) ``torchrun``'s ``RANK`` variable decides.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0
