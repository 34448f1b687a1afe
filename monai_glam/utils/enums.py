"""String enums used as dictionary keys across monai_glam."""

from __future__ import annotations

from monai.utils import StrEnum

__all__ = ["GLAMKeys"]


class GLAMKeys(StrEnum):
    """Keys of the dictionaries returned by :class:`~monai_glam.networks.nets.GLAM` and its modules.

    Members are ``str`` instances, so ``out[GLAMKeys.PROB_GLOBAL]`` and ``out["prob_global"]`` are the same.
    Channel ``0`` of every map or score is *benign* and channel ``1`` is *malignant*.
    """

    #: ``(N, C)`` image prediction of the global module, ŷ_g (a probability).
    PROB_GLOBAL = "prob_global"
    #: ``(N, C)`` image prediction of the local module, ŷ_l (a probability).
    PROB_LOCAL = "prob_local"
    #: ``(N, C, h, w)`` global saliency map S_g = Σ_i w_i · A_i, values in [0, 1].
    SALIENCY_GLOBAL = "saliency_global"
    #: ``(N, C, h, w)`` per-scale sigmoid map A1 (stride 16 in the paper configuration).
    SALIENCY_A1 = "saliency_a1"
    #: ``(N, C, h, w)`` per-scale sigmoid map A2 (stride 32, nearest-upsampled to A1's size).
    SALIENCY_A2 = "saliency_a2"
    #: ``(N, C, h, w)`` per-scale sigmoid map A3 (stride 64, nearest-upsampled to A1's size).
    SALIENCY_A3 = "saliency_a3"
    #: ``(N, K, 4)`` int64 boxes ``(row0, col0, row1, col1)`` of the selected patches, input pixels, in
    #: selection order (``row1``/``col1`` exclusive).
    PATCH_BOXES = "patch_boxes"
    #: ``(N, K, C, p/4, p/4)`` saliency maps of the selected patches, S_l.
    PATCH_SALIENCY = "patch_saliency"
    #: ``(N, C, H, W)`` fused full-resolution saliency map S = (S_l pasted + up(S_g)) / 2.
    SALIENCY = "saliency"
