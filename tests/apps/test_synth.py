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
        (["--size", "16", "16"], "--size must be at least 64 48 (H W), got 16 16"),
        (["--size", "256", "40"], "--size must be at least 64 48 (H W), got 256 40"),
        (["--fractions", "0.5", "0.5", "0.5"], "--fractions must sum to 1, got 0.5 0.5 0.5 (sum 1.5)"),
    ],
)
def test_synth_rejects_bad_values(tmp_path: Path, argv: list[str], problem: str) -> None:
    with pytest.raises(ValueError) as info:
        _run(["synth", "--out", str(tmp_path / "out"), "--no-progress", *argv])
    assert str(info.value) == problem
    assert not (tmp_path / "out").exists()  # checked before anything is written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--num", "0"], "argument --num: must be an integer >= 1, got 0"),
        (["--num", "8.5"], "argument --num: must be an integer >= 1, got '8.5'"),
        (["--size", "0", "160"], "argument --size: must be an integer >= 1, got 0"),
        (["--seed", "-1"], "argument --seed: must be an integer >= 0 and <= 4294967295, got -1"),
        (["--fractions", "1.5", "0", "0"], "argument --fractions: must be a number >= 0 and <= 1, got 1.5"),
        (["--fractions", "nan", "0", "1"], "argument --fractions: must be a number >= 0 and <= 1, got nan"),
    ],
)
def test_synth_numbers_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    from monai_glam.apps import cli

    assert cli.main(["synth", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"monai-glam synth: error: {message} (see monai-glam synth --help)\n"
    assert not (tmp_path / "out").exists()


def test_synth_is_registered_with_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from monai_glam.apps import cli

    status = cli.main(["synth", "--out", str(tmp_path), "--num", "0"])
    assert status == 2
    assert "synth: error: argument --num: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_synth_refuses_a_used_folder_unless_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from monai_glam.apps import cli

    out = tmp_path / "data"
    argv = ["synth", "--out", str(out), "--size", "128", "96", "--no-dicom", "--no-progress"]
    assert cli.main([*argv, "--num", "8"]) == 0
    first = sorted(p.name for p in (out / "images").iterdir())
    capsys.readouterr()
    assert cli.main([*argv, "--num", "4"]) == 2
    assert "--out" in capsys.readouterr().err and sorted(p.name for p in (out / "images").iterdir()) == first
    assert cli.main([*argv, "--num", "4", "--overwrite"]) == 0
    assert len(list((out / "images").iterdir())) == 4 == len(_all_items(out / "datalist.json"))
