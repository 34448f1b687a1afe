"""``monai-glam infer``: run a trained GLAM on mammograms and write scores, maps, masks and overlays.

The images go through the published preprocessing (breast crop, right-facing orientation, best-center window,
standardization), GLAM runs on the window (or, with ``--sliding-window``, on the whole cropped breast window by
window), and the outputs are written by :class:`~monai_glam.writers.PredictionWriter`: the maps and masks in
the original image geometry (the spatial preprocessing undone with MONAI's ``Invertd``). A bad item is
reported, listed in ``failures.json`` and skipped.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose, DivisiblePadd, SpatialPadd

from monai_glam.apps.model_io import ModelConfig, load_model, resolve_model_config
from monai_glam.inferers import GLAMInferer, GLAMSlidingWindowInferer
from monai_glam.networks import GLAM
from monai_glam.transforms import glam_transforms, scaled_crop_parameters
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.transforms.dictionary import BreastCropd, LoadMammogramd, OrientToRightd, StandardizeIntensityd
from monai_glam.writers import (
    CLASS_NAMES,
    ITEM_ERRORS,
    MAP_FORMATS,
    FailureLog,
    ImagePrediction,
    OriginalGeometryInverter,
    PredictionWriter,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MAP_STRIDE",
    "InferenceSettings",
    "InferenceSummary",
    "add_inference_arguments",
    "add_parser",
    "aligned_overlap",
    "build_inference_transforms",
    "collect_images",
    "prepare_model",
    "report_summary",
    "resolve_device",
    "run_inference",
    "settings_from_args",
]

logger = logging.getLogger(__name__)

#: Suffixes of the files ``--images FOLDER`` picks up.
IMAGE_SUFFIXES = (".png", ".dcm", ".dicom", ".nii", ".nii.gz")
#: The map stride of GLAM's coarse outputs: sliding windows must start on multiples of it.
MAP_STRIDE = 16
_OUTPUT_KEYS = ("prob_global", "prob_local", "saliency", "patch_boxes")


@dataclass(frozen=True)
class InferenceSettings:
    """How to preprocess, run and write.

    Attributes:
        window: (h, w) model window (paper: 2944x1920).
        erosion_iterations: breast-crop erosion radius (paper: 100 at 2944x1920).
        buffer: breast-crop margin (paper: 50).
        thresholds: per-class thresholds of the fused map.
        sliding_window: run windows of ``window`` over the whole cropped breast instead of one best-center window.
        overlap: sliding-window overlap, rounded per dimension so every window starts on a multiple of 16.
        sw_batch_size: windows per forward pass.
        device: torch device.
        formats: map formats to write (``nifti``, ``png``); empty writes no maps.
        network_frame: also write maps and masks in the network frame.
        overlays: write one overlay PNG per image.
        overlay_size: longest side of an overlay panel.
        progress: show a progress bar.
    """

    window: tuple[int, int] = PAPER_WINDOW_SIZE
    erosion_iterations: int = 100
    buffer: int = 50
    thresholds: tuple[float, ...] = (0.5, 0.5)
    sliding_window: bool = False
    overlap: float = 0.25
    sw_batch_size: int = 1
    device: str = "cpu"
    formats: tuple[str, ...] = ("nifti", "png")
    network_frame: bool = False
    overlays: bool = True
    overlay_size: int = 512
    progress: bool = True

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (for ``run.json``)."""
        return {
            "window": list(self.window),
            "erosion_iterations": self.erosion_iterations,
            "buffer": self.buffer,
            "sliding_window": self.sliding_window,
            "overlap": self.overlap,
            "device": self.device,
        }


@dataclass
class InferenceSummary:
    """What :func:`run_inference` produced.

    Attributes:
        predictions: one record per image that went through.
        failures: the items that were skipped.
        paths: the tables, ``failures.json`` and ``run.json``.
        output_dir: the run's folder.
    """

    predictions: list[ImagePrediction]
    failures: FailureLog
    paths: dict[str, Path]
    output_dir: Path


