"""Tiny synthetic data sets and GLAM checkpoints for the writer and command tests."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import torch

from monai_glam.data import write_synthetic_dataset
from monai_glam.networks import GLAM
from monai_glam.networks.io import save_model_config
from tests.engines.synthetic_task import TINY_GLAM

__all__ = ["TINY_GLAM", "TINY_PREPROCESSING", "make_checkpoint", "make_dataset", "run_cli", "run_command"]

#: Window and crop settings for 256x160 synthetic mammograms (paper 100/50 scaled to 256 rows: 9/4).
TINY_PREPROCESSING = {"spatial_size": (128, 96), "erosion_iterations": 9, "buffer": 4}


def make_dataset(folder: Path, num: int = 8, seed: int = 3) -> Path:
    """``num`` 256x160 synthetic mammograms, half the patients in ``training`` and half in ``test``."""
    return write_synthetic_dataset(
        folder, num=num, size=(256, 160), seed=seed, write_dicom=False, fractions=(0.5, 0.0, 0.5), progress=False
    )


def make_checkpoint(folder: Path, seed: int = 0, with_config: bool = True) -> Path:
    """A training-style ``last.pt`` of a random tiny GLAM and, optionally, its ``model_config.json``."""
    torch.manual_seed(seed)
    model = GLAM(**TINY_GLAM)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.pt"
    torch.save({"network": model.state_dict(), "epoch": 1}, path)
    if with_config:
        save_model_config(folder / "model_config.json", TINY_GLAM, TINY_PREPROCESSING, thresholds=(0.3, 0.3))
    return path


def run_command(module: ModuleType, argv: list[str]) -> int:
    """Parse ``argv`` with only ``module``'s sub-command registered and run it (errors propagate)."""
    parser = argparse.ArgumentParser(prog="monai-glam")
    module.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def run_cli(argv: list[str]) -> int:
    """``monai_glam.apps.cli.main(argv)``: the whole command line, as a user runs it."""
    from monai_glam.apps import cli

    return cli.main(argv)
