"""Residual blocks of the two GLAM backbones.

- :class:`PreActBasicBlock`: the pre-activation ("v2") basic block of the global module's ResNet-22.
- :class:`BasicBlock`: the post-activation basic block of the local module's ResNet-34 body, built from
  :class:`ConvBatchNorm` pairs that fold the batch norm into the convolution in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PADDING_MODES", "BasicBlock", "ConvBatchNorm", "PreActBasicBlock", "check_padding_mode"]


class ConvBatchNorm(nn.Module):
    """A bias-free convolution followed by batch norm, folded into one convolution in eval mode.

    In eval mode ``norm(conv(x)) == conv_{w·s}(x) + (β − μ·s)`` with ``s = γ / sqrt(σ² + ε)``; computing the
    folded weights on the fly removes a full pass over every output map (exact up to float rounding) while
    keeping ordinary, separately trainable convolution and batch-norm parameters.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: padding on every side.
        padding_mode: ``"zeros"`` (published) or ``"replicate"`` / ``"reflect"`` (see :data:`PADDING_MODES`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        self.padding_mode = check_padding_mode(padding_mode)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            bias=False,
            padding_mode=padding_mode,
        )
        self.norm = nn.BatchNorm2d(out_channels)
        self.stride = (int(stride), int(stride))
        # Zero padding goes to the convolution; the other modes pad the input first and convolve without padding.
        self.padding = (int(padding), int(padding)) if padding_mode == "zeros" else (0, 0)
        self.input_padding = [int(padding)] * 4 if padding_mode != "zeros" else [0, 0, 0, 0]

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H', W')``; ``weight`` replaces ``conv.weight`` (e.g. a folded one)."""
        if weight is None:
            weight = self.conv.weight
        if self.input_padding[0] > 0:  # only for a non-zero padding mode
            x = F.pad(x, self.input_padding, mode=self.padding_mode)
        running_mean = self.norm.running_mean
        running_var = self.norm.running_var
        if self.norm.training or running_mean is None or running_var is None:
            return self.norm(F.conv2d(x, weight, None, self.stride, self.padding))
        scale = torch.rsqrt(running_var + self.norm.eps)
        gamma = self.norm.weight
        if gamma is not None:
            scale = scale * gamma
        shift = -running_mean * scale
        beta = self.norm.bias
        if beta is not None:
            shift = shift + beta
        folded = weight * scale.reshape(-1, 1, 1, 1).to(weight.dtype)
        return F.conv2d(x, folded, shift.to(weight.dtype), self.stride, self.padding)


#: Padding modes of the global backbone's convolutions: ``zeros`` is the published model's.
PADDING_MODES: tuple[str, ...] = ("zeros", "replicate", "reflect")


def check_padding_mode(padding_mode: str) -> str:
    """``padding_mode`` if it is one of :data:`PADDING_MODES`, else a ``ValueError`` naming it."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {list(PADDING_MODES)}, got {padding_mode!r}.")
    return padding_mode


class PreActBasicBlock(nn.Module):
    """Pre-activation basic residual block (He et al., "Identity Mappings in Deep Residual Networks", 2016).

    ``a = relu(bn1(x))``, ``h = conv2(relu(bn2(conv1(a))))``, ``out = h + shortcut`` where the shortcut is
    ``x`` or, when ``projection`` is set, a bias-free 1×1 convolution of the *pre-activated* input ``a``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first 3×3 convolution and of the projection.
        projection: use a 1×1 convolution shortcut (required when the shape changes).
        padding_mode: padding of the 3×3 convolutions (``"zeros"``, published; ``"replicate"`` or ``"reflect"``).

    Raises:
        ValueError: when the identity shortcut cannot match the output shape, or for an unknown padding mode.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        projection: bool = False,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        check_padding_mode(padding_mode)
        if not projection and (stride != 1 or in_channels != out_channels):
            raise ValueError(
                f"an identity shortcut needs stride 1 and in_channels == out_channels, got stride={stride}, "
                f"in_channels={in_channels}, out_channels={out_channels}."
            )
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False, padding_mode=padding_mode
        )
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, stride=1, padding=1, bias=False, padding_mode=padding_mode
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False) if projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)``."""
        activated = F.relu(self.norm1(x), inplace=True)
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        h = self.conv1(activated)
        # Release the pre-activated input before the second convolution (in eval nothing else holds it): at the
        # paper size these are 22-90 MB maps, and the forward pass's peak memory is set here.
        del activated
        h = self.conv2(F.relu(self.norm2(h), inplace=True))
        # A convolution's output is not needed by its backward pass, so the sum can run in place.
        return h.add_(shortcut)


class BasicBlock(nn.Module):
    """Post-activation basic residual block (He et al., "Deep Residual Learning for Image Recognition", 2016).

    ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with a 1×1 convolution + batch norm
    shortcut when the shape changes. Convolution + norm pairs are :class:`ConvBatchNorm` (folded in eval).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the first convolution (and of the shortcut).
        padding_mode: padding of the 3×3 convolutions (``"zeros"``, published; ``"replicate"`` or ``"reflect"``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv1 = ConvBatchNorm(in_channels, out_channels, 3, stride=stride, padding=1, padding_mode=padding_mode)
        self.conv2 = ConvBatchNorm(out_channels, out_channels, 3, stride=1, padding=1, padding_mode=padding_mode)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ConvBatchNorm(in_channels, out_channels, 1, stride=stride) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)``."""
        h = self.conv2(F.relu(self.conv1(x), inplace=True))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        # In place: neither the convolution nor the batch norm that made ``h`` needs it for its backward pass,
        # and one map fewer at a time lowers the forward pass's peak memory (the local module's 512-channel maps).
        return F.relu(h.add_(shortcut), inplace=True)
