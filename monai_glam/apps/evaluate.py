"""``monai-glam evaluate``: classification and localization metrics of GLAM on a labelled datalist split.

Argument parsing only. With ``--datalist`` it calls :func:`monai_glam.engines.evaluate_datalist` (inference on
the split, outputs under ``OUTPUT/predictions``, maps kept in memory for the metrics); with ``--predictions DIR``
:func:`monai_glam.engines.evaluate_predictions` reads an existing ``infer`` folder. The report (``report.json``,
``report.md``, ROC/FROC plots) is written by :func:`~monai_glam.metrics.write_evaluation_report`. Which images
count for localization is documented in
:mod:`monai_glam.metrics.evaluation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from monai_glam.apps.arguments import (
    POSITIVE_INT,
    SEED,
    add_inference_arguments,
    inference_options,
    number,
    report_summary,
)
from monai_glam.data import read_datalist
from monai_glam.engines import evaluate_datalist, evaluate_predictions, load_inference_model
from monai_glam.metrics import FRAMES

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    metrics_options = {
        "frame": args.frame,
        "downsample": args.downsample,
        "num_bootstrap": args.num_bootstrap,
        "seed": args.seed,
        "peak_sigma": args.peak_sigma,
        "peak_min_distance": args.peak_min_distance,
        "overwrite": args.overwrite,
    }
    if args.predictions is not None:
        report, paths = evaluate_predictions(args.predictions, output, thresholds=args.thresholds, **metrics_options)
        status = 0
    else:
        if args.checkpoint is None:
            raise ValueError("--datalist needs --checkpoint (or pass --predictions DIR of an infer run)")
        items = read_datalist(args.datalist, args.split)
        if not items:
            raise ValueError(f"{args.datalist} has no {args.split!r} items")
        model, settings, run_info = load_inference_model(
            args.checkpoint, args.model_config, **inference_options(args, args.frame == "network")
        )
        run_info.update({"datalist": str(Path(args.datalist).resolve()), "split": args.split})
        summary, evaluated, paths = evaluate_datalist(items, model, output, settings, run_info, **metrics_options)
        status = report_summary(summary, "evaluate")
        report = evaluated or {}
    located = report["inputs"]["num_localization_images"]
    print(f"evaluate: {report['num_images']} image(s), {located} with known ground truth -> report {paths['markdown']}")
    print(f"  {', '.join(str(path) for key, path in paths.items() if key != 'markdown')}")
    return status


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="ROC-AUC with bootstrap CIs, Dice/IoU, pointing game and lesion FROC on a labelled split",
        description=(
            "Run GLAM on a labelled datalist split (outputs under OUTPUT/predictions) or read an existing "
            "'monai-glam infer' folder (--predictions), then write OUTPUT/report.json, report.md, roc_image.png, "
            "roc_breast.png and, when the images have masks, froc.png: image- and breast-level ROC-AUC of the "
            "global and local scores with bootstrap confidence intervals, Dice and IoU of the thresholded maps, "
            "pointing game and lesion-level FROC. An image counts for localization when its ground truth is "
            "known for every class (a mask file, or a negative label for that class)."
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
    parser.add_argument(
        "--downsample", type=POSITIVE_INT, default=1, help="shrink maps and masks by this factor (default: 1)"
    )
    parser.add_argument("--num-bootstrap", type=POSITIVE_INT, default=2000, help="bootstrap resamples (default: 2000)")
    parser.add_argument("--seed", type=SEED, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument(
        "--peak-sigma",
        type=number(0.0, open_minimum=True),
        help="FROC peak smoothing in pixels (default: 4 at 2944 rows)",
    )
    parser.add_argument(
        "--peak-min-distance", type=POSITIVE_INT, help="FROC peak distance in pixels (default: 32 at 2944 rows)"
    )
    add_inference_arguments(parser, checkpoint_required=False)  # unused with --predictions
    parser.set_defaults(func=_run)
    return parser
