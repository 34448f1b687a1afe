"""``monai-glam synth``: writes a usable data set whose masks line up with its lesions."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from monai_glam.apps import synth
from monai_glam.data import read_datalist


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="monai-glam")
    synth.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def _all_items(datalist: Path) -> list[dict]:
    return [item for split in ("training", "validation", "test") for item in read_datalist(datalist, split)]


def test_synth_writes_images_masks_dicom_and_datalist(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synthetic"
    assert _run(["synth", "--out", str(out), "--num", "8", "--size", "256", "160", "--seed", "4", "--no-progress"]) == 0
    assert "wrote 8 synthetic mammograms" in capsys.readouterr().out
    items = _all_items(out / "datalist.json")
    assert len(items) == 8
    assert len(list((out / "dicom").glob("*.dcm"))) == 8
    contrasts = []
    for item in items:
        image = np.array(Image.open(item["image"])).astype(np.float64)
        assert image.shape == (256, 160) and image.max() <= 4095
        for kind, label in zip(("benign", "malignant"), item["label"], strict=True):
            mask = np.array(Image.open(item[f"mask_{kind}"])) > 0
            assert mask.any() == bool(label)
            if mask.any():
                ring = ndimage.binary_dilation(mask, iterations=8) & ~ndimage.binary_dilation(mask, iterations=3)
                contrasts.append(image[mask].mean() - image[ring & (image > 0)].mean())
    assert contrasts and min(contrasts) > 100  # every lesion is brighter inside its mask than around it


def test_synth_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        _run(["synth", "--out", str(tmp_path / name), "--num", "2", "--seed", "9", "--no-dicom", "--no-progress"])
    for path in (tmp_path / "a" / "images").glob("*.png"):
        assert path.read_bytes() == (tmp_path / "b" / "images" / path.name).read_bytes()
    assert not (tmp_path / "a" / "dicom").exists()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--num", "0"], "--num"),
        (["--size", "16", "16"], "size"),
        (["--fractions", "0.5", "0.5", "0.5"], "fractions"),
    ],
)
def test_synth_rejects_bad_values(tmp_path: Path, argv: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _run(["synth", "--out", str(tmp_path), "--no-progress", *argv])


def test_synth_is_registered_with_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from monai_glam.apps import cli

    status = cli.main(["synth", "--out", str(tmp_path), "--num", "0"])
    assert status == 2
    assert "synth: error: --num must be >= 1" in capsys.readouterr().err
