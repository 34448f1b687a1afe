"""Options and messages shared by the ``infer`` and ``evaluate`` sub-commands (no sub-command logic)."""

from __future__ import annotations

import argparse
from typing import Any

from monai_glam.apps.errors import CommandError
from monai_glam.engines import InferenceSummary
from monai_glam.writers import MAP_FORMATS

__all__ = ["add_inference_arguments", "inference_options", "report_summary"]


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
    }


def report_summary(summary: InferenceSummary, command: str) -> int:
    """Print where the outputs are; exit status 0, or 1 when some items failed.

    Raises:
        CommandError: every item failed.
    """
    if not summary.predictions:
        raise CommandError(f"no image could be processed; {summary.failures.summary()}")
    print(f"{command}: {len(summary.predictions)} image(s) -> {summary.paths['images']}")
    print(f"  saliency maps, masks and overlays under {summary.output_dir}")
    if summary.failures:
        print(f"  {summary.failures.summary()}; see {summary.paths['failures']}")
        return 1
    return 0
