"""Which process of a ``torch.distributed`` (``torchrun``) job this is."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["destroy_distributed", "init_distributed_from_env", "is_main_process", "rank_and_world_size"]


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


def init_distributed_from_env(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes in the environment (NCCL on GPUs, gloo on CPUs).

    Args:
        device: this process's device; a CUDA device is made current before the group starts.

    Returns:
        True when this call started a group (the caller then ends it with :func:`destroy_distributed`); False
        outside ``torchrun`` or when a group already exists.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def destroy_distributed() -> None:
    """Wait for every rank, then end the process group (no rank leaves while another is in a collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
