"""Fixtures of the bundle tests: a small synthetic data set and a bundle trained on it for one epoch."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BUNDLE_DIR = REPO_ROOT / "bundle"
CONFIGS = BUNDLE_DIR / "configs"
#: Raw synthetic images differ from the ``tiny`` window (256 x 160), so inverting the preprocessing is tested.
RAW_SIZE = (320, 200)
#: Overrides shared by every workflow test: the CPU-sized model, one short epoch.
TINY = {"preset": "tiny", "batch_size": 4, "image_interval": 1}
#: MONAI's security notice on every config-driven run (expected here: the configs are ours).
CONFIG_WARNING = "ignore:parsing config_file:UserWarning"


def config(*names: str) -> list[str]:
    """Paths of bundle config files, in override order."""
    return [str(CONFIGS / name) for name in names]


def create(config_files: list[str], workflow_type: str, bundle_root: Path, dataset_dir: Path, **overrides):
    """``monai.bundle.create_workflow`` of the bundle with the test overrides, initialised."""
    from monai.bundle import create_workflow

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="parsing config_file")
        return create_workflow(
            config_file=config_files,
            meta_file=str(CONFIGS / "metadata.json"),
            workflow_type=workflow_type,
            bundle_root=str(bundle_root),
            dataset_dir=str(dataset_dir),
            **{**TINY, **overrides},
        )


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """32 synthetic mammograms (8 patients): 16 training, 8 validation and 8 test images."""
    from monai_glam.data import write_synthetic_dataset

    root = tmp_path_factory.mktemp("glam_synthetic")
    write_synthetic_dataset(
        root, num=32, size=RAW_SIZE, seed=3, write_dicom=False, fractions=(0.5, 0.25, 0.25), progress=False
    )
    return root


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory, synthetic_dir) -> Path:
    """A bundle root after ``train.json`` ran the global stage for one epoch; returns the root."""
    root = tmp_path_factory.mktemp("glam_bundle")
    workflow = create(config("train.json"), "train", root, synthetic_dir, **{"train#trainer#max_epochs": 1})
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    return root
