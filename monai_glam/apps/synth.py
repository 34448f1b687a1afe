"""``monai-glam synth``: write a synthetic mammography data set (PNG, DICOM, masks, datalist)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from monai_glam.apps.arguments import POSITIVE_INT, SEED, number
from monai_glam.data.synthetic import (
    DENSITY_GRADES,
    DIFFICULTIES,
    MIN_SIZE,
    SyntheticMammogramGenerator,
    write_synthetic_dataset,
)
from monai_glam.utils.output_folder import check_output_folder, remove_entries

__all__ = ["add_parser", "run"]

#: What ``synth`` writes in ``--out`` (``--overwrite`` deletes these first, so no earlier image is left behind).
_SYNTH_OUTPUTS = ("images", "masks", "dicom", "datalist.json")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``synth`` sub-command."""
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic mammograms with lesion masks and a datalist",
        description=(
            "Generate synthetic screening mammograms (four views per exam) with benign and malignant lesions, "
            "ground-truth masks and image-level labels. Writes images/*.png (16-bit, 12-bit values), "
            "masks/*_{benign,malignant}.png, dicom/*.dcm and datalist.json under --out."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--num", type=POSITIVE_INT, default=8, help="number of images (default: 8)")
    parser.add_argument(
        "--size",
        type=POSITIVE_INT,
        nargs=2,
        metavar=("H", "W"),
        default=(512, 320),
        help=f"image size, at least {MIN_SIZE[0]} {MIN_SIZE[1]} (default: 512 320)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--difficulty",
        choices=DIFFICULTIES,
        default="easy",
        help=(
            "easy: large, bright lesions (the demo's data); moderate and realistic: BI-RADS density grades a-d with "
            "masking by dense tissue, 5-30 mm lesions (moderate: 15-35 mm, higher contrast) and unlabelled decoys "
            "(lymph nodes, vessels, isolated calcifications) (default: easy)"
        ),
    )
    parser.add_argument(
        "--density",
        choices=DENSITY_GRADES,
        nargs="+",
        metavar="GRADE",
        help="moderate and realistic only: give every exam one of these BI-RADS grades (a b c d; default: all four "
        "at their screening frequencies, about 10/40/40/10 %%)",
    )
    parser.add_argument("--no-dicom", action="store_true", help="write PNG files only")
    parser.add_argument(
        "--fractions",
        type=number(0.0, 1.0),
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        default=(0.8, 0.1, 0.1),
        help="patient shares of the datalist splits, summing to 1 (default: 0.8 0.1 0.1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="--out holds files: delete its images/, masks/, dicom/ and datalist.json first (default: refuse)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate the data set described by the parsed arguments; returns the exit status."""
    height, width = args.size
    if height < MIN_SIZE[0] or width < MIN_SIZE[1]:
        raise ValueError(f"--size must be at least {MIN_SIZE[0]} {MIN_SIZE[1]} (H W), got {height} {width}")
    if not math.isclose(sum(args.fractions), 1.0, abs_tol=1e-6):
        shares = " ".join(f"{share:g}" for share in args.fractions)
        raise ValueError(f"--fractions must sum to 1, got {shares} (sum {sum(args.fractions):g})")
    if args.density and args.difficulty == "easy":
        raise ValueError(
            f"--density applies to --difficulty moderate and realistic, not easy (got {' '.join(args.density)})"
        )
    # Built before anything is written, so a bad setting leaves --out untouched.
    generator = SyntheticMammogramGenerator(
        size=tuple(args.size), seed=args.seed, difficulty=args.difficulty, density=args.density
    )
    check_output_folder(args.out, args.overwrite, option="--out")
    if args.overwrite:
        remove_entries(args.out, _SYNTH_OUTPUTS)
    datalist = write_synthetic_dataset(
        args.out,
        num=args.num,
        write_dicom=not args.no_dicom,
        fractions=tuple(args.fractions),
        progress=not args.no_progress,
        generator=generator,
    )
    print(f"wrote {args.num} synthetic mammograms and {datalist}")
    return 0
