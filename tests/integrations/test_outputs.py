"""What a server returns for one mammogram: labelmap fusion, CVAT polygons, strict JSON and label files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.draw import polygon as fill_polygon

from monai_glam.data import load_mammogram
from monai_glam.integrations.outputs import (
    GLAM_OUTPUTS,
    classification_result,
    fuse_labelmap,
    label_values,
    labelmap_polygons,
    saliency_file_array,
    scores_json,
    segmentation_result,
    strict_json_text,
    write_label_file,
)


def _maps(benign: float, malignant: float) -> np.ndarray:
    """A (2, 1, 1) map: one pixel with these two class values."""
    return np.array([[[benign]], [[malignant]]], dtype=np.float32)


@pytest.mark.parametrize(
    ("benign", "malignant", "thresholds", "expected"),
    [
        (0.2, 0.2, (0.5, 0.5), 0),  # neither class: background
        (0.7, 0.2, (0.5, 0.5), 1),  # benign only
        (0.2, 0.7, (0.5, 0.5), 2),  # malignant only
        (0.9, 0.6, (0.5, 0.5), 2),  # both: malignant wins, even with the lower score
        (0.5, 0.2, (0.5, 0.5), 1),  # a value equal to its threshold counts (>=, as MONAI's AsDiscrete)
        (0.4, 0.4, (0.3, 0.6), 1),  # per-class thresholds
        (0.4, 0.4, (0.6, 0.3), 2),
        (0.4, 0.4, 0.35, 2),  # one threshold for every class
        (1.0, 1.0, (1.0, 1.0), 2),
        (0.0, 0.0, (0.0, 0.0), 2),  # threshold 0: every pixel is lesion; malignant still wins
    ],
)
def test_labelmap_fusion_rule(benign: float, malignant: float, thresholds: object, expected: int) -> None:
    labelmap = fuse_labelmap(_maps(benign, malignant), thresholds)
    assert labelmap.dtype == np.uint8 and labelmap.shape == (1, 1)
    assert int(labelmap[0, 0]) == expected


def test_labelmap_keeps_the_geometry_and_accepts_tensors() -> None:
    import torch

    rng = np.random.default_rng(0)
    maps = rng.random((2, 37, 23)).astype(np.float32)
    labelmap = fuse_labelmap(torch.from_numpy(maps), (0.6, 0.7))
    assert labelmap.shape == (37, 23) and set(np.unique(labelmap)) <= {0, 1, 2}
    np.testing.assert_array_equal(labelmap == 2, maps[1] >= 0.7)
    np.testing.assert_array_equal(labelmap == 1, (maps[0] >= 0.6) & (maps[1] < 0.7))


@pytest.mark.parametrize(
    ("maps", "thresholds", "problem"),
    [
        (np.zeros((4, 4)), 0.5, "saliency must be (C, H, W)"),
        (np.zeros((2, 4, 4)), (0.5, 0.5, 0.5), "thresholds must be one finite value or 2"),
        (np.zeros((2, 4, 4)), (0.5, float("nan")), "thresholds must be one finite value or 2"),
    ],
)
def test_labelmap_refuses_bad_input(maps: np.ndarray, thresholds: object, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        fuse_labelmap(maps, thresholds)


def test_label_values_and_outputs() -> None:
    assert label_values() == {"benign": 1, "malignant": 2}
    assert GLAM_OUTPUTS == ("labelmap", "saliency_benign", "saliency_malignant")


def _rasterize(contour: list[list[float]], shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside a CVAT polygon ([[x, y], ...])."""
    points = np.asarray(contour, dtype=np.float64)
    rows, cols = fill_polygon(points[:, 1], points[:, 0], shape)
    mask = np.zeros(shape, dtype=bool)
    mask[rows, cols] = True
    return mask


def _labelmap(shape: tuple[int, int], *regions: tuple[int, slice, slice]) -> np.ndarray:
    labelmap = np.zeros(shape, dtype=np.uint8)
    for value, rows, cols in regions:
        labelmap[rows, cols] = value
    return labelmap


