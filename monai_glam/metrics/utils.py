"""Input conversion and validation shared by the metrics: numpy arrays or torch tensors in, numpy out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_numpy

__all__ = [
    "as_map_list",
    "as_score_matrix",
    "check_maps_and_masks",
    "check_thresholds",
    "json_safe",
    "mean_over_present",
    "resolve_class_names",
    "to_numpy",
]


def to_numpy(value: Any, name: str = "value") -> np.ndarray:
    """A tensor (on any device, detached) or array-like as a numpy array."""
    try:
        return np.asarray(convert_to_numpy(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} cannot be converted to an array: {err}") from err


def as_score_matrix(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate image scores and binary labels: ``(N,)`` or ``(N, C)`` each, same shape; returns ``(N, C)``.

    Labels must be 0/1 (booleans allowed); scores must be finite.
    """
    score_array = to_numpy(scores, "scores").astype(np.float64)
    label_array = to_numpy(labels, "labels")
    if score_array.ndim == 1:
        score_array = score_array[:, None]
    if label_array.ndim == 1:
        label_array = label_array[:, None]
    if score_array.ndim != 2 or score_array.shape != label_array.shape:
        raise ValueError(
            f"scores and labels must both be (N,) or (N, C) with the same shape, got {to_numpy(scores).shape} "
            f"and {to_numpy(labels).shape}."
        )
    if score_array.shape[0] == 0:
        raise ValueError("scores and labels are empty.")
    if not np.all(np.isfinite(score_array)):
        raise ValueError("scores contain NaN or infinite values.")
    if not np.all((label_array == 0) | (label_array == 1)):
        raise ValueError(f"labels must be 0 or 1, got values {np.unique(label_array)[:10].tolist()}.")
    return score_array, label_array.astype(bool)


def as_map_list(maps: Any, name: str) -> list[np.ndarray]:
    """Per-image ``(C, H, W)`` maps from a stacked ``(N, C, H, W)`` array/tensor or a sequence of ``(C, H, W)``."""
    if isinstance(maps, (np.ndarray, torch.Tensor)):
        array = to_numpy(maps, name)
        if array.ndim != 4:
            raise ValueError(f"{name} must be (N, C, H, W) or a sequence of (C, H, W), got shape {array.shape}.")
        return list(array)
    if not isinstance(maps, Sequence) or isinstance(maps, (str, bytes)):
        raise ValueError(f"{name} must be an array, a tensor or a sequence of them, got {type(maps).__name__}.")
    items = [to_numpy(item, f"{name}[{i}]") for i, item in enumerate(maps)]
    for i, item in enumerate(items):
        if item.ndim != 3:
            raise ValueError(f"{name}[{i}] must be (C, H, W), got shape {item.shape}.")
    return items


def check_maps_and_masks(maps: Any, masks: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Validate saliency maps against lesion masks: same count, same ``(C, H, W)`` per image; masks become bool
    (any non-zero value is lesion, so ``{0, 255}`` masks work)."""
    map_list = as_map_list(maps, "saliency")
    mask_list = as_map_list(masks, "masks")
    if len(map_list) != len(mask_list):
        raise ValueError(f"got {len(map_list)} saliency maps but {len(mask_list)} masks.")
    if not map_list:
        raise ValueError("no saliency maps given.")
    channels = map_list[0].shape[0]
    for i, (saliency, mask) in enumerate(zip(map_list, mask_list, strict=True)):
        if saliency.shape != mask.shape or saliency.shape[0] != channels:
            raise ValueError(
                f"image {i}: saliency {saliency.shape} and mask {mask.shape} must have the same (C, H, W) with "
                f"C = {channels} for every image."
            )
    return [m.astype(np.float64) for m in map_list], [m != 0 for m in mask_list]


def check_thresholds(thresholds: float | Sequence[float] | np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """One threshold per class, ``(C,)``, from a scalar or a sequence of length ``C``."""
    values = to_numpy(thresholds, "thresholds").astype(np.float64).reshape(-1)
    if values.size == 1:
        values = np.repeat(values, num_classes)
    if values.size != num_classes or not np.all(np.isfinite(values)):
        raise ValueError(f"thresholds must be one finite value or {num_classes} of them, got {thresholds!r}.")
    return values


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` writes as strict JSON: arrays and numpy scalars become lists and
    Python numbers, NaN and infinities become ``None``, tuples become lists."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return json_safe(to_numpy(value).tolist())
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    return value


def resolve_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` checked against ``num_classes``, or ``class_0, class_1, ...`` when ``None``."""
    if class_names is None:
        return [f"class_{c}" for c in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names must have {num_classes} entries, got {list(class_names)!r}.")
    return names


def mean_over_present(per_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean of an ``(N, C)`` per-image metric over the images where it is defined (not NaN).

    Returns:
        ``(mean, count)``, each ``(C,)``; the mean is NaN for a class no image has.
    """
    count = (~np.isnan(per_image)).sum(axis=0)
    total = np.nansum(per_image, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan), count
