"""Torch device names from the command line and configs: ``auto``, ``cpu``, ``cuda``, ``cuda:N``."""

from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "resolve_process_device"]


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` is ``cuda`` when a GPU is available, else ``cpu``; other names are checked by torch.

    Args:
        name: a device name or :class:`torch.device`.

    Returns:
        The device.

    Raises:
        ValueError: an unknown device name, or a device type this build or machine does not have (CUDA, MPS).
    """
    if isinstance(name, torch.device):
        device = name
    elif str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(str(name))
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"unknown device {str(name)!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} asked for, but CUDA is not available")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(name)!r} asked for, but this torch build or machine has no MPS")
    return device


def resolve_process_device(name: str | torch.device) -> torch.device:
    """:func:`resolve_device`, then one GPU per ``torchrun`` process: a bare ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
