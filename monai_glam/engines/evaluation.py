"""GLAM evaluation from in-memory predictions: one collector and one rule for the CLI, the bundle and the demo.

:class:`EvaluationCollector` receives each image as inference produces it (scores, label, fused saliency map,
ground truth) and builds the report with :func:`~monai_glam.metrics.build_evaluation_report`: image- and
breast-level ROC-AUC with bootstrap intervals for the global and local scores and, for the images that count
for localization, Dice/IoU, pointing game and lesion FROC of the fused map. Nothing is re-read from written
map files, so any output format works.

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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import convert_to_numpy

from monai_glam.data.image_reader import read_image_array
from monai_glam.metrics import build_evaluation_report
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.utils.enums import CLASS_NAMES, MetaKeys, mask_keys_for
from monai_glam.writers import OUTPUT_FOLDERS, ImagePrediction, OriginalGeometryInverter

__all__ = [
    "FRAMES",
    "EvaluationCollector",
    "collect_predictions_folder",
    "downsample_maps",
    "evaluate_predictions",
    "froc_peak_settings",
    "localization_truth",
    "read_saliency_maps",
]

#: Where the localization metrics are computed: on the original images or on the network input.
FRAMES = ("original", "network")


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
    height, width = int(shape[0]), int(shape[1])
    stacked = []
    for index, mask in enumerate(masks):
        if mask is None:
            if label is None or int(label[index]) != 0:
                return None
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
    scale = int(window_rows) / PAPER_WINDOW_SIZE[0] / int(downsample)
    return max(0.5, 4.0 * scale), max(1, round(32 * scale))


def _read_mask(path: str) -> np.ndarray:
    return np.asarray(read_image_array(path)[0])


class EvaluationCollector:
    """Collect what the evaluation report needs while inference runs, then build the report.

    Args:
        class_names: class names in channel order.
        frame: ``"original"`` or ``"network"`` (see the module docstring).
        downsample: shrink maps (block mean) and masks (block max) by this factor to save memory.

    Attributes:
        predictions: every image's :class:`~monai_glam.writers.ImagePrediction`.
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
        self.predictions: list[ImagePrediction] = []
        self.localization_ids: list[str] = []
        self._maps: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.predictions)

    def add(self, prediction: ImagePrediction, saliency: Any | None, masks: Sequence[np.ndarray | None]) -> bool:
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

    def add_inference(
        self,
        prediction: ImagePrediction,
        item: Mapping[str, Any],
        data: Mapping[str, Any],
        saliency: torch.Tensor,
        inverter: OriginalGeometryInverter,
    ) -> bool:
        """Record an image of :func:`~monai_glam.engines.run_inference` in this collector's frame.

        Args:
            prediction: what the writer recorded.
            item: the datalist item (``mask_<class>`` paths of the raw masks).
            data: the preprocessed item (image with its applied operations, network-frame masks).
            saliency: ``(C, h, w)`` fused map in the network frame.
            inverter: maps network-frame maps back onto the raw image.
        """
        mask_keys = mask_keys_for(self.class_names)
        if self.frame == "original":
            maps = inverter(saliency, data[inverter.orig_key])
            masks = [_read_mask(str(item[key])) if item.get(key) else None for key in mask_keys]
        else:
            maps = saliency
            masks = [_network_mask(data.get(key)) for key in mask_keys]
        return self.add(prediction, maps, masks)

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
        window_rows: int = PAPER_WINDOW_SIZE[0],
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


def _network_mask(value: Any) -> np.ndarray | None:
    """A network-frame mask that was read from a file (not one ``LoadMammogramd`` filled in), else ``None``."""
    if not isinstance(value, torch.Tensor):
        return None
    if isinstance(value, MetaTensor) and value.meta.get(MetaKeys.MASK_MISSING):
        return None
    return convert_to_numpy(value)


def read_saliency_maps(predictions_dir: str | Path, image_id: str, class_names: Sequence[str], frame: str) -> Any:
    """Read back the ``(C, H, W)`` saliency maps that ``monai-glam infer`` wrote for one image (NIfTI or PNG).

    Raises:
        FileNotFoundError: no map file of a class (the message names it and how to get one).
        ValueError: maps of different shapes.
    """
    key = "saliency" if frame == "original" else "network_saliency"
    folder = Path(predictions_dir) / OUTPUT_FOLDERS[key]
    arrays = []
    for name in class_names:
        nifti, png = folder / f"{image_id}_{name}.nii.gz", folder / f"{image_id}_{name}.png"
        if nifti.is_file():
            arrays.append(np.asarray(read_image_array(nifti)[0], dtype=np.float32))
        elif png.is_file():  # 16-bit PNG: round(65535 * value)
            arrays.append(np.asarray(read_image_array(png)[0], dtype=np.float32) / 65535.0)
        else:
            how = " (run monai-glam infer with --network-frame)" if frame == "network" else ""
            raise FileNotFoundError(f"{nifti}: no saliency map file (.nii.gz or .png){how}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: the saliency maps of {image_id} have different shapes {sorted(shapes)}")
    return np.stack(arrays)