def aligned_overlap(roi_size: Sequence[int], overlap: float, stride: int = MAP_STRIDE) -> tuple[float, float]:
    """Per-dimension overlaps close to ``overlap`` whose window steps are multiples of ``stride``.

    MONAI steps ``int(roi * (1 - overlap))`` pixels; GLAM's coarse maps need steps on a multiple of 16.

    Raises:
        ValueError: an overlap outside [0, 1) or a window size that is not a multiple of ``stride``.
    """
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    overlaps = []
    for roi in (int(r) for r in roi_size):
        if roi % stride:
            raise ValueError(f"the sliding window {tuple(roi_size)} must be a multiple of {stride} in each dimension")
        step = max(stride, int(roi * (1.0 - float(overlap))) // stride * stride)
        # Half a pixel more than the step: int() of roi * (1 - overlap) then gives exactly the step.
        overlaps.append(0.0 if step >= roi else 1.0 - (step + 0.5) / roi)
    return overlaps[0], overlaps[1]


def build_inference_transforms(
    window: Sequence[int],
    erosion_iterations: int,
    buffer: int,
    sliding_window: bool = False,
    mask_keys: Sequence[str] = ("mask_benign", "mask_malignant"),
) -> Compose:
    """The preprocessing chain for inference; its spatial steps are invertible.

    Whole-image mode is :func:`~monai_glam.transforms.glam_transforms` without targets (best-center window of size
    ``window``). Sliding-window mode loads, crops to the breast and orients it like the published pipeline, then
    pads the cropped image at its end to a multiple of 16 and at least ``window`` instead of cutting a window.
    Masks that an item lacks become empty masks marked ``mask_missing``.
    """
    if not sliding_window:
        return glam_transforms(
            window, with_targets=False, mask_keys=mask_keys, erosion_iterations=erosion_iterations, buffer=buffer
        )
    keys = ("image", *mask_keys)
    return Compose(
        [
            LoadMammogramd(keys, mask_keys=mask_keys, fill_missing_masks=True),
            BreastCropd(keys, erosion_iterations=erosion_iterations, buffer=buffer),
            OrientToRightd(keys),
            DivisiblePadd(keys, k=MAP_STRIDE, method="end"),
            SpatialPadd(keys, spatial_size=tuple(window), method="end"),
            StandardizeIntensityd("image"),
        ]
    )


def resolve_device(name: str) -> str:
    """``"auto"`` is ``"cuda"`` when a GPU is available, else ``"cpu"``; other names are checked by torch.

    Raises:
        ValueError: an unknown device name, or CUDA asked for but unavailable.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return name


def collect_images(paths: Sequence[str]) -> list[dict[str, str]]:
    """Datalist-like items ``{"image": path}`` from files and folders (a folder gives its image files, sorted).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no image found.
    """
    items = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
            items += [{"image": str(p)} for p in files]
        elif path.is_file():
            items.append({"image": str(path)})
        else:
            raise FileNotFoundError(f"{path}: no such image file or folder")
    if not items:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {list(paths)}")
    return items


def _per_image(outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The first (only) image of a batch of outputs, on the CPU."""
    return {key: value[0].detach().cpu() for key, value in outputs.items() if key in _OUTPUT_KEYS}


def run_inference(
    items: Sequence[Mapping[str, Any]],
    model: GLAM,
    output_dir: str | Path,
    settings: InferenceSettings | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
    run_info: Mapping[str, Any] | None = None,
) -> InferenceSummary:
    """Predict every item and write the outputs; a failing item is recorded and skipped.

    Args:
        items: datalist items (``image``, optional ``label``, ``mask_<class>``, ``laterality``, ``view``,
            ``horizontal_flip``, ``patient_id``, ``exam_id``).
        model: GLAM in eval mode, on ``settings.device``.
        output_dir: the output folder (created).
        settings: preprocessing, inference and writing options (default :class:`InferenceSettings`).
        class_names: class names in channel order.
        run_info: extra entries for ``run.json`` (e.g. the checkpoint).

    Returns:
        :class:`InferenceSummary`.
    """
    from tqdm import tqdm

    settings = settings or InferenceSettings()
    mask_keys = tuple(f"mask_{name}" for name in class_names)
    chain = build_inference_transforms(
        settings.window, settings.erosion_iterations, settings.buffer, settings.sliding_window, mask_keys
    )
    if settings.sliding_window:
        inferer: Any = GLAMSlidingWindowInferer(
            roi_size=settings.window,
            sw_batch_size=settings.sw_batch_size,
            overlap=aligned_overlap(settings.window, settings.overlap),
        )
    else:
        inferer = GLAMInferer()
    writer = PredictionWriter(
        output_dir,
        OriginalGeometryInverter(chain),
        thresholds=settings.thresholds,
        class_names=class_names,
        formats=settings.formats,
        network_frame=settings.network_frame,
        overlays=settings.overlays,
        overlay_size=settings.overlay_size,
    )
    failures = FailureLog("infer")
    for index, item in enumerate(tqdm(items, desc="infer", unit="image", disable=not settings.progress)):
        source = item.get("image", "?")
        stage = "preprocess"
        try:
            data = chain(dict(item))
            stage = "inference"
            with torch.inference_mode():
                batch = data["image"].as_tensor()[None].to(settings.device)
                outputs = _per_image(inferer(batch, model))
            stage = "write"
            writer.write(writer.new_image_id(source), item, data, outputs)
        except ITEM_ERRORS as err:
            failures.add(index, source, stage, err)
    info = {**dict(run_info or {}), **settings.to_json(), "num_items": len(items)}
    paths = writer.finalize(failures, info)
    return InferenceSummary(writer.predictions, failures, paths, Path(output_dir))


# ---------------------------------------------------------------------------------------------------------------
# command line


def add_inference_arguments(parser: argparse.ArgumentParser, checkpoint_required: bool = True) -> None:
    """Model, preprocessing, inference and writing options shared by ``infer`` and ``evaluate``."""
    parser.add_argument(
        "--checkpoint",
        required=checkpoint_required,
        help="weights: last.pt/best.pt, a GLAM state dict, or a published NYU .ckpt (detected from its keys)",
    )
    parser.add_argument(
        "--model-config",
        help="JSON of GLAM arguments (default: model_config.json beside the checkpoint, else the paper's GLAM)",
    )
    parser.add_argument(
        "--window", type=int, nargs=2, metavar=("H", "W"), help="model window (default: model config, else 2944 1920)"
    )
    parser.add_argument(
        "--erosion-iterations", type=int, help="crop erosion radius (default: model config, else 100 scaled to H)"
    )
    parser.add_argument("--buffer", type=int, help="crop margin (default: model config, else 50 scaled to H)")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs=2,
        metavar=("B", "M"),
        help="benign and malignant thresholds of the fused map (default: model config, else 0.5 0.5)",
    )
    parser.add_argument(
        "--sliding-window",
        action="store_true",
        help="run windows of the model size over the whole cropped breast instead of one best-center window",
    )
    parser.add_argument("--overlap", type=float, default=0.25, help="sliding-window overlap (default: 0.25)")
    parser.add_argument("--sw-batch-size", type=int, default=1, help="windows per forward pass (default: 1)")
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1 (default: auto)")
    parser.add_argument(
        "--formats",
        nargs="*",
        choices=sorted(MAP_FORMATS),
        default=["nifti", "png"],
        help="map and mask formats; none writes no maps (default: nifti png)",
    )
    parser.add_argument("--no-overlays", action="store_true", help="do not write overlay PNGs")
    parser.add_argument("--overlay-size", type=int, default=512, help="longest side of an overlay panel (default: 512)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _positive(name: str, value: int) -> int:
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def settings_from_args(args: argparse.Namespace, config: ModelConfig, network_frame: bool = False) -> InferenceSettings:
    """Combine the command-line options with the model config's preprocessing and thresholds.

    Raises:
        ValueError: a bad window, crop parameter, threshold, overlap or device (the message names it).
    """
    preprocessing = config.preprocessing
    window = tuple(args.window) if args.window else tuple(preprocessing.get("spatial_size", PAPER_WINDOW_SIZE))
    if len(window) != 2 or min(window) < 1:
        raise ValueError(f"--window must be two positive integers, got {list(window)}")
    erosion, buffer = scaled_crop_parameters(window)
    if args.erosion_iterations is not None:
        erosion = args.erosion_iterations
    else:
        erosion = preprocessing.get("erosion_iterations", erosion)
    buffer = args.buffer if args.buffer is not None else preprocessing.get("buffer", buffer)
    if erosion < 0 or buffer < 0:
        raise ValueError(f"--erosion-iterations and --buffer must be >= 0, got {erosion} and {buffer}")
    thresholds = tuple(args.thresholds) if args.thresholds else (config.thresholds or (0.5,) * len(CLASS_NAMES))
    if len(thresholds) != len(CLASS_NAMES) or not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"--thresholds must be two numbers in [0, 1], got {list(thresholds)}")
    if args.sliding_window:
        aligned_overlap(window, args.overlap)  # checks the window and the overlap before any work
    return InferenceSettings(
        window=(int(window[0]), int(window[1])),
        erosion_iterations=int(erosion),
        buffer=int(buffer),
        thresholds=tuple(float(t) for t in thresholds),
        sliding_window=bool(args.sliding_window),
        overlap=float(args.overlap),
        sw_batch_size=_positive("--sw-batch-size", args.sw_batch_size),
        device=resolve_device(args.device),
        formats=tuple(args.formats),
        network_frame=network_frame,
        overlays=not args.no_overlays,
        overlay_size=_positive("--overlay-size", args.overlay_size),
        progress=not args.no_progress,
    )


