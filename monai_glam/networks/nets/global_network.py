"""GLAM's global module: a low-capacity pre-activation ResNet over the whole mammogram with three saliency heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from monai_glam.networks.blocks.pooling import TopTPooling
from monai_glam.networks.blocks.resnet_blocks import PreActBasicBlock, check_padding_mode
from monai_glam.utils.enums import GLAMKeys

__all__ = ["GlobalNetwork", "PreActResNet"]


def _check_positive_ints(name: str, values: Sequence[int], length: int | None = None) -> tuple[int, ...]:
    values = tuple(int(v) for v in values)
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {values!r}.")
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(values)}: {values!r}.")
    return values


class PreActResNet(nn.Module):
    """Pre-activation ResNet backbone without biases ("ResNet-22" with the defaults).

    A 7×7 stride-2 convolution (no norm or activation after it), a 3×3 stride-2 max-pool **without
    padding**, then stages of :class:`PreActBasicBlock`. The first block of every stage (the first stage
    too) has a 1×1 projection shortcut on its pre-activated input. A final batch norm + ReLU follows the
    last stage.

    Args:
        in_channels: image channels.
        channels: output channels of each stage.
        blocks: residual blocks in each stage.
        strides: stride of the first block of each stage.
        stem_kernel_size: kernel size of the first convolution.
        padding_mode: padding of the stem and the 3×3 convolutions: ``"zeros"`` (published) or ``"replicate"`` /
            ``"reflect"``, which do not draw an artificial edge around the image (see :class:`GlobalNetwork`).

    Returns from ``forward``: the raw residual-stream outputs of every stage, the last one after the final
    batch norm + ReLU, as a list of ``(N, C_i, H_i, W_i)`` tensors.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2, 2),
        strides: Sequence[int] = (1, 2, 2, 2, 2),
        stem_kernel_size: int = 7,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        check_padding_mode(padding_mode)
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels!r}.")
        channels = _check_positive_ints("channels", channels)
        blocks = _check_positive_ints("blocks", blocks, len(channels))
        strides = _check_positive_ints("strides", strides, len(channels))
        if stem_kernel_size < 1 or stem_kernel_size % 2 == 0:
            raise ValueError(f"stem_kernel_size must be a positive odd integer, got {stem_kernel_size!r}.")
        self.stem = nn.Conv2d(
            in_channels,
            channels[0],
            stem_kernel_size,
            stride=2,
            padding=stem_kernel_size // 2,
            bias=False,
            padding_mode=padding_mode,
        )
        self.stem_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0)
        stages = []
        previous = channels[0]
        for width, count, stride in zip(channels, blocks, strides, strict=True):
            layers = [PreActBasicBlock(previous, width, stride, projection=True, padding_mode=padding_mode)]
            layers += [PreActBasicBlock(width, width, padding_mode=padding_mode) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.final_norm = nn.BatchNorm2d(previous)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(N, C_in, H, W)`` -> one feature map per stage."""
        h = self.stem_pool(self.stem(x))
        features: list[torch.Tensor] = []
        for stage in self.stages:
            h = stage(h)
            features.append(h)
        features[-1] = F.relu(self.final_norm(features[-1]))
        return features


class GlobalNetwork(nn.Module):
    """GLAM global module: backbone, three saliency heads, global saliency map and image prediction.

    From the last three backbone outputs (strides 16, 32, 64 with the defaults) three bias-free 1×1
    convolutions predict per-class activations. The coarser two are nearest-upsampled to the finest map's
    size *before* the sigmoid, giving ``A1, A2, A3``. The global saliency map is
    ``S_g = w1·A1 + w2·A2 + w3·A3`` and the image prediction ``ŷ_g`` is the mean of the three maps'
    top-t% pooled scores.

    Reference: Liu et al., "Weakly-supervised High-resolution Segmentation of Mammography Images for Breast
    Cancer Diagnosis", MIDL 2021, arXiv:2106.07049.

    Args:
        in_channels: image channels.
        num_classes: output classes (GLAM: 0 = benign, 1 = malignant), independent sigmoids.
        channels: backbone stage widths.
        blocks: backbone blocks per stage.
        strides: backbone stage strides.
        top_t: fraction of map pixels averaged by the top-t% pooling.
        scale_weights: weights ``(w1, w2, w3)`` of ``A1, A2, A3`` in ``S_g``.
        padding_mode: padding of the backbone's convolutions. ``"zeros"`` is the published model. The standardized
            mammogram's background is negative (about -1), so zero padding draws a bright frame around the image;
            trained from scratch on small windows, the maps learn to fire on that frame (the top-right corner
            and the chest-wall edge) rather than on the lesions. ``"replicate"`` continues the image instead.

    ``forward(x)`` maps ``(N, C_in, H, W)`` to a dict with :class:`GLAMKeys` ``SALIENCY_A1``..``A3`` and
    ``SALIENCY_GLOBAL`` of shape ``(N, num_classes, h, w)`` (``h, w`` = A1's size, ``H/16, W/16`` by default)
    and ``PROB_GLOBAL`` of shape ``(N, num_classes)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2, 2),
        strides: Sequence[int] = (1, 2, 2, 2, 2),
        top_t: float = 0.03,
        scale_weights: Sequence[float] = (0.2, 0.6, 0.2),
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes!r}.")
        if len(tuple(channels)) < 3:
            raise ValueError(f"the global backbone needs at least 3 stages for its 3 heads, got {channels!r}.")
        weights = tuple(float(w) for w in scale_weights)
        if len(weights) != 3:
            raise ValueError(f"scale_weights must have 3 entries (A1, A2, A3), got {scale_weights!r}.")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.backbone = PreActResNet(in_channels, channels, blocks, strides, padding_mode=padding_mode)
        widths = self.backbone.out_channels[-3:]
        self.heads = nn.ModuleList([nn.Conv2d(width, num_classes, 1, bias=False) for width in widths])
        self.pool = TopTPooling(top_t)
        self.scale_weights = weights

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        features = self.backbone(x)
        fine, middle, coarse = features[-3], features[-2], features[-1]
        size = (fine.shape[-2], fine.shape[-1])
        a1 = torch.sigmoid(self.heads[0](fine))
        # Upsampling happens on the logits, before the sigmoid, as in the published model.
        a2 = torch.sigmoid(F.interpolate(self.heads[1](middle), size=size, mode="nearest"))
        a3 = torch.sigmoid(F.interpolate(self.heads[2](coarse), size=size, mode="nearest"))
        w1, w2, w3 = self.scale_weights
        saliency = w3 * a3 + w2 * a2 + w1 * a1
        prob = (self.pool(a1) + self.pool(a2) + self.pool(a3)) / 3.0
        return {
            GLAMKeys.SALIENCY_A1.value: a1,
            GLAMKeys.SALIENCY_A2.value: a2,
            GLAMKeys.SALIENCY_A3.value: a3,
            GLAMKeys.SALIENCY_GLOBAL.value: saliency,
            GLAMKeys.PROB_GLOBAL.value: prob,
        }
