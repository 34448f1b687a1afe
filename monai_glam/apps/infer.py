"""``monai-glam infer``: run a trained GLAM on mammograms and write scores, maps, masks and overlays.

Argument parsing only; the work is :func:`monai_glam.engines.run_inference` (see its module for the pipeline).
"""

from __future__ import annotations

import argparse
from typing import Any

from monai_glam.apps.arguments import add_inference_arguments, inference_options, report_summary
from monai_glam.data import read_datalist
from monai_glam.engines import collect_images, load_inference_model, run_inference

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    if args.datalist is not None:
        items = read_datalist(args.datalist, args.split, require_label=False)
        if not items:
            raise ValueError(f"{args.datalist} has no {args.split!r} items")
    else:
        items = collect_images(args.images)
    model, settings, run_info = load_inference_model(
        args.checkpoint, args.model_config, **inference_options(args, args.network_frame)
    )
    run_info.update({"datalist": args.datalist, "split": args.split if args.datalist else None})
    summary = run_inference(items, model, args.output, settings, run_info=run_info, overwrite=args.overwrite)
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
            "saliency/ and masks/ (per class, NIfTI and 16-bit PNG, in the original image geometry), overlays/ (the "
            "raw image in its own orientation and size with the heat maps, patch boxes and ground-truth contours "
            "mapped back onto it), failures.json (skipped items) and run.json. Exit status 1 when some items "
            "failed. An OUTPUT that already holds files is refused unless --overwrite; Ctrl-C/SIGTERM stops after "
            "the current image with the tables listing the images done (exit status 130/143)."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--datalist", help="datalist JSON (labels and masks are carried into the outputs)")
    source.add_argument("--images", nargs="+", metavar="PATH", help="image files or folders of images")
    parser.add_argument("--split", default="test", help="datalist split (default: test)")
    parser.add_argument("--output", required=True, help="output folder (created)")
    add_inference_arguments(parser)
    parser.add_argument(
        "--dicom",
        action="store_true",
        help="for DICOM sources also write dicom/<id>_masks.seg.dcm, _saliency.seg.dcm (Segmentations) and "
        "_overlay.sc.dcm (RGB Secondary Capture); needs the dicom extra (highdicom)",
    )
    parser.add_argument(
        "--network-frame",
        action="store_true",
        help="also write maps, masks and overlays (network_overlays/) in the network frame",
    )
    parser.set_defaults(func=_run)
    return parser
