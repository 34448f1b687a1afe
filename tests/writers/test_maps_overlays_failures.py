"""NIfTI/PNG map files, overlay PNGs and the failure log."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.writers import (
    FailureLog,
    describe_error,
    image_id_from_path,
    map_to_uint16,
    write_class_maps,
    write_nifti,
    write_overlay,
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 1.0, 0.5], [0, 65535, 32768]), ([-1.0, 2.0, 0.25], [0, 65535, 16384])],
)
def test_map_to_uint16(values: list[float], expected: list[int]) -> None:
    out = map_to_uint16(np.asarray(values))
    assert out.dtype == np.uint16 and out.tolist() == expected


def test_nifti_keeps_rows_first_and_spacing(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = write_nifti(tmp_path / "m.nii.gz", array, spacing=(0.5, 0.25))
    image = nibabel.load(str(path))
    assert np.array_equal(np.asarray(image.dataobj), array)
    assert image.header.get_zooms() == pytest.approx((0.5, 0.25))
    plain = write_nifti(tmp_path / "m.nii", array)
    assert np.array_equal(np.asarray(nibabel.load(str(plain)).dataobj), array)
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(tmp_path / "m.png", array)
    with pytest.raises(ValueError, match="2-D"):
        write_nifti(tmp_path / "m.nii", array[None])


def test_masks_are_uint8(tmp_path: Path) -> None:
    masks = torch.zeros(2, 4, 5)
    masks[1, 1:3, 2:4] = 1
    write_class_maps(tmp_path, "i", masks, kind="mask")
    png = np.array(Image.open(tmp_path / "i_malignant.png"))
    assert png.dtype == np.uint8 and sorted(np.unique(png).tolist()) == [0, 255] and (png > 0).sum() == 4
    nifti = np.asarray(nibabel.load(str(tmp_path / "i_malignant.nii.gz")).dataobj)
    assert nifti.dtype == np.uint8 and nifti.sum() == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"formats": ("jpeg",)}, "unknown map format"),
        ({"kind": "label"}, "kind"),
        ({"class_names": ("benign",)}, r"\(1, H, W\)"),
    ],
)
def test_write_class_maps_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_class_maps(tmp_path, "i", np.zeros((2, 4, 4)), **kwargs)


def test_overlay_png_has_one_panel_per_class_plus_the_image(tmp_path: Path) -> None:
    image = torch.rand(1, 64, 40)
    saliency = torch.zeros(2, 4, 3)
    masks = torch.zeros(2, 64, 40)
    masks[0, 10:30, 10:30] = 1
    path = write_overlay(tmp_path / "o.png", image, saliency, boxes=torch.tensor([[0, 0, 32, 32]]), masks=masks)
    pixels = np.array(Image.open(path))
    assert pixels.shape == (64, 3 * 40, 3) and pixels.dtype == np.uint8
    green = (pixels[..., 0] < 80) & (pixels[..., 1] > 240) & (pixels[..., 2] < 80)
    assert green[:, :40].any() and green[:, 40:80].any() and not green[:, 80:].any()  # benign: image + its panel


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/a/0_L-CC.png", "0_L-CC"), ("x/scan one.nii.gz", "scan_one"), ("b/img.DCM", "img"), ("c/...", "image")],
)
def test_image_id_from_path(path: str, expected: str) -> None:
    assert image_id_from_path(path) == expected


def test_failure_log_reports_the_root_cause(tmp_path: Path) -> None:
    log = FailureLog("test")
    try:
        try:
            raise ValueError("x.png: empty file (0 bytes)")
        except ValueError as inner:
            raise RuntimeError("applying transform LoadMammogramd") from inner
    except RuntimeError as err:
        assert describe_error(err) == "ValueError: x.png: empty file (0 bytes)"
        log.add(3, "x.png", "preprocess", err)
    log.add(5, None, "write", OSError("disk full"))
    assert len(log) == 2 and log.summary(limit=1).startswith("2 item(s) failed: x.png: ValueError")
    records = json.loads(log.write(tmp_path / "failures.json").read_text())
    assert records == [
        {"index": 3, "image": "x.png", "stage": "preprocess", "error": "ValueError: x.png: empty file (0 bytes)"},
        {"index": 5, "image": "?", "stage": "write", "error": "OSError: disk full"},
    ]
    assert FailureLog().summary() == "no item failed"


def test_merge_shards_needs_one_datalist_position_per_prediction(tmp_path):
    from monai_glam.engines import build_inference_transforms
    from monai_glam.writers import FailureLog, OriginalGeometryInverter, PredictionWriter

    writer = PredictionWriter(tmp_path, OriginalGeometryInverter(build_inference_transforms((64, 48), 1, 2)))
    with pytest.raises(ValueError, match="1 positions for 0 predictions"):
        writer.merge_shards(FailureLog(), [3])  # checked before any collective call, so no process group is needed
