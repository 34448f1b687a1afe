"""The cheaper ways the writers compute and compress their outputs give the same pixels as the plain ones.

``_binary_at`` (overlay lines and contours at display size) must equal area interpolation followed by ``> 0``;
``map_to_uint16`` must round like the float64 formula; the run-length-compressed PNG maps and masks and the
time-stamp-free ``.nii.gz`` files must decode to exactly the values written, and the same map must give the
same bytes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from monai_glam.writers import box_outline_map, map_to_uint16, write_class_maps, write_nifti
from monai_glam.writers.overlays import _binary_at


def _area_reference(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    inside = maps != 0
    if tuple(inside.shape[1:]) == size:
        return inside
    return F.interpolate(inside.float()[None], size=size, mode="area")[0] > 0


def _pattern(kind: str, height: int, width: int) -> torch.Tensor:
    maps = torch.zeros(3, height, width)
    if kind == "block":
        maps[0, height // 3 : height // 2 + 1, width // 4 : width // 2] = 1
    elif kind == "sparse":
        maps = (torch.rand(3, height, width, generator=torch.Generator().manual_seed(height)) > 0.995).float()
    elif kind == "box":
        top, left = height // 5, width // 5
        maps[1] = box_outline_map([[top, left, top + height // 4, left + width // 4]], (height, width)).float()
    elif kind == "corners":
        maps[0, height - 1, width - 1] = maps[1, height - 1, 0] = maps[2, 0, 0] = 0.25
    elif kind == "full":
        maps[:] = 1
    return maps


@pytest.mark.parametrize("kind", ["empty", "block", "sparse", "box", "corners", "full"])
@pytest.mark.parametrize(
    ("shape", "size"),
    [((333, 256), (100, 77)), ((257, 161), (100, 63)), ((64, 64), (7, 5)), ((9, 9), (4, 4)), ((50, 40), (50, 40))],
)
def test_binary_at_equals_area_interpolation(kind: str, shape: tuple[int, int], size: tuple[int, int]) -> None:
    maps = _pattern(kind, *shape)
    for candidate in (maps, maps > 0):  # float maps and the boolean maps the writer passes
        assert torch.equal(_binary_at(candidate, size), _area_reference(maps, size))


def test_map_to_uint16_rounds_like_float64() -> None:
    ties = (np.arange(0, 65535, 997) + 0.5) / 65535.0
    values = np.concatenate([ties, [-0.5, 0.0, 1e-9, 0.5, 1.0, 1.5], np.random.default_rng(0).random(1000)])
    values = values.astype(np.float32).reshape(1, -1)
    expected = np.rint(np.clip(values.astype(np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
    assert np.array_equal(map_to_uint16(values), expected)
    assert np.array_equal(map_to_uint16(torch.from_numpy(values)), expected)


@pytest.mark.parametrize("shape", [(2, 700, 513), (1,), (0, 3), ()])
def test_map_to_uint16_block_by_block_equals_the_whole_array_formula(shape: tuple[int, ...]) -> None:
    # (2, 700, 513) spans several 2**18-value blocks with a partial last one; the others are edge cases.
    values = (np.random.default_rng(3).random(shape) * 1.2 - 0.1).astype(np.float32)
    expected = np.rint(np.clip(values.astype(np.float64), 0.0, 1.0) * 65535.0).astype(np.uint16)
    out = map_to_uint16(values)
    assert out.shape == values.shape and out.dtype == np.uint16 and np.array_equal(out, expected)
    transposed = values.T  # a non-contiguous input
    assert np.array_equal(map_to_uint16(transposed), expected.T)


def test_png_maps_and_masks_decode_to_the_written_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    saliency = np.repeat(np.repeat(rng.random((2, 12, 9)), 16, axis=1), 16, axis=2).astype(np.float32)
    saliency[:, 40:60, 30:50] += rng.random((2, 20, 20)).astype(np.float32) * 0.1
    saliency = np.clip(saliency, 0, 1)
    masks = (saliency > 0.5).astype(np.float32)
    write_class_maps(tmp_path, "x", saliency, formats=("png",), kind="saliency")
    write_class_maps(tmp_path / "m", "x", masks, formats=("png",), kind="mask")
    for c, name in enumerate(("benign", "malignant")):
        with Image.open(tmp_path / f"x_{name}.png") as png:
            assert png.mode == "I;16" and np.array_equal(np.asarray(png), map_to_uint16(saliency[c]))
        with Image.open(tmp_path / "m" / f"x_{name}.png") as png:
            assert png.mode == "L" and np.array_equal(np.asarray(png), (masks[c] > 0).astype(np.uint8) * 255)


@pytest.mark.parametrize("shape", [(40, 24), (300, 7)])  # (300, 7): more rows than one transposed block
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_nifti_reads_back_and_the_same_map_gives_the_same_bytes(tmp_path: Path, dtype: type, shape) -> None:
    values = (np.random.default_rng(2).random(shape) * (1 if dtype == np.float32 else 2)).astype(dtype)
    first, second = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    write_nifti(first, values, spacing=(0.1, 0.2))
    write_nifti(second, values, spacing=(0.1, 0.2))
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME: no time stamp
    image = nibabel.Nifti1Image.from_bytes(gzip.decompress(first.read_bytes()))
    assert image.get_data_dtype() == dtype and np.array_equal(np.asarray(image.dataobj), values)
    assert image.header.get_zooms() == pytest.approx((0.1, 0.2))
    # The same bytes as nibabel writes from the array itself (the column-major copy only changes the speed).
    reference = nibabel.Nifti1Image(values, np.diag([0.1, 0.2, 1.0, 1.0]))
    reference.header.set_zooms((0.1, 0.2))
    assert gzip.decompress(first.read_bytes()) == reference.to_bytes()
