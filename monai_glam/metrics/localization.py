"""Compare localization methods on one test split, with thresholds picked on a validation split.

A *method* is anything that gives, for every image, per-class scores and per-class maps in the same frame as the
ground truth: GLAM's fused map, its global map alone, its local maps alone, or a plain classifier with CAM maps.
:class:`LocalizationSplit` collects one method's outputs on one split; :func:`compare_localization` computes,
for every method and class, the image ROC-AUC, Dice and IoU at the threshold that maximises the validation
Dice, the pointing game and the lesion FROC sensitivity at a given false-positive rate, overall and on the
lesions below and at-or-above the median equivalent diameter. Every method is scored on the same images, masks,
FROC settings and size split, so the table compares the maps and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.utils import convert_to_numpy

from monai_glam.metrics.froc import compute_lesion_froc, lesion_diameters
from monai_glam.metrics.pointing_game import pointing_game
from monai_glam.metrics.roc import roc_auc
from monai_glam.metrics.segmentation import compute_dice_iou
from monai_glam.metrics.thresholds import select_dice_thresholds
from monai_glam.metrics.utils import mean_over_present
from monai_glam.utils.enums import CLASS_NAMES

__all__ = ["LOCALIZATION_COLUMNS", "LocalizationSplit", "compare_localization", "localization_markdown"]

#: The per-class columns of :func:`compare_localization`, in table order.
LOCALIZATION_COLUMNS: tuple[str, ...] = (
    "auc",
    "dice",
    "iou",
    "pointing",
    "froc",
    "froc_small",
    "froc_large",
)


class LocalizationSplit:
    """One method's outputs on one split: scores of every image, maps and masks of the images with known truth.

    Args:
        map_dtype: dtype the maps are stored in (``float16`` halves the memory of a large split; the
            thresholds are picked on a 0.01 grid, far coarser than its precision). The pointing game is decided
            when an image is added, on its float32 maps: rounded to float16, two near-equal maxima can tie and
            the first one would win.
    """

    def __init__(self, map_dtype: Any = np.float16) -> None:
        self.map_dtype = map_dtype
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.maps: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        #: ``(C,)`` pointing-game hits of each localization image (1, 0, or NaN for a class without a lesion).
        self.pointing_hits: list[np.ndarray] = []
        self.image_ids: list[str] = []

    def __len__(self) -> int:
        return len(self.scores)

    def add(self, image_id: str, scores: Any, label: Any, maps: Any | None, masks: np.ndarray | None) -> None:
        """Record one image.

        Args:
            image_id: the image's name (kept for the maps, e.g. for figures).
            scores: ``(C,)`` image scores.
            label: ``(C,)`` 0/1 image label.
            maps: ``(C, H, W)`` maps, or ``None`` when the image does not count for localization.
            masks: ``(C, H, W)`` ground truth (:func:`~monai_glam.metrics.localization_truth`), or ``None``.

        Raises:
            ValueError: ``maps`` and ``masks`` of different shapes, or only one of them given.
        """
        if (maps is None) != (masks is None):
            raise ValueError(f"{image_id}: give both the maps and the masks, or neither")
        array = None if maps is None else np.asarray(convert_to_numpy(maps), dtype=np.float32)
        if array is not None and masks is not None and array.shape != masks.shape:
            raise ValueError(f"{image_id}: maps {array.shape} and masks {masks.shape} differ")
        self.scores.append(np.asarray(convert_to_numpy(scores), dtype=np.float64).reshape(-1))
        self.labels.append(np.asarray(convert_to_numpy(label), dtype=np.int64).reshape(-1))
        if array is None or masks is None:
            return
        truth = np.asarray(masks, dtype=np.uint8)
        self.pointing_hits.append(pointing_game(array[None], truth[None]).hits[0])
        self.maps.append(array.astype(self.map_dtype))
        self.masks.append(truth)
        self.image_ids.append(str(image_id))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(float(value)) else None


def compare_localization(
    validation: Mapping[str, LocalizationSplit],
    test: Mapping[str, LocalizationSplit],
    class_names: Sequence[str] = CLASS_NAMES,
    fp_rate: float = 1.0,
    peak_sigma: float = 4.0,
    peak_min_distance: int = 32,
    merge_distance: int | None = None,
) -> dict[str, Any]:
    """The comparison table: per method and class, AUC, Dice, IoU, pointing game and FROC at ``fp_rate``.

    Thresholds: for each method and class, the one of ``0.01 … 0.99`` that maximises the mean validation Dice
    (:func:`~monai_glam.metrics.select_dice_thresholds`). The size split is the median equivalent diameter of the
    test lesions of each class; ``froc_small`` counts the lesions below it, ``froc_large`` the others. A lesion
    is a mask component after merging components closer than ``merge_distance`` (a calcification cluster is one
    finding; :func:`~monai_glam.metrics.compute_lesion_froc`).

    Args:
        validation: ``{method: split}`` on the validation images (thresholds only).
        test: ``{method: split}`` on the test images, the same methods.
        class_names: class names in channel order.
        fp_rate: false positives per image at which the FROC sensitivity is reported.
        peak_sigma: FROC peak smoothing (pixels).
        peak_min_distance: FROC candidate distance (pixels).
        merge_distance: lesion merging distance (pixels); default half of ``peak_min_distance``.

    Returns:
        ``{"methods": {method: {class: {column: value or None}, "thresholds": [...]}}, "median_diameter":
        {class: pixels}, "num_images": {...}, "settings": {...}}``; undefined values are ``None``.

    Raises:
        ValueError: methods that differ between the splits, or a test split without localization images.
    """
    if set(validation) != set(test) or not test:
        raise ValueError(f"the validation methods {sorted(validation)} and test methods {sorted(test)} must match")
    names = tuple(class_names)
    reference = next(iter(test.values()))
    if not reference.masks:
        raise ValueError("no test image counts for localization (no masks, or no known ground truth)")
    merge = max(1, int(peak_min_distance) // 2) if merge_distance is None else int(merge_distance)
    diameters = lesion_diameters(reference.masks, merge_distance=merge)
    medians = [float(np.median(d)) if d.size else math.nan for d in diameters]
    methods: dict[str, Any] = {}
    for method, split in test.items():
        val = validation[method]
        thresholds = select_dice_thresholds(val.maps, val.masks).thresholds if val.maps else np.full(len(names), 0.5)
        segmentation = compute_dice_iou(split.maps, split.masks, thresholds)
        pointing, _ = mean_over_present(np.stack(split.pointing_hits))  # decided on the float32 maps
        auc = roc_auc(np.stack(split.scores), np.stack(split.labels))
        froc: dict[str, Any] = {}
        for column, limits in (("froc", None), ("froc_small", "small"), ("froc_large", "large")):
            per_class = []
            for c, name in enumerate(names):
                if limits is not None and not math.isfinite(medians[c]):
                    per_class.append(math.nan)
                    continue
                diameter_range = None
                if limits == "small":
                    diameter_range = (0.0, medians[c])
                elif limits == "large":
                    diameter_range = (medians[c], math.inf)
                result = compute_lesion_froc(
                    [m[c : c + 1] for m in split.maps],
                    [m[c : c + 1] for m in split.masks],
                    fp_rates=(fp_rate,),
                    sigma=peak_sigma,
                    min_distance=peak_min_distance,
                    class_names=(name,),
                    diameter_range=diameter_range,
                    merge_distance=merge,
                )
                per_class.append(float(result[name].sensitivity[0]))
            froc[column] = per_class
        row: dict[str, Any] = {"thresholds": [float(t) for t in thresholds]}
        for c, name in enumerate(names):
            row[name] = {
                "auc": _finite(auc[c]),
                "dice": _finite(segmentation.mean_dice[c]),
                "iou": _finite(segmentation.mean_iou[c]),
                "pointing": _finite(pointing[c]),
                **{column: _finite(values[c]) for column, values in froc.items()},
            }
        methods[method] = row
    return {
        "methods": methods,
        "median_diameter": {name: _finite(medians[c]) for c, name in enumerate(names)},
        "num_images": {
            "validation": len(next(iter(validation.values()))),
            "test": len(reference),
            "test_localization": len(reference.masks),
        },
        "settings": {
            "fp_rate": float(fp_rate),
            "peak_sigma": float(peak_sigma),
            "peak_min_distance": int(peak_min_distance),
            "merge_distance": merge,
        },
    }


def localization_markdown(
    comparison: Mapping[str, Any], class_names: Sequence[str] = CLASS_NAMES, labels: Mapping[str, str] | None = None
) -> str:
    """The comparison as Markdown: one table per class, one row per method.

    Args:
        comparison: what :func:`compare_localization` returned.
        class_names: the classes to show, in order.
        labels: optional display names of the methods.
    """
    rate = comparison["settings"]["fp_rate"]
    titles = {
        "auc": "AUC",
        "dice": "Dice",
        "iou": "IoU",
        "pointing": "pointing",
        "froc": f"FROC@{rate:g}",
        "froc_small": f"FROC@{rate:g} small",
        "froc_large": f"FROC@{rate:g} large",
    }
    header = ["method", *(titles[col] for col in LOCALIZATION_COLUMNS)]
    lines: list[str] = []
    for name in class_names:
        median = comparison["median_diameter"].get(name)
        size = "n/a" if median is None else f"{median:.1f} px"
        lines += [f"**{name}** (small/large split at the median lesion diameter, {size})", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, row in comparison["methods"].items():
            cells = [(labels or {}).get(method, method)]
            cells += ["n/a" if row[name][col] is None else f"{row[name][col]:.3f}" for col in LOCALIZATION_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
