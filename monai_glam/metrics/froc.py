"""Lesion-level FROC from saliency-map peaks: sensitivity at given false positives per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max

from monai_glam.metrics.utils import check_maps_and_masks, resolve_class_names, to_numpy

__all__ = ["DEFAULT_FP_RATES", "FROCResult", "compute_lesion_froc", "find_saliency_peaks", "froc_curve"]

#: False positives per image at which sensitivity is reported (the CAMELYON16 / MONAI convention).
DEFAULT_FP_RATES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def find_saliency_peaks(
    saliency: Any,
    sigma: float = 4.0,
    min_distance: int = 32,
    threshold_abs: float | None = None,
    max_peaks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lesion candidates of one 2-D map: local maxima of the lightly smoothed map.

    GLAM's fused map is piecewise constant (the global map is nearest-upsampled ×16), so its plateaus would
    give many equal maxima; Gaussian smoothing turns each blob into one peak and ``min_distance`` keeps
    candidates apart (the peak search is ``skimage.feature.peak_local_max``).

    Args:
        saliency: ``(H, W)`` map.
        sigma: Gaussian smoothing in pixels; 0 disables it.
        min_distance: minimum distance between candidates in pixels (a ``2·min_distance + 1`` square window).
        threshold_abs: only peaks above this value (default: above the smoothed map's minimum).
        max_peaks: keep at most this many, highest first.

    Returns:
        ``(coords, scores)``: ``(P, 2)`` int row/column positions and ``(P,)`` smoothed map values, highest
        score first.
    """
    values = to_numpy(saliency, "saliency").astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"find_saliency_peaks takes one (H, W) map, got shape {values.shape}.")
    if float(sigma) < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}.")
    if int(min_distance) < 1:
        raise ValueError(f"min_distance must be >= 1, got {min_distance!r}.")
    if max_peaks is not None and int(max_peaks) < 1:
        raise ValueError(f"max_peaks must be positive or None, got {max_peaks!r}.")
    smoothed = ndimage.gaussian_filter(values, float(sigma), mode="nearest") if sigma > 0 else values
    coords = peak_local_max(
        smoothed,
        min_distance=int(min_distance),
        threshold_abs=threshold_abs,
        exclude_border=False,
        num_peaks=np.inf if max_peaks is None else int(max_peaks),
    ).astype(np.int64)
    scores = smoothed[coords[:, 0], coords[:, 1]] if coords.size else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    return coords.reshape(-1, 2)[order], scores[order]


