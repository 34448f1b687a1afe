"""GLAM: Global-Local Activation Maps for weakly-supervised high-resolution mammogram segmentation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from monai_glam.networks.blocks.patch_ops import FUSION_RULES, crop_patches, fuse_patch_maps
from monai_glam.networks.blocks.pooling import TopTPooling
from monai_glam.networks.blocks.region_proposal import RegionProposal
from monai_glam.networks.nets.global_network import GlobalNetwork
from monai_glam.networks.nets.local_network import LocalNetwork
from monai_glam.utils.enums import GLAMKeys

__all__ = ["GLAM", "LOCAL_POOLINGS", "GLAMSingleOutput"]

#: How ``ŷ_l`` pools the ``K`` patch maps of an image (``GLAM(local_pooling=...)``); the two agree for ``K = 1``.
LOCAL_POOLINGS: tuple[str, ...] = ("all_patches", "max_patch")


class GLAM(nn.Module):
    """GLAM: a global module over the whole image, patch selection on its saliency, a local module on the
    selected patches, and a full-resolution fused saliency map.

    1. :class:`GlobalNetwork` gives per-scale maps ``A1..A3``, the global map ``S_g`` and ``ŷ_g``.
    2. :class:`RegionProposal` picks ``num_patches`` windows of ``patch_size`` on the (detached) ``S_g``.
    3. :class:`LocalNetwork` maps each 1-channel patch to ``S_l`` at a quarter of the patch resolution;
       ``ŷ_l`` is, per class, the top-k% mean over the pixels of all patches of an image (``"all_patches"``) or
       the largest of the patches' top-k% means (``"max_patch"``).
    4. The fused map is ``S = (paste(S_l) + nearest_up(S_g)) / 2`` at input resolution (``S_g / 2``
       outside the patches).

    Unlike the published inference code, the local branch and the fused map stay differentiable in training
    mode (only the patch choice is not), so every stage of GLAM can be trained.

    Reference: Liu, Shen, Wu, Chłędowski, Fernandez-Granda, Geras, "Weakly-supervised High-resolution
    Segmentation of Mammography Images for Breast Cancer Diagnosis", MIDL 2021, arXiv:2106.07049.

    Args:
        in_channels: image channels (1 for mammograms).
        num_classes: classes (0 = benign, 1 = malignant), independent sigmoids.
        global_channels: widths of the global backbone stages.
        global_blocks: blocks per global stage.
        global_strides: strides of the global stages.
        local_channels: widths of the local ResNet stages.
        local_blocks: blocks per local stage.
        local_in_channels: input channels of the local network's first convolution (the published model
            repeats the patch 3×; keep 3 to load its weights).
        patch_size: patch size in input pixels (int or ``(height, width)``).
        num_patches: patches per image, ``K``.
        global_top_t: top-t% pooling fraction of the global maps.
        local_top_k: top-k% pooling fraction of the patch maps.
        scale_weights: weights of ``A1, A2, A3`` in ``S_g``.
        saliency_in_training: compute the fused full-resolution map in training mode too (it is always
            computed in eval mode). Turn off to save memory when no loss uses it.
        gradient_checkpointing: recompute the local module's residual blocks in the backward pass instead of
            storing their activations (training memory for compute; see :class:`LocalNetwork`).
        global_padding_mode: padding of the global backbone's convolutions: ``"zeros"`` (published, needed for the
            published weights to give the published outputs) or ``"replicate"`` (the ``small`` and ``tiny``
            presets: no artificial frame for the maps to fire on; see :class:`GlobalNetwork`).
        patch_selection: ``"summed"`` (published: windows picked on the sum of the normalised class maps) or
            ``"per_class"`` (pick ``k`` on class ``k mod C``'s map; see :class:`RegionProposal`).
        fusion: how the ``saliency`` output combines the maps: ``"mean"`` (published: ``(paste(S_l) + up(S_g)) /
            2``) or ``"local"`` (``S_l`` inside the patches, ``up(S_g)`` outside; see :func:`fuse_patch_maps`). It
            has no parameters, so a trained model can be switched either way.
        local_pooling: how ``ŷ_l`` pools the ``K`` patch maps, per class: ``"all_patches"`` (the top-k% mean over
            the pixels of all ``K`` patches together) or ``"max_patch"`` (the top-k% mean of each patch, then the
            largest: an image is positive when one of its patches is). The published model has ``K = 1``, where
            both are its pooling; every preset keeps ``"all_patches"``. With ``K > 1`` they differ in how much
            active area a positive score asks for (the top-k% of ``K`` patches or of one); docs/localization.md
            ("The local objective: pooling the patch maps") measures both.
        local_padding_mode: padding of the local module's convolutions: ``"zeros"`` (published) or ``"replicate"``
            / ``"reflect"`` (see :class:`LocalNetwork`).
        patch_jitter: in training mode only, move each selected patch by a random offset of up to this fraction
            of the patch size in each direction (uniform integers, kept inside the image; 0 = off, the published
            behaviour). The patch lands where the global map peaks, and that peak can sit at a fixed offset from the
            lesion; without jitter the local module can then learn the lesion's position *in the patch* instead of
            its appearance. Eval mode always uses the selected patches.

    ``forward(x)`` takes ``(N, in_channels, H, W)`` and returns a dict keyed by :class:`GLAMKeys`:
    ``prob_global``/``prob_local`` ``(N, C)``; ``saliency_global`` and ``saliency_a1..a3``
    ``(N, C, h, w)``; ``patch_boxes`` ``(N, K, 4)`` int64; ``patch_saliency`` ``(N, K, C, p/4, p/4)``;
    ``saliency`` ``(N, C, H, W)``.

    Example::

        >>> net = GLAM(patch_size=64, global_channels=(8, 8, 16, 16, 32), local_channels=(8, 8, 16, 16)).eval()
        >>> out = net(torch.randn(1, 1, 256, 160))
        >>> out["saliency"].shape, out["prob_global"].shape
        (torch.Size([1, 2, 256, 160]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        global_channels: Sequence[int] = (16, 32, 64, 128, 256),
        global_blocks: Sequence[int] = (2, 2, 2, 2, 2),
        global_strides: Sequence[int] = (1, 2, 2, 2, 2),
        local_channels: Sequence[int] = (64, 128, 256, 512),
        local_blocks: Sequence[int] = (3, 4, 6, 3),
        local_in_channels: int = 3,
        patch_size: int | Sequence[int] = 512,
        num_patches: int = 1,
        global_top_t: float = 0.03,
        local_top_k: float = 0.3,
        scale_weights: Sequence[float] = (0.2, 0.6, 0.2),
        saliency_in_training: bool = True,
        gradient_checkpointing: bool = False,
        global_padding_mode: str = "zeros",
        patch_selection: str = "summed",
        fusion: str = "mean",
        local_pooling: str = "all_patches",
        patch_jitter: float = 0.0,
        local_padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if not 0.0 <= float(patch_jitter) <= 0.5:
            raise ValueError(f"patch_jitter must be a fraction of the patch size in [0, 0.5], got {patch_jitter!r}.")
        if fusion not in FUSION_RULES:
            raise ValueError(f"fusion must be one of {list(FUSION_RULES)}, got {fusion!r}.")
        if local_pooling not in LOCAL_POOLINGS:
            raise ValueError(f"local_pooling must be one of {list(LOCAL_POOLINGS)}, got {local_pooling!r}.")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels!r}.")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.global_network = GlobalNetwork(
            in_channels=in_channels,
            num_classes=num_classes,
            channels=global_channels,
            blocks=global_blocks,
            strides=global_strides,
            top_t=global_top_t,
            scale_weights=scale_weights,
            padding_mode=global_padding_mode,
        )
        self.region_proposal = RegionProposal(num_patches=num_patches, patch_size=patch_size, selection=patch_selection)
        self.local_network = LocalNetwork(
            in_channels=local_in_channels,
            num_classes=num_classes,
            channels=local_channels,
            blocks=local_blocks,
            strides=(1,) * len(tuple(local_channels)),
            gradient_checkpointing=gradient_checkpointing,
            padding_mode=local_padding_mode,
        )
        if in_channels != 1 and in_channels != local_in_channels:
            raise ValueError(
                f"patches of {in_channels}-channel images cannot feed a local network with "
                f"local_in_channels={local_in_channels}; use 1-channel images or matching channel counts."
            )
        self.local_pool = TopTPooling(local_top_k)
        self.patch_pool = TopTPooling(local_top_k, start_dim=3)  # per patch of (N, K, C, h, w): no parameters
        self.local_pooling = str(local_pooling)
        self.patch_size = self.region_proposal.patch_size
        self.saliency_in_training = bool(saliency_in_training)
        self.fusion = str(fusion)
        self.patch_jitter = float(patch_jitter)

    @torch.jit.unused
    def check_input_size(self, spatial_size: Sequence[int]) -> None:
        """Refuse an input ``(H, W)`` that cannot hold one patch, before any data is read.

        A window smaller than the patch makes the patch selection and the local module meaningless (every
        metric comes out NaN), so commands check their window with this first.

        Raises:
            ValueError: naming the window and the patch size.
        """
        size = tuple(int(v) for v in spatial_size)
        patch = (int(self.patch_size[0]), int(self.patch_size[1]))
        if len(size) != 2 or size[0] < patch[0] or size[1] < patch[1]:
            raise ValueError(
                f"window {list(size)} is smaller than this GLAM's {patch[0]}x{patch[1]} patch; use a window of at "
                f"least {patch[0]}x{patch[1]} (or a model config with a smaller patch_size)"
            )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        return self.forward_outputs(x)

    def jitter_boxes(self, boxes: torch.Tensor, image_size: list[int]) -> torch.Tensor:
        """``(N, K, 4)`` boxes each moved by a random whole-pixel offset of up to ``patch_jitter`` × the patch size
        per direction, clamped so that every box stays inside the ``(H, W)`` image (sizes unchanged)."""
        limit_h = int(self.patch_jitter * self.patch_size[0])
        limit_w = int(self.patch_jitter * self.patch_size[1])
        n, k = boxes.shape[0], boxes.shape[1]
        shift_h = torch.randint(-limit_h, limit_h + 1, (n, k), device=boxes.device)
        shift_w = torch.randint(-limit_w, limit_w + 1, (n, k), device=boxes.device)
        top = (boxes[..., 0] + shift_h).clamp(0, int(image_size[0]) - self.patch_size[0])
        left = (boxes[..., 1] + shift_w).clamp(0, int(image_size[1]) - self.patch_size[1])
        return torch.stack([top, left, top + self.patch_size[0], left + self.patch_size[1]], dim=-1)

    def pool_patch_maps(self, patch_maps: torch.Tensor) -> torch.Tensor:
        """ŷ_l from the ``(N, K, C, h, w)`` patch maps S_l: ``(N, C)``, pooled as ``local_pooling`` says."""
        if self.local_pooling == "max_patch":
            # Top-k% of each patch's (N, K, C, h, w) maps, then the most positive patch, per class.
            return self.patch_pool(patch_maps).amax(dim=1)
        # Top-k% over the pixels of all K patches of an image, per class.
        return self.local_pool(patch_maps.transpose(1, 2))

    def forward_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The full output dict (what ``forward`` returns; subclasses may return less)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, H, W), got {list(x.shape)}.")
        n = x.shape[0]
        image_size = [x.shape[2], x.shape[3]]
        out = self.global_network(x)
        saliency_global = out[GLAMKeys.SALIENCY_GLOBAL.value]
        # Patch choice is discrete: it only ever sees a detached map.
        boxes = self.region_proposal(saliency_global.detach(), image_size)
        if self.training and self.patch_jitter > 0.0:
            boxes = self.jitter_boxes(boxes, image_size)
        patches = crop_patches(x, boxes, [self.patch_size[0], self.patch_size[1]])
        k = patches.shape[1]
        patch_maps = self.local_network(patches.flatten(0, 1))
        patch_maps = patch_maps.reshape(n, k, patch_maps.shape[1], patch_maps.shape[2], patch_maps.shape[3])
        out[GLAMKeys.PROB_LOCAL.value] = self.pool_patch_maps(patch_maps)
        out[GLAMKeys.PATCH_BOXES.value] = boxes
        out[GLAMKeys.PATCH_SALIENCY.value] = patch_maps
        if self.saliency_in_training or not self.training:
            out[GLAMKeys.SALIENCY.value] = fuse_patch_maps(
                saliency_global, patch_maps, boxes, image_size, [self.patch_size[0], self.patch_size[1]], self.fusion
            )
        return out


class GLAMSingleOutput(GLAM):
    """:class:`GLAM` whose ``forward`` returns one output tensor instead of the dict.

    For tools that need a single tensor: MONAI bundle checks (``verify_net_in_out``), ONNX export, MONAI's
    ``SlidingWindowInferer`` or ``monai.visualize``. Its parameters and state dict are exactly GLAM's, so
    weights load into either class.

    Args:
        output_key: the :class:`GLAMKeys` entry to return (default: the fused full-resolution map
            ``saliency`` ``(N, C, H, W)``; ``prob_global`` gives ``(N, C)`` scores).
        kwargs: :class:`GLAM` constructor arguments.

    Raises:
        ValueError: for an unknown ``output_key``.
    """

    def __init__(self, output_key: str = GLAMKeys.SALIENCY.value, **kwargs: Any) -> None:
        keys = [str(key.value) for key in GLAMKeys]
        if str(output_key) not in keys:
            raise ValueError(f"output_key must be one of {keys}, got {output_key!r}.")
        kwargs.setdefault("saliency_in_training", True)
        super().__init__(**kwargs)
        self.output_key = str(output_key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """``(N, C_in, H, W)`` -> the tensor under ``output_key``."""
        return self.forward_outputs(x)[self.output_key]
