"""Lesion-level FROC from saliency-map peaks: sensitivity at given false positives per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from monai_glam.metrics.utils import check_maps_and_masks, resolve_class_names, to_numpy

__all__ = [
    "DEFAULT_FP_RATES",
    "FROCResult",
    "compute_lesion_froc",
    "find_saliency_peaks",
    "froc_curve",
    "lesion_diameters",
]

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
    give many equal maxima; Gaussian smoothing turns each blob into one peak, a plateau that survives it (a
    flat background) gives one candidate (its pixel nearest its centre), and ``min_distance`` keeps candidates
    apart: highest first, a candidate within ``min_distance`` (Chebyshev distance) of a kept one is dropped.

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
    size = 2 * int(min_distance) + 1
    floor = smoothed.min() if threshold_abs is None else float(threshold_abs)
    is_peak = (smoothed == ndimage.maximum_filter(smoothed, size=size, mode="nearest")) & (smoothed > floor)
    # One candidate per plateau of equal maxima: its pixel nearest the plateau's centre.
    plateaus, count = ndimage.label(is_peak, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    rows, cols = np.nonzero(plateaus)
    ids = plateaus[rows, cols] - 1
    centre_r = np.bincount(ids, rows, count) / np.bincount(ids, minlength=count)
    centre_c = np.bincount(ids, cols, count) / np.bincount(ids, minlength=count)
    distance = (rows - centre_r[ids]) ** 2 + (cols - centre_c[ids]) ** 2
    order = np.lexsort((cols, rows, distance, ids))  # per plateau: nearest the centre, then row-major
    first = order[np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])]
    coords = np.stack([rows[first], cols[first]], axis=1).astype(np.int64)
    scores = smoothed[coords[:, 0], coords[:, 1]]
    ranked = np.lexsort((coords[:, 1], coords[:, 0], -scores))  # highest first, ties row-major
    kept: list[int] = []
    limit = np.inf if max_peaks is None else int(max_peaks)
    for index in ranked:
        if len(kept) >= limit:
            break
        if kept and np.any(np.max(np.abs(coords[kept] - coords[index]), axis=1) <= int(min_distance)):
            continue
        kept.append(int(index))
    return coords[kept].reshape(-1, 2), scores[kept]


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
    diameter_range: tuple[float, float] | None = None,
    merge_distance: int = 0,
) -> dict[str, FROCResult]:
    """Lesion-level FROC per class, with candidates from saliency-map peaks.

    For class ``c``, each connected component of the class-``c`` masks is a lesion; the candidates are the
    peaks of the class-``c`` maps (:func:`find_saliency_peaks`). A lesion is hit when a candidate falls inside
    it; candidates outside every lesion are false positives. All images count in the FP rate, including the
    ones without a lesion of the class.

    ``merge_distance=d`` makes mask components closer than about ``d`` pixels one lesion (a calcification
    cluster is one finding, not one per speck): lesions are the components of the mask dilated ``d`` times, and
    a candidate anywhere in that dilated region hits it. ``diameter_range=(low, high)`` reports the sensitivity
    on the lesions whose diameter (:func:`lesion_diameters`) lies in ``[low, high)``: the other lesions are left
    out of the count, and a candidate inside one of them is neither a hit nor a false positive.

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
        diameter_range: only count lesions of this diameter, ``[low, high)`` pixels.
        merge_distance: dilation (pixels) that merges nearby mask components into one lesion; 0 keeps them apart.

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
    if diameter_range is not None and not (0 <= float(diameter_range[0]) < float(diameter_range[1])):
        raise ValueError(f"diameter_range must be (low, high) with 0 <= low < high, got {diameter_range!r}.")
    if int(merge_distance) < 0:
        raise ValueError(f"merge_distance must be >= 0, got {merge_distance!r}.")
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
            lesions, count, diameters = _lesions(image_masks[c], structure, int(merge_distance))
            lesion_at = lesions[coords[:, 0], coords[:, 1]]
            best = np.full(count, -np.inf)
            inside = lesion_at > 0
            np.maximum.at(best, lesion_at[inside] - 1, peak_scores[inside])
            counted = np.ones(count, dtype=bool)
            if diameter_range is not None:
                counted = (diameters >= float(diameter_range[0])) & (diameters < float(diameter_range[1]))
                # A candidate on a lesion outside the range is not a false positive: drop it.
                keep = np.ones(inside.size, dtype=bool)
                keep[inside] = counted[lesion_at[inside] - 1]
                peak_scores, inside = peak_scores[keep], inside[keep]
            scores.append(peak_scores)
            is_fp.append(~inside)
            lesion_best.append(best[counted])
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


def _lesions(mask: np.ndarray, structure: np.ndarray, merge_distance: int) -> tuple[np.ndarray, int, np.ndarray]:
    """``(labels, count, diameters)`` of the lesions of one ``(H, W)`` mask (see :func:`lesion_diameters`)."""
    inside = np.asarray(mask) > 0
    region = ndimage.binary_dilation(inside, structure, iterations=merge_distance) if merge_distance else inside
    labels, count = ndimage.label(region, structure=structure)
    diameters = np.zeros(count)
    for index, box in enumerate(ndimage.find_objects(np.where(inside, labels, 0), max_label=count)):
        if box is not None:
            diameters[index] = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
    return labels, count, diameters


def lesion_diameters(masks: Any, connectivity: int = 2, merge_distance: int = 0) -> list[np.ndarray]:
    """The diameter (pixels) of every lesion, per class: the larger side of the bounding box of its mask pixels.

    A lesion is a connected component of the mask, or of the mask dilated ``merge_distance`` times (then a
    calcification cluster is one lesion and its diameter is the cluster's extent), as in
    :func:`compute_lesion_froc`.

    Args:
        masks: ``(N, C, H, W)`` or a sequence of ``(C, H, W)`` lesion masks (non-zero is lesion).
        connectivity: 1 (4-neighbourhood) or 2 (8-neighbourhood).
        merge_distance: dilation (pixels) that merges nearby components.

    Returns:
        One ``(L_c,)`` array per class, over all images (e.g. to split the FROC at the median lesion size).
    """
    mask_list = [to_numpy(m, "masks") for m in masks]
    if not mask_list or any(m.ndim != 3 for m in mask_list):
        raise ValueError("masks must be a non-empty sequence of (C, H, W) arrays.")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity!r}.")
    structure = ndimage.generate_binary_structure(2, connectivity)
    out: list[list[np.ndarray]] = [[] for _ in range(mask_list[0].shape[0])]
    for image_masks in mask_list:
        for c, mask in enumerate(image_masks):
            out[c].append(_lesions(mask, structure, int(merge_distance))[2])
    return [np.concatenate(parts) if parts else np.zeros(0) for parts in out]
