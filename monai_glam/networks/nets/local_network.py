"""GLAM's local module: a high-capacity ResNet-34 body at output stride 4 that maps patches to saliency."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from monai_glam.networks.blocks.resnet_blocks import BasicBlock, ConvBatchNorm
from monai_glam.networks.nets.global_network import _check_positive_ints

__all__ = ["LocalNetwork"]


class LocalNetwork(nn.Module):
    """ResNet-34 body with every stage at stride 1, and a 1×1 saliency head.

    A 7×7 stride-2 convolution + batch norm + ReLU and a 3×3 stride-2 max-pool (padding 1) reduce the patch
    by 4; the residual stages keep that resolution, so a ``512×512`` patch gives ``128×128`` maps. The head
    is a bias-free 1×1 convolution followed by a sigmoid.

    The published model feeds the 1-channel patch repeated ``in_channels`` times. Given a 1-channel input
    this module instead convolves it with the first layer's weights summed over input channels, which is
    mathematically identical and 3× cheaper for that layer; gradients still reach the full weight.

    Reference: Liu et al., "Weakly-supervised High-resolution Segmentation of Mammography Images for Breast
    Cancer Diagnosis", MIDL 2021, arXiv:2106.07049; He et al., "Deep Residual Learning", CVPR 2016.

    Args:
        in_channels: input channels of the first convolution (3 in the published model).
        num_classes: saliency channels.
        channels: stage widths.
        blocks: blocks per stage.
        strides: stride of the first block of each stage (all 1 in GLAM).
        gradient_checkpointing: in training mode, keep only each residual block's input and recompute the
            block during the backward pass. Cuts the local module's activation memory several-fold for about
            a third more compute; batch-norm running statistics are updated once per step, as without it.
        padding_mode: padding of the stem and the 3×3 convolutions: ``"zeros"`` (published) or ``"replicate"`` /
            ``"reflect"``. A standardized patch has a non-zero background, so zero padding gives every patch an
            artificial frame the maps can fire on (as the global module's did; see :class:`GlobalNetwork`).

    ``forward(x)`` maps ``(M, 1 or in_channels, p, p)`` patches to ``(M, num_classes, p/4, p/4)`` maps in
    ``[0, 1]``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        channels: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (3, 4, 6, 3),
        strides: Sequence[int] = (1, 1, 1, 1),
        gradient_checkpointing: bool = False,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels!r}.")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes!r}.")
        channels = _check_positive_ints("channels", channels)
        blocks = _check_positive_ints("blocks", blocks, len(channels))
        strides = _check_positive_ints("strides", strides, len(channels))
        self.in_channels = int(in_channels)
        self.stem = ConvBatchNorm(in_channels, channels[0], 7, stride=2, padding=3, padding_mode=padding_mode)
        self.stem_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        previous = channels[0]
        for width, count, stride in zip(channels, blocks, strides, strict=True):
            layers = [BasicBlock(previous, width, stride=stride, padding_mode=padding_mode)]
            layers += [BasicBlock(width, width, padding_mode=padding_mode) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Conv2d(previous, num_classes, 1, bias=False)
        self.gradient_checkpointing = bool(gradient_checkpointing)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        weight = self.stem.conv.weight
        if x.shape[1] == 1 and self.in_channels != 1:
            # conv(repeat(x, C)) == conv_{sum_c W}(x): fold instead of materialising the repeated patch.
            weight = weight.sum(dim=1, keepdim=True)
        elif x.shape[1] != self.in_channels:
            raise ValueError(f"expected 1 or {self.in_channels} input channels, got input of shape {list(x.shape)}.")
        h = self.stem_pool(F.relu(self.stem(x, weight), inplace=True))
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            h = self._checkpointed_stages(h)
        else:
            for stage in self.stages:
                h = stage(h)
        return torch.sigmoid(self.head(h))

    @torch.jit.unused
    def _checkpointed_stages(self, h):  # unannotated: TorchScript cannot resolve hints of unused methods
        for stage in self.stages:
            for block in stage:
                h = checkpoint(block, h, use_reentrant=False, context_fn=_recompute_without_stat_updates(block))
        return h


@contextlib.contextmanager
def _batch_norm_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Leave batch-norm running statistics untouched while ``module`` is recomputed for the backward pass."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for norm in norms:
        norm.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for norm, (momentum, tracked) in zip(norms, saved, strict=True):
            norm.momentum = momentum
            if tracked is not None:
                norm.num_batches_tracked.copy_(tracked)


def _recompute_without_stat_updates(module: nn.Module) -> Callable[[], tuple[contextlib.AbstractContextManager, ...]]:
    return lambda: (contextlib.nullcontext(), _batch_norm_stats_frozen(module))