def prepare_model(args: argparse.Namespace, network_frame: bool = False) -> tuple[GLAM, InferenceSettings, dict]:
    """Resolve the model config, check the options and load the model; returns it, the settings and run info."""
    config = resolve_model_config(args.checkpoint, args.model_config)
    settings = settings_from_args(args, config, network_frame)
    model = load_model(args.checkpoint, config, settings.device)
    run_info = {
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "model_config": str(config.source.resolve()) if config.source is not None else None,
    }
    return model, settings, run_info


def report_summary(summary: InferenceSummary, command: str) -> int:
    """Print where the outputs are; exit status 0, or 1 when some items failed.

    Raises:
        CommandError: every item failed.
    """
    from monai_glam.apps.cli import CommandError

    if not summary.predictions:
        raise CommandError(f"no image could be processed; {summary.failures.summary()}")
    print(f"{command}: {len(summary.predictions)} image(s) -> {summary.paths['images']}")
    print(f"  saliency maps, masks and overlays under {summary.output_dir}")
    if summary.failures:
        print(f"  {summary.failures.summary()}; see {summary.paths['failures']}")
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from monai_glam.data import read_datalist

    if args.datalist is not None:
        items = read_datalist(args.datalist, args.split, require_label=False)
        if not items:
            raise ValueError(f"{args.datalist} has no {args.split!r} items")
    else:
        items = collect_images(args.images)
    model, settings, run_info = prepare_model(args, network_frame=args.network_frame)
    run_info.update({"datalist": args.datalist, "split": args.split if args.datalist else None})
    summary = run_inference(items, model, args.output, settings, run_info=run_info)
    return report_summary(summary, "infer")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``infer`` sub-command."""
    parser = subparsers.add_parser(
        "infer",
        help="run GLAM on mammograms: scores CSV, saliency maps and masks in the original geometry, overlays",
        description=(
            "Preprocess each mammogram as published (breast crop, right-facing orientation, best-center window, "
            "standardization), run GLAM and write under --output: predictions.csv (benign and malignant scores of "
            "the global and local modules per image), breasts.csv and exams.csv (means over views), "
            "saliency/ and masks/ (per class, NIfTI and 16-bit PNG, in the original image geometry), overlays/, "
            "failures.json (skipped items) and run.json. Exit status 1 when some items failed."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--datalist", help="datalist JSON (labels and masks are carried into the outputs)")
    source.add_argument("--images", nargs="+", metavar="PATH", help="image files or folders of images")
    parser.add_argument("--split", default="test", help="datalist split (default: test)")
    parser.add_argument("--output", required=True, help="output folder (created)")
    add_inference_arguments(parser)
    parser.add_argument("--network-frame", action="store_true", help="also write maps and masks in the network frame")
    parser.set_defaults(func=_run)
    return parser
