"""Sliding-window inference with GLAM for images larger than the model window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import Inferer, sliding_window_inference
from monai.utils import BlendMode, ensure_tuple_rep, fall_back_tuple, look_up_option

from monai_glam.inferers.spatial_outputs import SPATIAL_OUTPUT_KEYS, GLAMSpatialOutputs
from monai_glam.networks.blocks.pooling import TopTPooling, top_t_count
from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.enums import GLAMKeys
from monai_glam.utils.precision import autocast, check_precision, to_float32

__all__ = ["GLAMSlidingWindowInferer", "masked_top_t_pooling", "window_starts"]


def window_starts(image_size: Sequence[int], roi_size: Sequence[int], overlap: Sequence[float]) -> list[list[int]]:
    """Start offsets of the windows ``sliding_window_inference`` visits, one sorted list per dimension.

    The scan interval is computed as MONAI does (``int(roi * (1 - overlap))``, at least 1, or the whole
    dimension when the window covers it) and the windows are enumerated with MONAI's own
    :func:`monai.data.utils.dense_patch_slices`, so the result is exactly what the stitching will use.
    """
    intervals = []
    for size, roi, frac in zip(image_size, roi_size, overlap, strict=True):
        intervals.append(int(roi) if int(roi) == int(size) else max(1, int(int(roi) * (1.0 - float(frac)))))
    slices = dense_patch_slices(tuple(image_size), tuple(roi_size), tuple(intervals))
    return [sorted({int(window[dim].start) for window in slices}) for dim in range(len(image_size))]


def masked_top_t_pooling(values: torch.Tensor, mask: torch.Tensor, fraction: float) -> torch.Tensor:
    """Top-t% pooling restricted to a mask: per image and channel, the mean of the largest
    ``round(M * fraction)`` values among the ``M`` pixels where ``mask`` is true.

    Args:
        values: ``(N, C, *spatial)``.
        mask: ``(N, 1, *spatial)`` or ``(N, C, *spatial)`` boolean.
        fraction: pooled fraction in ``(0, 1]``.

    Returns:
        ``(N, C)``; NaN for an image whose mask is empty.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}.")
    flat = values.flatten(2)
    flat_mask = mask.flatten(2).expand_as(flat)
    counts = flat_mask.sum(dim=-1)  # (N, C)
    # Python rounding, as in TopTPooling, so that the result equals GLAM's own pooling on the same pixels.
    k = torch.tensor(
        [[top_t_count(int(m), fraction) if m > 0 else 0 for m in row] for row in counts.tolist()],
        device=values.device,
    )
    k_max = max(1, int(k.max()))
    masked = torch.where(flat_mask, flat, torch.full_like(flat, float("-inf")))
    top = torch.topk(masked, k_max, dim=-1).values  # sorted, largest first
    keep = torch.arange(k_max, device=values.device) < k.unsqueeze(-1)
    total = torch.where(keep, top, torch.zeros_like(top)).sum(dim=-1)
    return torch.where(k > 0, total / k.clamp(min=1).to(values.dtype), torch.full_like(total, float("nan")))


