"""GLAM evaluation from in-memory predictions: one collector and one rule for the CLI, the bundle and the demo.

:class:`EvaluationCollector` receives each image as inference produces it (scores, label, fused saliency map,
ground truth) and builds the report with :func:`~monai_glam.metrics.build_evaluation_report`: image- and
breast-level ROC-AUC with bootstrap intervals for the global and local scores and, for the images that count
for localization, Dice/IoU, pointing game and lesion FROC of the fused map. Nothing is re-read from written
map files, so any output format works. ``monai-glam evaluate`` and the demo feed it from
:func:`~monai_glam.engines.run_inference`, the bundle's ``evaluate.json`` from
:class:`~monai_glam.handlers.EvaluationReportWriter`.

**Which images count for localization** (:func:`localization_truth`): an image counts when its ground truth is
known for *every* class: the class's mask was read from a file, or the image's label says it has no finding of
that class (its mask is then empty). An image with a positive label but no mask for that class does not count
(its lesion is somewhere unknown), nor does an image without a label and masks. Within the counted images the
Dice of class ``c`` is averaged over those that contain a lesion of class ``c`` (the GLAM protocol).

Maps are compared in one of two frames: ``original`` (the maps mapped back onto the raw image, with the raw
masks of the datalist; what a user sees) or ``network`` (the preprocessed window and the masks transformed
with it; the GLAM paper's protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from monai.utils import convert_to_numpy

from monai_glam.metrics.report import build_evaluation_report
from monai_glam.utils.enums import CLASS_NAMES

__all__ = [
    "FRAMES",
    "PAPER_WINDOW_ROWS",
    "EvaluationCollector",
    "ScoredImage",
    "downsample_maps",
    "froc_peak_settings",
    "ground_truth_known",
    "localization_truth",
]

#: Where the localization metrics are computed: on the original images or on the network input.
FRAMES = ("original", "network")
#: Rows of the paper's network window; the FROC defaults (4 and 32 pixels) are given at this height.
PAPER_WINDOW_ROWS = 2944


class ScoredImage(Protocol):
    """What the collector needs of an image's record (:class:`~monai_glam.writers.ImagePrediction` has it)."""

    image_id: str
    image: str
    prob_global: tuple[float, ...]
    prob_local: tuple[float, ...]
    label: tuple[int, ...] | None

    @property
    def breast_id(self) -> str: ...


def downsample_maps(maps: np.ndarray, factor: int, reduce: str = "mean") -> np.ndarray:
    """Shrink ``(C, H, W)`` maps by an integer ``factor`` (zero-padded at the end to a multiple of it).

    Args:
        maps: ``(C, H, W)`` array.
        factor: block size; 1 returns ``maps`` unchanged.
        reduce: ``"mean"`` for saliency maps, ``"max"`` for masks (a block is lesion when any pixel is).

    Returns:
        ``(C, ceil(H / factor), ceil(W / factor))``.
    """
    if int(factor) < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    if factor == 1:
        return maps
    channels, height, width = maps.shape
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.zeros((channels, rows * factor, cols * factor), dtype=maps.dtype)
    padded[:, :height, :width] = maps
    blocks = padded.reshape(channels, rows, factor, cols, factor)
    return blocks.mean(axis=(2, 4)) if reduce == "mean" else blocks.max(axis=(2, 4))


def ground_truth_known(has_mask: Sequence[bool], label: Sequence[int] | None) -> bool:
    """The localization rule: every class's ground truth is known, from a mask file or from a negative label.

    Args:
        has_mask: per class, whether the image has a mask file of that class.
        label: the image's per-class 0/1 label, ``None`` when unknown.
    """
    return all(present or (label is not None and int(label[c]) == 0) for c, present in enumerate(has_mask))


def localization_truth(
    masks: Sequence[np.ndarray | None], label: Sequence[int] | None, shape: Sequence[int]
) -> np.ndarray | None:
    """The ``(C, H, W)`` uint8 ground truth of an image that counts for localization, else ``None``.

    Args:
        masks: per class, the ``(H, W)`` mask read from a file, or ``None`` when the image has none.
        label: the image's per-class 0/1 label, ``None`` when unknown.
        shape: ``(H, W)`` of the maps the masks are compared with.

    Returns:
        Masks stacked in class order (an absent mask of a negative class is all zeros), or ``None`` when some
        class's ground truth is unknown.

    Raises:
        ValueError: a mask whose shape differs from ``shape``.
    """
    if not ground_truth_known([mask is not None for mask in masks], label):
        return None
    height, width = int(shape[0]), int(shape[1])
    stacked = []
    for mask in masks:
        if mask is None:  # a negative class without a mask file: known to be empty
            stacked.append(np.zeros((height, width), dtype=np.uint8))
            continue
        array = np.asarray(mask)
        array = array.reshape(array.shape[-2:]) if array.ndim == 3 and array.shape[0] == 1 else array
        if array.shape != (height, width):
            raise ValueError(f"a ground-truth mask is {array.shape}, the saliency map is {(height, width)}")
        stacked.append((array > 0).astype(np.uint8))
    return np.stack(stacked)


