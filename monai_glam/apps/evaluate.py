"""``monai-glam evaluate``: classification and localization metrics of GLAM on a labelled datalist split.

Either runs inference on the split (writing an ``infer`` output folder under ``OUTPUT/predictions``) or reads
an existing one (``--predictions DIR``), then builds the report with
:func:`~monai_glam.metrics.build_evaluation_report`: image- and breast-level ROC-AUC with bootstrap intervals
for the global and local scores and, where ground-truth masks exist, Dice/IoU, pointing game and lesion FROC
of the fused saliency maps. Writes ``report.json``, ``report.md`` and ROC/FROC plots into ``OUTPUT``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_glam.data.image_reader import read_image_array
from monai_glam.metrics import build_evaluation_report, write_evaluation_report
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.writers import OUTPUT_FOLDERS, ImagePrediction, read_predictions

__all__ = ["FRAMES", "add_parser", "downsample_maps", "evaluate_predictions", "load_localization_data"]

#: Where the localization metrics are computed: on the original images (maps written back, raw masks) or on
#: the network input (the GLAM paper's protocol; needs an ``infer --network-frame`` output).
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


def _class_stack(paths: Sequence[Path], what: str) -> np.ndarray:
    arrays = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such {what} file")
        arrays.append(np.asarray(read_image_array(path)[0], dtype=np.float32))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"{what} files {[str(p) for p in paths]} have different shapes {sorted(shapes)}")
    return np.stack(arrays)


def load_localization_data(
    predictions: Sequence[ImagePrediction],
    predictions_dir: str | Path,
    class_names: Sequence[str],
    frame: str = "original",
    downsample: int = 1,
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Saliency maps and ground-truth masks of the images that have a mask for every class.

    Args:
        predictions: rows of an ``infer`` output's ``predictions.csv``.
        predictions_dir: that output folder.
        class_names: class names in channel order.
        frame: ``"original"``: ``saliency/*.nii.gz`` with the datalist's raw-geometry masks; ``"network"``:
            ``network_frame/saliency/*.nii.gz`` with ``network_frame/ground_truth/*.png``.
        downsample: integer factor to shrink maps (block mean) and masks (block max) by, to save memory.

    Returns:
        ``(image_ids, maps, masks)``: lists of ``(C, H, W)`` float32 maps and uint8 masks.

    Raises:
        FileNotFoundError: a map or mask file is missing (the message names it).
        ValueError: an unknown frame, or a map and mask of different shapes.
    """
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    root = Path(predictions_dir)
    saliency_dir = root / OUTPUT_FOLDERS["saliency" if frame == "original" else "network_saliency"]
    ids, maps, masks = [], [], []
    for prediction in predictions:
        if not all(name in prediction.masks for name in class_names):
            continue
        if not saliency_dir.is_dir():
            how = "with --network-frame" if frame == "network" else "with NIfTI maps (--formats nifti)"
            raise FileNotFoundError(f"{saliency_dir}: no saliency maps; run monai-glam infer {how}")
        map_paths = [saliency_dir / f"{prediction.image_id}_{name}.nii.gz" for name in class_names]
        if frame == "original":
            mask_paths = [Path(prediction.masks[name]) for name in class_names]
        else:
            truth_dir = root / OUTPUT_FOLDERS["network_ground_truth"]
            mask_paths = [truth_dir / f"{prediction.image_id}_{name}.png" for name in class_names]
        saliency = _class_stack(map_paths, "saliency map")
        truth = (_class_stack(mask_paths, "ground-truth mask") > 0).astype(np.uint8)
        if saliency.shape != truth.shape:
            raise ValueError(
                f"{prediction.image_id}: saliency maps {saliency.shape} and masks {truth.shape} differ in shape"
            )
        ids.append(prediction.image_id)
        maps.append(downsample_maps(saliency, downsample, "mean"))
        masks.append(downsample_maps(truth, downsample, "max"))
    return ids, maps, masks