class GLAMSlidingWindowInferer(Inferer):
    """GLAM over an image larger than the model window: stitched saliency maps and pooled image scores.

    The network is wrapped in :class:`GLAMSpatialOutputs`, which returns only spatial maps, ordered from full
    resolution down (see :data:`SPATIAL_OUTPUT_KEYS` for why), and ``monai.inferers.sliding_window_inference``
    stitches them. Image scores are then recomputed from the stitched maps the way GLAM computes them:

    - ``prob_global``: the mean of the top-t% pooled stitched ``A1``, ``A2``, ``A3`` (GLAM's ``ŷ_g`` is the
      mean of the per-scale pooled scores, not the pooled ``S_g``);
    - ``prob_local``: top-k% pooling of the stitched patch maps over the pixels that some window covered with a
      selected patch (the stitched local map divided by the stitched coverage, so a pixel's value is the mean
      over the windows whose patch covered it).

    When a single window covers the image, every returned key equals :class:`GLAMInferer`'s output (for
    ``prob_local`` this needs non-overlapping patches, always true with one patch per window).

    Returned keys: ``prob_global``, ``prob_local`` ``(N, C)``; ``saliency`` ``(N, C, H, W)``;
    ``saliency_global`` and ``saliency_a1..a3`` ``(N, C, H/16, W/16)``. ``patch_boxes`` and
    ``patch_saliency`` are absent: patches are chosen per window and have no meaning for the whole image.

    Windows must line up on every output grid: the window size and every window start must be multiples of
    ``map_stride`` (else MONAI would misplace the coarse maps silently), so the image size must be a multiple
    of it too. This is checked before anything runs.

    Args:
        roi_size: window ``(height, width)``; a non-positive entry means the image's size in that dimension.
        sw_batch_size: windows per network call.
        overlap: overlap of neighbouring windows, per dimension or one value, in ``[0, 1)``.
        mode: window blending, ``"constant"`` or ``"gaussian"`` (as in MONAI).
        sigma_scale: Gaussian blending width (as in MONAI).
        sw_device: device the windows run on (default: the input's).
        device: device the stitched maps are kept on (default: the input's).
        progress: show a progress bar over windows.
        map_stride: input pixels per global-map pixel (16 for GLAM's backbone).
        global_top_t: top-t fraction for ``prob_global``; ``None`` uses the network's.
        local_top_k: top-k fraction for ``prob_local``; ``None`` uses the network's.
        precision: ``fp32`` (default), ``bf16`` or ``auto``: each window's forward pass runs under bfloat16
            autocast for ``bf16`` (see :mod:`monai_glam.utils.precision`); the stitching and pooling stay float32.

    Raises:
        ValueError: for invalid arguments, and from ``__call__`` when the image is smaller than the window or
            the windows do not line up with ``map_stride``.

    Example::

        >>> net = GLAM(patch_size=64, global_channels=(8, 8, 16, 16, 32), local_channels=(8, 8, 16, 16)).eval()
        >>> inferer = GLAMSlidingWindowInferer(roi_size=(256, 160), overlap=(0.25, 0.2))
        >>> with torch.no_grad():
        ...     out = inferer(torch.randn(1, 1, 448, 288), net)
        >>> out["saliency"].shape, out["saliency_a1"].shape, out["prob_global"].shape
        (torch.Size([1, 2, 448, 288]), torch.Size([1, 2, 28, 18]), torch.Size([1, 2]))
    """

    def __init__(
        self,
        roi_size: Sequence[int] | int,
        sw_batch_size: int = 1,
        overlap: Sequence[float] | float = 0.25,
        mode: BlendMode | str = BlendMode.CONSTANT,
        sigma_scale: Sequence[float] | float = 0.125,
        sw_device: torch.device | str | None = None,
        device: torch.device | str | None = None,
        progress: bool = False,
        map_stride: int = 16,
        global_top_t: float | None = None,
        local_top_k: float | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.precision = check_precision(precision)
        self.roi_size = ensure_tuple_rep(roi_size, 2)
        if int(sw_batch_size) < 1:
            raise ValueError(f"sw_batch_size must be positive, got {sw_batch_size!r}.")
        self.overlap = tuple(float(o) for o in ensure_tuple_rep(overlap, 2))
        if any(not 0.0 <= o < 1.0 for o in self.overlap):
            raise ValueError(f"overlap must be in [0, 1), got {overlap!r}.")
        if int(map_stride) < 1:
            raise ValueError(f"map_stride must be a positive integer, got {map_stride!r}.")
        for name, fraction in (("global_top_t", global_top_t), ("local_top_k", local_top_k)):
            if fraction is not None and not 0.0 < float(fraction) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1] or None, got {fraction!r}.")
        self.sw_batch_size = int(sw_batch_size)
        self.mode = look_up_option(mode, BlendMode)
        self.sigma_scale = sigma_scale
        self.sw_device = sw_device
        self.device = device
        self.progress = bool(progress)
        self.map_stride = int(map_stride)
        self.global_top_t = global_top_t
        self.local_top_k = local_top_k

    def check_windows(self, image_size: Sequence[int]) -> tuple[int, int]:
        """Resolve the window size for ``image_size`` and check that the windows line up with ``map_stride``.

        Returns:
            The window ``(height, width)``.

        Raises:
            ValueError: when the image is smaller than the window, or a window size or start is not a multiple
                of ``map_stride``.
        """
        roi = fall_back_tuple(self.roi_size, tuple(image_size))
        if any(int(r) > int(s) for r, s in zip(roi, image_size, strict=True)):
            raise ValueError(
                f"image {tuple(image_size)} is smaller than the window {tuple(roi)}: pad it or use GLAMInferer."
            )
        if any(int(r) % self.map_stride for r in roi):
            raise ValueError(f"roi_size {tuple(roi)} must be a multiple of map_stride={self.map_stride}.")
        for dim, starts in enumerate(window_starts(image_size, roi, self.overlap)):
            misaligned = [s for s in starts if s % self.map_stride]
            if misaligned:
                raise ValueError(
                    f"window starts {misaligned} along spatial dim {dim} are not multiples of "
                    f"map_stride={self.map_stride} (image {tuple(image_size)}, roi_size {tuple(roi)}, overlap "
                    f"{self.overlap}); the global maps would not line up. Choose an image size, roi_size and "
                    "overlap whose strides are multiples of map_stride."
                )
        return int(roi[0]), int(roi[1])

    def __call__(
        self, inputs: torch.Tensor, network: GLAM | GLAMSpatialOutputs, *args: Any, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """Stitch GLAM's maps over ``inputs`` and pool image scores from them.

        Args:
            inputs: ``(N, C, H, W)`` preprocessed images.
            network: a :class:`GLAM`, or a :class:`GLAMSpatialOutputs` around one.
            args: not supported (GLAM's forward takes only the image); must be empty.
            kwargs: not supported; must be empty.

        Returns:
            A dictionary with the keys listed in the class docstring.
        """
        if inputs.dim() != 4:
            raise ValueError(f"expected inputs of shape (N, C, H, W), got {list(inputs.shape)}.")
        if args or kwargs:
            raise ValueError("GLAM's forward takes no extra arguments; got some for the sliding-window predictor.")
        if isinstance(network, GLAMSpatialOutputs):
            spatial = network
        elif isinstance(network, GLAM):
            spatial = GLAMSpatialOutputs(network, map_stride=self.map_stride)
        else:
            raise ValueError(f"network must be a GLAM or GLAMSpatialOutputs, got {type(network).__name__}.")
        if spatial.map_stride != self.map_stride:
            raise ValueError(f"the wrapper's map_stride={spatial.map_stride} differs from {self.map_stride}.")
        roi = self.check_windows(inputs.shape[2:])

        def predictor(window: torch.Tensor) -> Any:
            # Autocast around each window's forward only: the stitched sums keep float32 accumulation.
            with autocast(self.precision, window.device):
                return to_float32(spatial(window))

        stitched = sliding_window_inference(
            inputs,
            roi,
            self.sw_batch_size,
            predictor,
            overlap=self.overlap,
            mode=self.mode,
            sigma_scale=self.sigma_scale,
            sw_device=self.sw_device,
            device=self.device,
            progress=self.progress,
        )
        maps = dict(zip(SPATIAL_OUTPUT_KEYS, stitched, strict=True))
        glam = spatial.network
        global_top_t = self.global_top_t if self.global_top_t is not None else glam.global_network.pool.fraction
        local_top_k = self.local_top_k if self.local_top_k is not None else glam.local_pool.fraction
        global_pool = TopTPooling(global_top_t)
        pooled_a1, pooled_a2, pooled_a3 = (
            global_pool(maps[key.value]) for key in (GLAMKeys.SALIENCY_A1, GLAMKeys.SALIENCY_A2, GLAMKeys.SALIENCY_A3)
        )
        coverage = maps.pop("patch_coverage")
        covered = coverage > 0
        local_mean = maps.pop("saliency_local") / torch.where(covered, coverage, torch.ones_like(coverage))
        maps[GLAMKeys.PROB_GLOBAL.value] = (pooled_a1 + pooled_a2 + pooled_a3) / 3.0
        maps[GLAMKeys.PROB_LOCAL.value] = masked_top_t_pooling(local_mean, covered, local_top_k)
        return maps