def froc_peak_settings(window_rows: int, downsample: int = 1) -> tuple[float, int]:
    """FROC peak smoothing and candidate distance in map pixels: 4 and 32 at the paper's 2944 rows, scaled."""
    scale = int(window_rows) / PAPER_WINDOW_ROWS / int(downsample)
    return max(0.5, 4.0 * scale), max(1, round(32 * scale))


class EvaluationCollector:
    """Collect what the evaluation report needs while inference runs, then build the report.

    Args:
        class_names: class names in channel order.
        frame: ``"original"`` or ``"network"`` (see the module docstring).
        downsample: shrink maps (block mean) and masks (block max) by this factor to save memory.

    Attributes:
        predictions: every image's record (a :class:`ScoredImage`, e.g. :class:`~monai_glam.writers.ImagePrediction`).
        localization_ids: the image ids that count for localization (:func:`localization_truth`).
    """

    def __init__(self, class_names: Sequence[str] = CLASS_NAMES, frame: str = "original", downsample: int = 1) -> None:
        if frame not in FRAMES:
            raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
        if int(downsample) < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample}")
        self.class_names = tuple(class_names)
        self.frame = frame
        self.downsample = int(downsample)
        self.predictions: list[ScoredImage] = []
        self.localization_ids: list[str] = []
        self._maps: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.predictions)

    def add(self, prediction: ScoredImage, saliency: Any | None, masks: Sequence[np.ndarray | None]) -> bool:
        """Record one image.

        Args:
            prediction: its scores, label and identifiers.
            saliency: ``(C, H, W)`` fused map in this collector's frame; ``None`` records the scores only.
            masks: per class, the ``(H, W)`` ground-truth mask in the same frame, or ``None`` when absent.

        Returns:
            Whether the image counts for localization.

        Raises:
            ValueError: a mask of another shape than the map (the message names the image).
        """
        self.predictions.append(prediction)
        if saliency is None:
            return False
        maps = convert_to_numpy(saliency, dtype=np.float32)
        try:
            truth = localization_truth(masks, prediction.label, maps.shape[-2:])
        except ValueError as err:
            raise ValueError(f"{prediction.image}: {err}") from None
        if truth is None:
            return False
        self.localization_ids.append(prediction.image_id)
        self._maps.append(downsample_maps(maps, self.downsample, "mean"))
        self._masks.append(downsample_maps(truth, self.downsample, "max"))
        return True

    def localization_data(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """``(maps, masks)`` of the images that count: float32 ``(C, H, W)`` maps and uint8 masks."""
        return list(self._maps), list(self._masks)

    def report(
        self,
        thresholds: Sequence[float] | None = None,
        num_bootstrap: int = 2000,
        confidence: float = 0.95,
        seed: int = 0,
        peak_sigma: float | None = None,
        peak_min_distance: int | None = None,
        window_rows: int = PAPER_WINDOW_ROWS,
    ) -> dict[str, Any]:
        """Build the evaluation report of everything collected.

        Args:
            thresholds: per-class thresholds for Dice/IoU (default 0.5).
            num_bootstrap: bootstrap resamples of the AUC intervals.
            confidence: interval level.
            seed: bootstrap seed.
            peak_sigma: FROC peak smoothing in map pixels; default scaled from ``window_rows`` (4 at 2944).
            peak_min_distance: FROC candidate distance in map pixels; default scaled (32 at 2944).
            window_rows: the network window's height, for the default FROC settings.

        Raises:
            ValueError: nothing collected, or images without labels.
        """
        if not self.predictions:
            raise ValueError("no image was evaluated: the split is empty or every item failed")
        unlabelled = [p.image for p in self.predictions if p.label is None]
        if unlabelled:
            raise ValueError(
                f"{len(unlabelled)} image(s) have no label (e.g. {unlabelled[0]}); evaluation needs labelled images"
            )
        sigma, distance = froc_peak_settings(window_rows, self.downsample)
        maps, masks = self.localization_data()
        report = build_evaluation_report(
            {
                "global": np.asarray([p.prob_global for p in self.predictions]),
                "local": np.asarray([p.prob_local for p in self.predictions]),
            },
            np.asarray([p.label for p in self.predictions]),
            breast_ids=[p.breast_id for p in self.predictions],
            saliency=maps or None,
            masks=masks or None,
            thresholds=tuple(float(t) for t in (thresholds or (0.5,) * len(self.class_names))),
            class_names=self.class_names,
            num_bootstrap=num_bootstrap,
            confidence=confidence,
            seed=seed,
            peak_sigma=float(peak_sigma) if peak_sigma is not None else sigma,
            peak_min_distance=int(peak_min_distance) if peak_min_distance is not None else distance,
        )
        report["inputs"] = {
            "frame": self.frame,
            "downsample": self.downsample,
            "num_localization_images": len(self.localization_ids),
        }
        return report
