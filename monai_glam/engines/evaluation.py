"""Evaluation glue between inference runs, files and :class:`~monai_glam.metrics.EvaluationCollector`.

:func:`record_inference` hands an image of :func:`~monai_glam.engines.run_inference` to the collector in its
frame (maps mapped back onto the raw image with the datalist's raw masks, or the network frame with the
transformed masks); :func:`evaluate_predictions` evaluates an existing ``monai-glam infer`` folder (NIfTI or PNG
maps); :func:`evaluate_datalist` runs a model on a labelled split and evaluates it in one pass. Both write
the report into an output folder that is never clobbered silently
(:func:`~monai_glam.utils.output_folder.staged_output_folder`). The report itself and the rule for which images
count for localization live in :mod:`monai_glam.metrics.evaluation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.utils import convert_to_numpy

from monai_glam.data.image_reader import read_image_array
from monai_glam.metrics.evaluation import EvaluationCollector, ground_truth_known
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.transforms.dictionary import mask_was_read
from monai_glam.utils.enums import mask_keys_for
from monai_glam.utils.json_files import read_json
from monai_glam.utils.output_folder import staged_output_folder
from monai_glam.utils.signals import RunInterruptedError
from monai_glam.writers import OUTPUT_FOLDERS, RUN_FILE, TABLE_FILES, ImagePrediction, map_from_uint16

if TYPE_CHECKING:
    from monai_glam.engines.inference import InferenceSettings, InferenceSummary
    from monai_glam.networks import GLAM
    from monai_glam.networks.export import OnnxGLAM

__all__ = [
    "collect_predictions_folder",
    "evaluate_datalist",
    "evaluate_predictions",
    "read_item_masks",
    "read_saliency_maps",
    "record_inference",
]


def _read_mask(path: str) -> np.ndarray:
    return np.asarray(read_image_array(path)[0])


def read_item_masks(item: Mapping[str, Any], mask_keys: Sequence[str]) -> list[np.ndarray | None]:
    """The raw ``(H, W)`` masks a datalist item names under ``mask_keys``, ``None`` where it names none."""
    return [_read_mask(str(item[key])) if item.get(key) else None for key in mask_keys]


def record_inference(
    collector: EvaluationCollector,
    prediction: ImagePrediction,
    item: Mapping[str, Any],
    data: Mapping[str, Any],
    saliency: torch.Tensor,
    original_saliency: torch.Tensor | None = None,
) -> bool:
    """Record an image of :func:`~monai_glam.engines.run_inference` in ``collector``'s frame.

    Args:
        prediction: what the writer recorded.
        item: the datalist item (``mask_<class>`` paths of the raw masks).
        data: the preprocessed item (image with its applied operations, network-frame masks).
        saliency: ``(C, h, w)`` fused map in the network frame.
        original_saliency: the same map mapped back onto the raw image (needed in the ``original`` frame).

    Raises:
        ValueError: the ``original`` frame without ``original_saliency``.
    """
    mask_keys = mask_keys_for(collector.class_names)
    if collector.frame == "original":
        if original_saliency is None:
            raise ValueError("an original-frame evaluation needs the map mapped back onto the raw image")
        maps = original_saliency
        masks = read_item_masks(item, mask_keys)
    else:
        maps = saliency
        masks = [_network_mask(data.get(key)) for key in mask_keys]
    return collector.add(prediction, maps, masks)


def _network_mask(value: Any) -> np.ndarray | None:
    """A network-frame mask that was read from a file (not one ``LoadMammogramd`` filled in), else ``None``."""
    return convert_to_numpy(value) if mask_was_read(value) else None


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
        elif png.is_file():
            arrays.append(map_from_uint16(read_image_array(png)[0]))
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
    from monai_glam.writers import read_predictions

    root = Path(predictions_dir)
    table = root / TABLE_FILES["images"]
    if not table.is_file():
        raise FileNotFoundError(f"{root}: no {table.name} (an output folder of monai-glam infer)")
    predictions, class_names = read_predictions(table)
    if not predictions:
        raise ValueError(f"{table} lists no image")
    run_json = root / RUN_FILE
    loaded = read_json(run_json, "run record") if run_json.is_file() else {}
    info: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
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
        known = ground_truth_known([m is not None for m in masks], prediction.label)
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
    overwrite: bool = False,
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
        overwrite: replace an earlier report in ``output_dir`` (without it, a non-empty folder is refused).

    Returns:
        ``(report, paths)``.

    Raises:
        ValueError: ``output_dir`` is ``predictions_dir`` or contains it, or holds files and ``overwrite`` is false.
    """
    from monai_glam.metrics import write_evaluation_report

    source, target = Path(predictions_dir).resolve(), Path(output_dir).resolve()
    if target == source or target in source.parents:
        raise ValueError(f"--output {output_dir} must not be the --predictions folder or contain it")
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
    report["inputs"].update({"predictions": str(source)})
    report["inputs"].update({key: info.get(key) for key in ("checkpoint", "datalist", "split")})
    with staged_output_folder(output_dir, overwrite) as folder:
        paths = write_evaluation_report(report, folder.path)
    return report, {key: folder.published(path) for key, path in paths.items()}


