"""load_mammogram on PNG and NIfTI files, name parsing, and every bad-input case."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_glam.data import MammogramReadError, load_mammogram, parse_view_name, write_png
from monai_glam.data.meta import normalize_view, parse_horizontal_flip


def _ramp(dtype: type, top: int, shape: tuple[int, int] = (6, 4)) -> np.ndarray:
    # Rows and columns differ in length so a (W, H) transposition cannot pass unnoticed.
    return (np.arange(shape[0] * shape[1]).reshape(shape) * top // (shape[0] * shape[1])).astype(dtype)


@pytest.mark.parametrize(
    ("dtype", "top", "bits"),
    [(np.uint16, 4095, 16), (np.uint16, 65535, 16), (np.uint8, 255, 8)],
)
def test_png_values_shape_and_meta(tmp_path: Path, dtype: type, top: int, bits: int) -> None:
    pixels = _ramp(dtype, top)
    path = tmp_path / "7_R-MLO.png"
    write_png(path, pixels)
    image = load_mammogram(path)
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, 6, 4) and image.dtype.is_floating_point
    np.testing.assert_array_equal(image[0].numpy(), pixels.astype(np.float32))
    assert image.meta["laterality"] == "R" and image.meta["view"] == "MLO"
    assert image.meta["bits_stored"] == bits
    assert image.meta["spacing"] == (1.0, 1.0)
    assert image.meta["filename_or_obj"] == str(path)


def test_arguments_override_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "0_L-CC.png"
    write_png(path, _ramp(np.uint16, 4095))
    image = load_mammogram(path, laterality="R", view="MLO", horizontal_flip=True)
    assert (image.meta["laterality"], image.meta["view"], image.meta["horizontal_flip"]) == ("R", "MLO", True)
    assert load_mammogram(path, view="R-MLO").meta["laterality"] == "R"


@pytest.mark.parametrize(
    ("shape", "suffix", "zooms"),
    [((6, 4), ".nii.gz", (0.07, 0.05)), ((6, 4, 1), ".nii", (0.1, 0.1, 1.0))],
)
def test_nifti_keeps_axis_order_and_spacing(tmp_path: Path, shape: tuple, suffix: str, zooms: tuple) -> None:
    pixels = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    volume = nibabel.Nifti1Image(pixels, np.eye(4))
    volume.header.set_zooms(zooms)
    path = tmp_path / f"scan{suffix}"
    nibabel.save(volume, path)
    image = load_mammogram(path, laterality="L", view="CC")
    assert image.shape == (1, 6, 4)
    np.testing.assert_array_equal(image[0].numpy(), pixels.reshape(6, 4))
    assert image.meta["spacing"] == pytest.approx(zooms[:2])
    assert image.meta["laterality"] == "L"


@pytest.mark.parametrize("row_spacing", [np.inf, np.nan], ids=["inf", "nan"])
def test_nifti_non_finite_voxel_size_is_unknown_spacing(tmp_path: Path, row_spacing: float) -> None:
    volume = nibabel.Nifti1Image(np.arange(24, dtype=np.int16).reshape(6, 4), np.eye(4))
    volume.header.set_zooms((row_spacing, 0.1))
    path = tmp_path / "scan.nii"
    nibabel.save(volume, path)
    image = load_mammogram(path)
    assert image.meta["spacing"] == (1.0, 1.0)
    assert bool(torch.isfinite(image.affine).all())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0_L-CC.png", ("L", "CC")),
        ("3_R-MLO_benign.png", ("R", "MLO")),
        ("exam12_r_mlo.dcm", ("R", "MLO")),
        ("/data/L-XCCL.png", ("L", "XCCL")),
        ("scan.png", ("", "")),
        ("CLOCK.png", ("", "")),
    ],
)
def test_parse_view_name(name: str, expected: tuple[str, str]) -> None:
    assert parse_view_name(name) == expected


@pytest.mark.parametrize(("value", "expected"), [("YES", True), ("NO", False), (None, False), (True, True), (1, True)])
def test_parse_horizontal_flip(value: object, expected: bool) -> None:
    assert parse_horizontal_flip(value) is expected


def test_parse_horizontal_flip_rejects_other_values() -> None:
    with pytest.raises(ValueError, match="maybe"):
        parse_horizontal_flip("maybe")


@pytest.mark.parametrize(("value", "expected"), [("r-mlo", "MLO"), ("CC", "CC"), ("", ""), (None, "")])
def test_normalize_view(value: object, expected: str) -> None:
    assert normalize_view(value) == expected


def _write_rgb(path: Path) -> None:
    Image.fromarray(np.zeros((6, 4, 3), dtype=np.uint8)).save(path)


def _write_truncated_png(path: Path) -> None:
    write_png(path, _ramp(np.uint16, 4095, (64, 48)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_garbage(path: Path) -> None:
    path.write_bytes(b"this is not an image at all" * 10)


def _write_empty(path: Path) -> None:
    path.write_bytes(b"")


def _write_nan_nifti(path: Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.full((6, 4), np.nan, dtype=np.float32), np.eye(4)), path)


def _write_volume(path: Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.zeros((6, 4, 3), dtype=np.float32), np.eye(4)), path)


def _write_truncated_nifti(path: Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.ones((64, 48), dtype=np.float32), np.eye(4)), path)
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) // 2]))


def _write_empty_nifti(path: Path) -> None:
    nibabel.save(nibabel.Nifti1Image(np.zeros((0, 4), dtype=np.float32), np.eye(4)), path)


@pytest.mark.parametrize(
    ("name", "writer", "problem"),
    [
        ("rgb.png", _write_rgb, "colour image"),
        ("truncated.png", _write_truncated_png, "truncated"),
        ("garbage.png", _write_garbage, "corrupt"),
        ("empty.png", _write_empty, "empty file"),
        ("nan.nii.gz", _write_nan_nifti, "NaN"),
        ("volume.nii.gz", _write_volume, "3-D image"),
        ("truncated.nii.gz", _write_truncated_nifti, "truncated"),
        ("zero.nii.gz", _write_empty_nifti, "empty image"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path: Path, name: str, writer, problem: str) -> None:
    path = tmp_path / name
    writer(path)
    with pytest.raises(MammogramReadError, match=problem) as info:
        load_mammogram(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        load_mammogram(tmp_path / "missing.png")


def test_real_nyu_pngs(shared_dir: Path) -> None:
    folder = shared_dir / "data" / "nyu_sample" / "images"
    if not folder.is_dir():
        pytest.skip("NYU sample images are absent")
    for path in sorted(folder.glob("*.png")):
        raw = np.array(Image.open(path))
        image = load_mammogram(path)
        assert image.shape == (1, *raw.shape)  # (rows, cols), not MONAI's (W, H)
        assert float(image.max()) == 4095.0
        laterality, view = parse_view_name(path)
        assert (image.meta["laterality"], image.meta["view"]) == (laterality, view)