def froc_curve(
    candidate_scores: np.ndarray, candidate_is_fp: np.ndarray, lesion_best_scores: np.ndarray, num_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """FROC curve from scored candidates.

    Sweeping a threshold down over the candidate scores, a lesion is detected once its best hitting
    candidate is above it, and every candidate outside all lesions above it is a false positive (extra
    candidates in an already detected lesion count as neither).

    Args:
        candidate_scores: ``(P,)`` scores of all candidates of all images.
        candidate_is_fp: ``(P,)`` bool, the candidate lies outside every lesion.
        lesion_best_scores: ``(L,)`` best score of a candidate inside each lesion, ``-inf`` if none.
        num_images: images evaluated (the FP rate's denominator).

    Returns:
        ``(fps_per_image, sensitivity)``, increasing, starting at ``(0, 0)``; one point per distinct
        false-positive count (the highest sensitivity reached with that many).
    """
    thresholds = np.unique(candidate_scores)[::-1]
    fp_scores = np.sort(candidate_scores[candidate_is_fp])
    lesion_scores = np.sort(lesion_best_scores)
    false_pos = fp_scores.size - np.searchsorted(fp_scores, thresholds, side="left")
    true_pos = lesion_scores.size - np.searchsorted(lesion_scores, thresholds, side="left")
    false_pos = np.concatenate([[0], false_pos])
    true_pos = np.concatenate([[0], true_pos])
    # Both counts grow as the threshold falls; keep the last (best) point of each FP count.
    last = np.flatnonzero(np.append(np.diff(false_pos) != 0, True))
    return false_pos[last] / float(num_images), true_pos[last] / float(max(lesion_scores.size, 1))


@dataclass
class FROCResult:
    """Lesion-level FROC of one class.

    Attributes:
        fp_rates: false positives per image at which sensitivity is reported.
        sensitivity: sensitivity at each rate (linear interpolation of the curve; past its end, its last value).
        mean_sensitivity: mean of ``sensitivity`` (the CAMELYON16 "FROC score", as ``monai.metrics``
            ``compute_froc_score``).
        curve_fps: FROC curve, false positives per image.
        curve_sensitivity: FROC curve, sensitivity.
        num_lesions: lesions (connected components of the masks).
        num_images: images evaluated.
        num_candidates: peaks found.
        note: why the result is undefined, or an empty string.
    """

    fp_rates: np.ndarray
    sensitivity: np.ndarray
    mean_sensitivity: float
    curve_fps: np.ndarray
    curve_sensitivity: np.ndarray
    num_lesions: int
    num_images: int
    num_candidates: int
    note: str = field(default="")

    def to_dict(self, include_curve: bool = True) -> dict[str, Any]:
        """Plain Python values; the curve is included unless ``include_curve`` is false."""
        out: dict[str, Any] = {
            "sensitivity": {f"{rate:g}": float(s) for rate, s in zip(self.fp_rates, self.sensitivity, strict=True)},
            "mean_sensitivity": float(self.mean_sensitivity),
            "num_lesions": self.num_lesions,
            "num_images": self.num_images,
            "num_candidates": self.num_candidates,
            "note": self.note,
        }
        if include_curve:
            out["curve"] = {"fps_per_image": self.curve_fps.tolist(), "sensitivity": self.curve_sensitivity.tolist()}
        return out


def compute_lesion_froc(
    saliency: Any,
    masks: Any,
    fp_rates: Sequence[float] = DEFAULT_FP_RATES,
    sigma: float = 4.0,
    min_distance: int = 32,
    threshold_abs: float | None = None,
    max_peaks_per_image: int | None = None,
    connectivity: int = 2,
    class_names: Sequence[str] | None = None,
) -> dict[str, FROCResult]:
    """Lesion-level FROC per class, with candidates from saliency-map peaks.

    For class ``c``, each connected component of the class-``c`` masks is a lesion; the candidates are the
    peaks of the class-``c`` maps (:func:`find_saliency_peaks`). A lesion is hit when a candidate falls inside
    it; candidates outside every lesion are false positives. All images count in the FP rate, including the
    ones without a lesion of the class.

    Args:
        saliency: ``(N, C, H, W)`` or a sequence of ``(C, H, W)`` maps.
        masks: matching lesion masks (non-zero is lesion).
        fp_rates: false positives per image at which to report sensitivity.
        sigma: peak-finding smoothing (pixels).
        min_distance: minimum distance between candidates (pixels).
        threshold_abs: ignore peaks at or below this value.
        max_peaks_per_image: keep at most this many candidates per image and class.
        connectivity: 1 (4-neighbourhood) or 2 (8-neighbourhood) for lesion components.
        class_names: names of the classes (default ``class_0, ...``).

    Returns:
        ``{class name: FROCResult}``; a class without lesions has NaN sensitivities and a ``note``.

    Raises:
        ValueError: on mismatched shapes or invalid settings.
    """
    map_list, mask_list = check_maps_and_masks(saliency, masks)
    rates = np.asarray(fp_rates, dtype=np.float64).reshape(-1)
    if rates.size == 0 or np.any(rates <= 0) or not np.all(np.isfinite(rates)):
        raise ValueError(f"fp_rates must be positive finite numbers, got {fp_rates!r}.")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}.")
    structure = ndimage.generate_binary_structure(2, connectivity)
    num_classes = map_list[0].shape[0]
    names = resolve_class_names(class_names, num_classes)
    results: dict[str, FROCResult] = {}
    for c, name in enumerate(names):
        scores, is_fp, lesion_best = [], [], []
        for image_maps, image_masks in zip(map_list, mask_list, strict=True):
            coords, peak_scores = find_saliency_peaks(
                image_maps[c], sigma, min_distance, threshold_abs, max_peaks_per_image
            )
            lesions, count = ndimage.label(image_masks[c], structure=structure)
            lesion_at = lesions[coords[:, 0], coords[:, 1]]
            best = np.full(count, -np.inf)
            inside = lesion_at > 0
            np.maximum.at(best, lesion_at[inside] - 1, peak_scores[inside])
            scores.append(peak_scores)
            is_fp.append(~inside)
            lesion_best.append(best)
        all_scores, all_fp, all_best = np.concatenate(scores), np.concatenate(is_fp), np.concatenate(lesion_best)
        curve_fps, curve_sens = froc_curve(all_scores, all_fp, all_best, len(map_list))
        counts = {"num_lesions": int(all_best.size), "num_images": len(map_list), "num_candidates": all_scores.size}
        if all_best.size == 0:
            undefined = np.full(rates.size, np.nan)
            note = "FROC undefined: no lesion of this class"
            results[name] = FROCResult(rates, undefined, np.nan, curve_fps, curve_sens * np.nan, **counts, note=note)
            continue
        sensitivity = np.interp(rates, curve_fps, curve_sens)
        results[name] = FROCResult(rates, sensitivity, float(sensitivity.mean()), curve_fps, curve_sens, **counts)
    return results