def _read_run_info(predictions_dir: Path) -> dict[str, Any]:
    path = predictions_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return info if isinstance(info, dict) else {}


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
    """Evaluate an ``infer`` output folder and write the report.

    Args:
        predictions_dir: folder with ``predictions.csv`` (and maps for the localization metrics).
        output_dir: where ``report.json``, ``report.md`` and the plots go.
        frame: ``"original"`` or ``"network"`` (see :func:`load_localization_data`).
        thresholds: per-class thresholds for Dice/IoU; default the ones the run used (``run.json``), else 0.5.
        downsample: integer factor to shrink maps and masks by before the localization metrics.
        num_bootstrap: bootstrap resamples of the AUC intervals.
        confidence: interval level.
        seed: bootstrap seed.
        peak_sigma: FROC peak smoothing in map pixels; default 4 scaled from 2944 rows to the run's window
            height and the downsampling.
        peak_min_distance: FROC candidate distance in map pixels; default 32, scaled the same way.

    Returns:
        ``(report, paths)``.

    Raises:
        FileNotFoundError: no ``predictions.csv`` or a missing map or mask.
        ValueError: images without labels, or bad arguments.
    """
    root = Path(predictions_dir)
    predictions, class_names = read_predictions(root / "predictions.csv")
    if not predictions:
        raise ValueError(f"{root / 'predictions.csv'} lists no image")
    unlabelled = [p.image for p in predictions if p.label is None]
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} image(s) have no label (e.g. {unlabelled[0]}); evaluate needs a labelled datalist"
        )
    if int(downsample) < 1:
        raise ValueError(f"--downsample must be >= 1, got {downsample}")
    info = _read_run_info(root)
    if thresholds is None:
        thresholds = info.get("thresholds") or [0.5] * len(class_names)
    window_rows = int((info.get("window") or PAPER_WINDOW_SIZE)[0])
    scale = window_rows / PAPER_WINDOW_SIZE[0] / int(downsample)
    sigma = float(peak_sigma) if peak_sigma is not None else max(0.5, 4.0 * scale)
    distance = int(peak_min_distance) if peak_min_distance is not None else max(1, round(32 * scale))
    ids, maps, masks = load_localization_data(predictions, root, class_names, frame, int(downsample))
    scores = {
        "global": np.asarray([p.prob_global for p in predictions]),
        "local": np.asarray([p.prob_local for p in predictions]),
    }
    report = build_evaluation_report(
        scores,
        np.asarray([p.label for p in predictions]),
        breast_ids=[p.breast_id for p in predictions],
        saliency=maps or None,
        masks=masks or None,
        thresholds=tuple(float(t) for t in thresholds),
        class_names=class_names,
        num_bootstrap=num_bootstrap,
        confidence=confidence,
        seed=seed,
        peak_sigma=sigma,
        peak_min_distance=distance,
    )
    report["inputs"] = {
        "predictions": str(root.resolve()),
        "frame": frame,
        "downsample": int(downsample),
        "num_localization_images": len(ids),
        "checkpoint": info.get("checkpoint"),
        "datalist": info.get("datalist"),
        "split": info.get("split"),
    }
    return report, write_evaluation_report(report, output_dir)


def _run(args: argparse.Namespace) -> int:
    from monai_glam.apps.infer import prepare_model, report_summary, run_inference
    from monai_glam.data import read_datalist

    output = Path(args.output)
    if args.downsample < 1:
        raise ValueError(f"--downsample must be >= 1, got {args.downsample}")
    status = 0
    if args.predictions is not None:
        predictions_dir = Path(args.predictions)
        if not (predictions_dir / "predictions.csv").is_file():
            raise FileNotFoundError(f"{predictions_dir}: no predictions.csv (an output folder of monai-glam infer)")
    else:
        if args.checkpoint is None:
            raise ValueError("--datalist needs --checkpoint (or pass --predictions DIR of an infer run)")
        items = read_datalist(args.datalist, args.split)
        if not items:
            raise ValueError(f"{args.datalist} has no {args.split!r} items")
        model, settings, run_info = prepare_model(args, network_frame=args.frame == "network")
        run_info.update({"datalist": str(Path(args.datalist).resolve()), "split": args.split})
        predictions_dir = output / "predictions"
        summary = run_inference(items, model, predictions_dir, settings, run_info=run_info)
        status = report_summary(summary, "evaluate")
    report, paths = evaluate_predictions(
        predictions_dir,
        output,
        frame=args.frame,
        thresholds=args.thresholds,
        downsample=args.downsample,
        num_bootstrap=args.num_bootstrap,
        seed=args.seed,
        peak_sigma=args.peak_sigma,
        peak_min_distance=args.peak_min_distance,
    )
    located = report["inputs"]["num_localization_images"]
    print(f"evaluate: {report['num_images']} image(s), {located} with masks -> report {paths['markdown']}")
    print(f"  {', '.join(str(path) for key, path in paths.items() if key != 'markdown')}")
    return status


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command."""
    from monai_glam.apps.infer import add_inference_arguments

    parser = subparsers.add_parser(
        "evaluate",
        help="ROC-AUC with bootstrap CIs, Dice/IoU, pointing game and lesion FROC on a labelled split",
        description=(
            "Run GLAM on a labelled datalist split (outputs under OUTPUT/predictions) or read an existing "
            "'monai-glam infer' folder (--predictions), then write OUTPUT/report.json, report.md, roc_image.png, "
            "roc_breast.png and, when the images have masks, froc.png: image- and breast-level ROC-AUC of the "
            "global and local scores with bootstrap confidence intervals, Dice and IoU of the thresholded maps, "
            "pointing game and lesion-level FROC."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--datalist", help="labelled datalist JSON to run inference on")
    source.add_argument("--predictions", metavar="DIR", help="output folder of monai-glam infer to evaluate")
    parser.add_argument("--split", default="test", help="datalist split (default: test)")
    parser.add_argument("--output", required=True, help="report folder (created)")
    parser.add_argument(
        "--frame",
        choices=FRAMES,
        default="original",
        help="localization metrics on the original images or on the network input (default: original)",
    )
    parser.add_argument("--downsample", type=int, default=1, help="shrink maps and masks by this factor (default: 1)")
    parser.add_argument("--num-bootstrap", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument("--peak-sigma", type=float, help="FROC peak smoothing in pixels (default: 4 at 2944 rows)")
    parser.add_argument("--peak-min-distance", type=int, help="FROC peak distance in pixels (default: 32 at 2944 rows)")
    add_inference_arguments(parser, checkpoint_required=False)  # unused with --predictions
    parser.set_defaults(func=_run)
    return parser