#: Where :func:`evaluate_datalist` writes the outputs of its inference run, inside its output folder.
PREDICTIONS_FOLDER = "predictions"


def evaluate_datalist(
    items: Sequence[Mapping[str, Any]],
    model: GLAM | OnnxGLAM,
    output_dir: str | Path,
    settings: InferenceSettings,
    run_info: Mapping[str, Any] | None = None,
    frame: str = "original",
    downsample: int = 1,
    num_bootstrap: int = 2000,
    seed: int = 0,
    peak_sigma: float | None = None,
    peak_min_distance: int | None = None,
    overwrite: bool = False,
) -> tuple[InferenceSummary, dict[str, Any] | None, dict[str, Path]]:
    """Run GLAM on labelled items (outputs under ``output_dir/predictions``) and write the evaluation report.

    The maps stay in memory for the metrics (:class:`~monai_glam.metrics.EvaluationCollector`), so any
    ``settings.formats`` works. The whole folder is staged like :func:`~monai_glam.engines.run_inference`'s: an
    earlier evaluation in ``output_dir`` is replaced only with ``overwrite``, and only once this one has results.

    Args:
        items: labelled datalist items.
        model: GLAM in eval mode on ``settings.device`` (or the ``OnnxGLAM`` of an ONNX ``settings.engine``).
        output_dir: the evaluation folder.
        settings: inference settings (thresholds and window also set the report's thresholds and FROC scale).
        run_info: extra entries for ``run.json`` and the report inputs (``checkpoint``, ``datalist``, ``split``).
        frame: ``"original"`` or ``"network"``.
        downsample: integer factor to shrink maps and masks by before the localization metrics.
        num_bootstrap: bootstrap resamples of the AUC intervals.
        seed: bootstrap seed.
        peak_sigma: FROC peak smoothing in map pixels (default scaled from the window).
        peak_min_distance: FROC candidate distance in map pixels (default scaled from the window).
        overwrite: replace an earlier evaluation in ``output_dir``.

    Returns:
        ``(summary, report, paths)``: the inference summary; the report and its files, or ``None`` and ``{}``
        when no image went through (nothing is then written over earlier results).
    """
    from monai_glam.engines.inference import run_inference
    from monai_glam.metrics import write_evaluation_report

    info = dict(run_info or {})
    collector = EvaluationCollector(frame=frame, downsample=downsample)
    target = Path(output_dir)
    with staged_output_folder(target, overwrite) as folder:
        predictions_dir = folder.path / PREDICTIONS_FOLDER
        try:
            summary = run_inference(items, model, predictions_dir, settings, run_info=info, collector=collector)
        except RunInterruptedError as stopped:
            if not folder.staged:
                raise
            raise RunInterruptedError(
                stopped.signum, f"{str(stopped).split(';')[0]}; the earlier evaluation in {target} is unchanged"
            ) from None
        if not summary.predictions:
            folder.keep = False
            return summary, None, {}
        report = collector.report(
            thresholds=settings.thresholds,
            num_bootstrap=num_bootstrap,
            seed=seed,
            peak_sigma=peak_sigma,
            peak_min_distance=peak_min_distance,
            window_rows=settings.window[0],
        )
        report["inputs"].update({"predictions": str((target / PREDICTIONS_FOLDER).resolve())})
        report["inputs"].update({key: info.get(key) for key in ("checkpoint", "datalist", "split")})
        paths = write_evaluation_report(report, folder.path)
    summary = summary.published(folder)
    paths = {key: folder.published(path) for key, path in paths.items()}
    return summary, report, paths