@pytest.mark.parametrize(
    ("labelmap", "expected"),
    [
        # one benign rectangle, rows 5..9 and columns 20..29: x is the column, y the row
        (_labelmap((30, 40), (1, slice(5, 10), slice(20, 30))), {"benign": 1}),
        # a malignant region touching the top-left corner still gets a closed polygon
        (_labelmap((30, 40), (2, slice(0, 6), slice(0, 4))), {"malignant": 1}),
        # two separate benign regions and one malignant region, in channel order
        (
            _labelmap(
                (30, 40),
                (1, slice(2, 6), slice(2, 6)),
                (1, slice(20, 25), slice(30, 36)),
                (2, slice(10, 15), slice(10, 20)),
            ),
            {"benign": 2, "malignant": 1},
        ),
        (np.zeros((8, 8), dtype=np.uint8), {}),  # nothing found: no element at all
    ],
)
def test_polygons_trace_each_region(labelmap: np.ndarray, expected: dict[str, int]) -> None:
    elements = labelmap_polygons(labelmap, tolerance=0.0)
    assert [element["label"] for element in elements] == list(expected)
    for element in elements:
        value = label_values()[element["label"]]
        assert len(element["contours"]) == expected[element["label"]]
        covered = np.zeros(labelmap.shape, dtype=bool)
        for contour in element["contours"]:
            assert len(contour) >= 3 and contour[0] != contour[-1]  # CVAT closes polygons itself
            assert all(len(point) == 2 for point in contour)
            covered |= _rasterize(contour, labelmap.shape)
        region = labelmap == value
        # The contours run along the pixel edges' midpoints (half a pixel inside the region's outline).
        assert (covered & region).sum() >= 0.5 * region.sum()
        assert not (covered & ~region).any()


def test_polygon_coordinates_are_x_column_y_row() -> None:
    labelmap = _labelmap((50, 80), (2, slice(10, 20), slice(60, 75)))
    (element,) = labelmap_polygons(labelmap, tolerance=0.0)
    points = np.asarray(element["contours"][0])
    assert points[:, 0].min() >= 59 and points[:, 0].max() <= 75  # x: columns 60..74
    assert points[:, 1].min() >= 9 and points[:, 1].max() <= 20  # y: rows 10..19


def test_polygons_leave_holes_out_and_join_diagonal_pixels() -> None:
    ring = _labelmap((30, 30), (1, slice(5, 25), slice(5, 25)))
    ring[10:20, 10:20] = 0  # a hole: CVAT polygons cannot have one, the outer outline is returned
    (element,) = labelmap_polygons(ring, tolerance=0.0)
    assert len(element["contours"]) == 1
    points = np.asarray(element["contours"][0])
    assert points[:, 0].min() < 6 and points[:, 0].max() > 23
    diagonal = np.zeros((10, 10), dtype=np.uint8)
    diagonal[2, 2] = diagonal[3, 3] = diagonal[4, 4] = 2  # 8-connected: one lesion, one polygon
    (element,) = labelmap_polygons(diagonal)
    assert len(element["contours"]) == 1


def test_polygon_simplification_keeps_the_outline() -> None:
    yy, xx = np.mgrid[:200, :200]
    disc = (((yy - 100) ** 2 + (xx - 90) ** 2) < 60**2).astype(np.uint8) * 2
    exact = labelmap_polygons(disc, tolerance=0.0)[0]["contours"][0]
    simple = labelmap_polygons(disc, tolerance=1.0)[0]["contours"][0]
    assert len(simple) < len(exact) / 4
    iou = (_rasterize(simple, disc.shape) & (disc > 0)).sum() / (_rasterize(simple, disc.shape) | (disc > 0)).sum()
    assert iou > 0.97


def test_polygons_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="labelmap must be"):
        labelmap_polygons(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="tolerance"):
        labelmap_polygons(np.zeros((3, 3)), tolerance=-1)


def test_segmentation_result_is_strict_json() -> None:
    polygons = [{"label": "malignant", "contours": [[[1.0, 2.0], [3.0, 2.0], [3.0, 4.0]]]}]
    result = segmentation_result(
        np.array([0.25, float("nan")]), [0.5, float("inf")], (0.3, 0.4), polygons, image_size=(256, 160)
    )
    text = strict_json_text(result)
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text)
    assert parsed == result
    assert parsed["scores"] == {
        "prob_global": {"benign": 0.25, "malignant": None},
        "prob_local": {"benign": 0.5, "malignant": None},
    }
    assert parsed["thresholds"] == {"benign": 0.3, "malignant": 0.4}
    assert parsed["label_names"] == {"benign": 1, "malignant": 2}
    assert parsed["annotations"] == [{"annotation": {"elements": polygons}}]
    assert parsed["glam_output"] == "labelmap" and parsed["image_size"] == [256, 160]
    # No "prediction": MONAI Label's CVAT function would then draw a whole-image rectangle instead of polygons.
    assert "prediction" not in parsed


