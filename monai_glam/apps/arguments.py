"""Options and messages shared by the ``infer`` and ``evaluate`` sub-commands (no sub-command logic)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from monai_glam.apps.errors import CommandError
from monai_glam.engines import ENGINES, InferenceSummary
from monai_glam.utils.distributed import is_main_process
from monai_glam.utils.precision import PRECISIONS
from monai_glam.writers import MAP_FORMATS

__all__ = [
    "NON_NEGATIVE_INT",
    "POSITIVE_INT",
    "PROBABILITY",
    "SEED",
    "WINDOW_SIDE",
    "OneLineArgumentParser",
    "add_inference_arguments",
    "device_name",
    "inference_options",
    "integer",
    "number",
    "report_summary",
]


def add_inference_arguments(parser: argparse.ArgumentParser, checkpoint_required: bool = True) -> None:
    """Model, preprocessing, inference and writing options (``infer``; ``evaluate`` adds the same set)."""
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
        "--window",
        type=WINDOW_SIDE,
        nargs=2,
        metavar=("H", "W"),
        help="model window (default: model config, else 2944 1920)",
    )
    parser.add_argument(
        "--erosion-iterations",
        type=NON_NEGATIVE_INT,
        help="crop erosion radius (default: model config, else 100 scaled to H)",
    )
    parser.add_argument(
        "--buffer", type=NON_NEGATIVE_INT, help="crop margin (default: model config, else 50 scaled to H)"
    )
    parser.add_argument(
        "--thresholds",
        type=PROBABILITY,
        nargs=2,
        metavar=("B", "M"),
        help="benign and malignant thresholds of the fused map (default: model config, else 0.5 0.5)",
    )
    parser.add_argument(
        "--sliding-window",
        action="store_true",
        help="run windows of the model size over the whole cropped breast instead of one best-center window",
    )
    parser.add_argument(
        "--overlap",
        type=number(0.0, 1.0, open_maximum=True),
        default=0.25,
        help="sliding-window overlap (default: 0.25)",
    )
    parser.add_argument("--sw-batch-size", type=POSITIVE_INT, default=1, help="windows per forward pass (default: 1)")
    parser.add_argument(
        "--device", type=device_name, default="auto", help="torch device: auto, cpu, cuda, cuda:1 (default: auto)"
    )
    parser.add_argument(
        "--formats",
        nargs="*",
        choices=sorted(MAP_FORMATS),
        default=["nifti", "png"],
        help="map and mask formats; none writes no maps (default: nifti png)",
    )
    parser.add_argument("--no-overlays", action="store_true", help="do not write overlay PNGs")
    parser.add_argument(
        "--overlay-size", type=POSITIVE_INT, default=512, help="longest side of an overlay panel (default: 512)"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32, bf16 (bfloat16 autocast) or auto (bf16 where the device runs it natively) (default: fp32)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="torch",
        help="forward-pass engine: torch, or the model exported to ONNX and run in onnxruntime or openvino "
        "(CPU, float32, whole image; needs pip install onnx onnxscript onnxruntime|openvino) (default: torch)",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hold the network in channels-last memory format, the faster layout for oneDNN and cuDNN convolutions "
        "(outputs equal up to float rounding; engine torch only) (default: on)",
    )
    parser.add_argument(
        "--write-workers",
        type=POSITIVE_INT,
        default=1,
        help="threads writing maps, masks and overlays while the forward pass runs; more help where writing is "
        "slower than the forward pass (GPU, bf16, small presets) (default: 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="OUTPUT holds earlier results: replace them once this run has results (default: refuse)",
    )


def inference_options(args: argparse.Namespace, network_frame: bool = False) -> dict[str, Any]:
    """The :func:`~monai_glam.engines.inference_settings` keyword arguments of the parsed options."""
    return {
        "window": args.window,
        "erosion_iterations": args.erosion_iterations,
        "buffer": args.buffer,
        "thresholds": args.thresholds,
        "sliding_window": args.sliding_window,
        "overlap": args.overlap,
        "sw_batch_size": args.sw_batch_size,
        "device": args.device,
        "formats": args.formats,
        "network_frame": network_frame,
        "overlays": not args.no_overlays,
        "overlay_size": args.overlay_size,
        "progress": not args.no_progress,
        "dicom": bool(getattr(args, "dicom", False)),
        "precision": args.precision,
        "engine": args.engine,
        "channels_last": args.channels_last,
        "write_workers": args.write_workers,
    }


def report_summary(summary: InferenceSummary, command: str) -> int:
    """Print where the outputs are; exit status 0, or 1 when some items failed.

    Raises:
        CommandError: every item failed.
    """
    if not summary.predictions:
        raise CommandError(f"no image could be processed; {summary.failures.summary()}")
    if not is_main_process():  # under torchrun rank 0 reports the merged run
        return 1 if summary.failures else 0
    print(f"{command}: {len(summary.predictions)} image(s) -> {summary.paths['images']}")
    print(f"  saliency maps, masks and overlays under {summary.output_dir}")
    if summary.dicom_skipped:
        print(
            f"  no DICOM results for {len(summary.dicom_skipped)} image(s) that are not DICOM files (first: "
            f"{summary.dicom_skipped[0]}); run.json lists them"
        )
    if summary.failures:
        print(f"  {summary.failures.summary()}; see {summary.paths['failures']}")
        return 1
    return 0


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the option (exit status 2)."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for integers in ``[minimum, maximum]``: ``argument --x: must be an integer >= 1, got 0``."""
    bounds = " and ".join(
        text
        for text in (f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else "")
        if text
    )
    expected = f"an integer {bounds}".strip()

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(
    minimum: float | None = None, maximum: float | None = None, open_minimum: bool = False, open_maximum: bool = False
) -> Callable[[str], float]:
    """An argparse ``type`` for finite numbers in a range (``open_*`` excludes that end)."""
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_minimum else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if open_maximum else '<='} {maximum:g}")
    expected = f"a number {' and '.join(parts)}".strip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        too_low = minimum is not None and (value <= minimum if open_minimum else value < minimum)
        too_high = maximum is not None and (value >= maximum if open_maximum else value > maximum)
        if not math.isfinite(value) or too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


#: Argparse types of the options several commands share.
POSITIVE_INT = integer(minimum=1)
NON_NEGATIVE_INT = integer(minimum=0)
SEED = integer(minimum=0, maximum=2**32 - 1)
PROBABILITY = number(0.0, 1.0)
#: One side of a network window: far above any mammogram (the paper's window is 2944x1920), below sizes that only
#: fail deep inside the padding.
WINDOW_SIDE = integer(minimum=1, maximum=16384)


def device_name(text: str) -> str:
    """An argparse ``type`` for ``--device``: a name torch can use on this machine (``auto``, ``cpu``, ``cuda:1``)."""
    from monai_glam.utils.device import resolve_device

    try:
        resolve_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text