def collect_predictions_folder(
    predictions_dir: str | Path, frame: str = "original", downsample: int = 1
) -> tuple[EvaluationCollector, dict[str, Any]]:
    """Fill an :class:`EvaluationCollector` from an existing ``monai-glam infer`` output folder.

    The maps are read back in whatever format ``infer`` wrote (NIfTI or PNG); the ground truth is the datalist's
    raw masks (``original``) or ``network_frame/ground_truth`` (``network``, needs ``infer --network-frame``).

    Returns:
        ``(collector, run_info)`` with the folder's ``run.json`` (empty when absent).

    Raises:
        FileNotFoundError: no ``predictions.csv``, or a missing map or mask.
        ValueError: an empty table, a malformed ``run.json``, or maps and masks of different shapes.
    """
    import json

    from monai_glam.writers import read_predictions

    root = Path(predictions_dir)
    table = root / "predictions.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{root}: no predictions.csv (an output folder of monai-glam infer)")
    predictions, class_names = read_predictions(table)
    if not predictions:
        raise ValueError(f"{table} lists no image")
    info: dict[str, Any] = {}
    run_json = root / "run.json"
    if run_json.is_file():
        try:
            loaded = json.loads(run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{run_json}: not valid JSON ({err})") from err
        info = loaded if isinstance(loaded, dict) else {}
    collector = EvaluationCollector(class_names, frame, downsample)
    truth_dir = root / OUTPUT_FOLDERS["network_ground_truth"]
    for prediction in predictions:
        if frame == "original":
            paths = [prediction.masks.get(name) for name in class_names]
        else:
            paths = [
                str(p) if (p := truth_dir / f"{prediction.image_id}_{name}.png").is_file() else None
                for name in class_names
            ]
        masks = [_read_mask(path) if path else None for path in paths]
        known = all(
            m is not None or (prediction.label is not None and int(prediction.label[c]) == 0)
            for c, m in enumerate(masks)
        )
        saliency = read_saliency_maps(root, prediction.image_id, class_names, frame) if known else None
        collector.add(prediction, saliency, masks)
    return collector, info


def evaluate_predictions(
    predictions_dir: str | Path,
    output_dir: str | Path,
    frame: str = "original",
    thresholds: Sequence[float] | None = None,
    downsample: int = 1,
    num_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    peak_sigma: float | None = None,
    peak_min_distance: int | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate an existing ``monai-glam infer`` output folder and write the report into ``output_dir``.

    Args:
        predictions_dir: folder with ``predictions.csv`` and the maps (NIfTI or PNG).
        output_dir: where ``report.json``, ``report.md`` and the plots go.
        frame: ``"original"`` or ``"network"``.
        thresholds: per-class thresholds for Dice/IoU; default the ones the run used (``run.json``), else 0.5.
        downsample: integer factor to shrink maps and masks by before the localization metrics.
        num_bootstrap: bootstrap resamples of the AUC intervals.
        confidence: interval level.
        seed: bootstrap seed.
        peak_sigma: FROC peak smoothing in map pixels (default scaled from the run's window).
        peak_min_distance: FROC candidate distance in map pixels (default scaled from the run's window).

    Returns:
        ``(report, paths)``.
    """
    from monai_glam.metrics import write_evaluation_report

    collector, info = collect_predictions_folder(predictions_dir, frame, downsample)
    report = collector.report(
        thresholds=thresholds or info.get("thresholds"),
        num_bootstrap=num_bootstrap,
        confidence=confidence,
        seed=seed,
        peak_sigma=peak_sigma,
        peak_min_distance=peak_min_distance,
        window_rows=int((info.get("window") or PAPER_WINDOW_SIZE)[0]),
    )
    report["inputs"].update({"predictions": str(Path(predictions_dir).resolve())})
    report["inputs"].update({key: info.get(key) for key in ("checkpoint", "datalist", "split")})
    return report, write_evaluation_report(report, output_dir)