def test_classification_result_is_monai_labels_prediction() -> None:
    result = classification_result(np.array([0.2, 0.9], dtype=np.float32), np.array([0.1, 0.8]))
    assert [(p["idx"], p["label"]) for p in result["prediction"]] == [(0, "benign"), (1, "malignant")]
    assert math.isclose(result["prediction"][1]["score"], 0.9, rel_tol=1e-6)
    assert result["scores"]["prob_local"]["malignant"] == 0.8
    json.loads(strict_json_text(result))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([0.1], "expected 2 values"),
        ([0.1, 0.2, 0.3], "expected 2 values"),
    ],
)
def test_scores_need_one_value_per_class(value: list[float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        scores_json(value, None)


def test_strict_json_text_turns_nan_into_null() -> None:
    assert strict_json_text({"a": float("nan"), "b": np.float32(2.5), "c": np.arange(2)}) == (
        '{"a": null, "b": 2.5, "c": [0, 1]}'
    )


def test_label_files_round_trip(tmp_path: Path) -> None:
    labelmap = np.zeros((40, 24), dtype=np.uint8)
    labelmap[5:10, 3:8] = 1
    labelmap[20:30, 10:20] = 2
    png = write_label_file(tmp_path / "label.png", labelmap)
    np.testing.assert_array_equal(np.array(Image.open(png)), labelmap)
    nifti = write_label_file(tmp_path / "label.nii.gz", labelmap, spacing=(0.1, 0.2))
    loaded = load_mammogram(nifti)  # axis 0 = rows, as the project reads NIfTI mammograms
    np.testing.assert_array_equal(loaded[0].numpy(), labelmap)
    assert loaded.meta["spacing"] == pytest.approx((0.1, 0.2))
    saliency = np.linspace(0, 1, 40 * 24, dtype=np.float32).reshape(40, 24)
    stored = saliency_file_array(saliency, ".png")
    assert stored.dtype == np.uint16 and stored.max() == 65535
    write_label_file(tmp_path / "saliency.png", stored)
    assert np.array(Image.open(tmp_path / "saliency.png")).max() == 65535
    assert saliency_file_array(saliency, ".nii.gz").dtype == np.float32


def test_nrrd_label_file_puts_columns_first(tmp_path: Path) -> None:
    nrrd = pytest.importorskip("nrrd")
    labelmap = np.zeros((40, 24), dtype=np.uint8)
    labelmap[20:30, 10:20] = 2
    path = write_label_file(tmp_path / "label.nrrd", labelmap, spacing=(0.1, 0.2))
    data, header = nrrd.read(str(path), index_order="C")
    np.testing.assert_array_equal(data, labelmap)
    assert list(header["sizes"]) == [24, 40]  # NRRD axis 0 = x = columns, as ITK and Slicer lay out 2-D images
    assert list(header["spacings"]) == pytest.approx([0.2, 0.1])


@pytest.mark.parametrize(
    ("name", "array", "problem"),
    [
        ("label.jpg", np.zeros((4, 4), np.uint8), "a label file must end in one of"),
        ("label.png", np.zeros((2, 4, 4), np.uint8), "2-D"),
        ("label.png", np.zeros((4, 4), np.float32), "uint8 or uint16"),
    ],
)
def test_label_files_refuse_bad_input(tmp_path: Path, name: str, array: np.ndarray, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        write_label_file(tmp_path / name, array)


def test_polygons_keep_single_pixel_regions() -> None:
    labelmap = np.zeros((10, 10), dtype=np.uint8)
    labelmap[4, 6] = 1
    (element,) = labelmap_polygons(labelmap)  # too small to simplify: its exact outline (a diamond) is kept
    (contour,) = element["contours"]
    points = np.asarray(contour)
    assert len(points) >= 3 and np.allclose(points.mean(axis=0), (6.0, 4.0))
