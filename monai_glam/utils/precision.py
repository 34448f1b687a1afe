"""Numerical precision of inference: float32, or bfloat16 autocast where the hardware runs it natively.

``fp32`` computes everything in float32 (the default: results equal the published model's within float32
rounding). ``bf16`` runs GLAM's convolutions and matrix products under ``torch.autocast`` in bfloat16 and gives
every floating output back as float32; ``auto`` picks ``bf16`` where the device has native bfloat16 support (a
CUDA GPU that reports it, or a CPU with AVX-512 BF16 / AMX as oneDNN sees it) and ``fp32`` elsewhere. The measured
speed-ups and the largest changes against float32 are in ``docs/performance.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

__all__ = ["PRECISIONS", "autocast", "bf16_supported", "check_precision", "resolve_precision", "to_float32"]

#: The accepted values of ``--precision`` / ``precision``.
PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(precision: str) -> str:
    """``precision`` when it is one of :data:`PRECISIONS`.

    Raises:
        ValueError: naming the bad value.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def bf16_supported(device: torch.device | str) -> bool:
    """Whether ``device`` runs bfloat16 natively (so ``auto`` uses it there)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # builds without oneDNN
            return False
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``fp32`` or ``bf16``: ``precision`` with ``auto`` decided for ``device``.

    Raises:
        ValueError: an unknown precision.
    """
    check_precision(precision)
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[None]:
    """``torch.autocast`` in bfloat16 on ``device`` for ``bf16`` (``auto`` resolved for it); nothing for ``fp32``."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def to_float32(outputs: Any) -> Any:
    """Floating tensors of ``outputs`` (a tensor, a mapping or a tuple/list of them) as float32; others unchanged."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() and outputs.dtype != torch.float32 else outputs
    if isinstance(outputs, Mapping):
        return {key: to_float32(value) for key, value in outputs.items()}
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(to_float32(value) for value in outputs)
    return outputs
