"""Array transforms: what each computes, its meta record, and its inverse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.utils import set_determinism

from monai_glam.data import SyntheticMammogramGenerator, write_png
from monai_glam.transforms import (
    BestCenterWindow,
    BreastCrop,
    LoadMammogram,
    OrientToRight,
    RandBestCenterWindow,
    StandardizeIntensity,
)

SIZE = (192, 128)


def raw_image(index: int, seed: int = 0) -> MetaTensor:
    """A synthetic raw mammogram (index 0: L-CC, 1: L-MLO, 2: R-CC, 3: R-MLO) with laterality/view meta."""
    sample = SyntheticMammogramGenerator(size=SIZE, seed=seed, marker_probability=1.0).image(index)
    meta = {"laterality": sample.laterality, "view": sample.view, "horizontal_flip": False}
    return MetaTensor(torch.from_numpy(sample.image.astype(np.float32))[None], meta=meta)


def test_load_mammogram_transform(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    write_png(path, np.full((5, 3), 9, dtype=np.uint16))
    image = LoadMammogram(laterality="L", view="CC")(path)
    assert image.shape == (1, 5, 3) and image.meta["laterality"] == "L" and float(image.max()) == 9


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_breast_crop_and_its_inverse(index: int) -> None:
    image = raw_image(index)
    cropper = BreastCrop(erosion_iterations=8, buffer=5)
    cropped = cropper(image)
    top, bottom, left, right = cropped.meta["window_location"]
    np.testing.assert_array_equal(cropped.numpy(), image.numpy()[:, top:bottom, left:right])
    assert cropped.meta["cropped_shape"] == (bottom - top, right - left) == tuple(cropped.shape[1:])
    # The marker is left out, the chest wall stays in.
    facing_right = image.meta["laterality"] == "L"
    assert (left == 0) if facing_right else (right == SIZE[1])
    restored = cropper.inverse(cropped)
    assert restored.shape == image.shape and not restored.applied_operations
    np.testing.assert_array_equal(restored.numpy()[:, top:bottom, left:right], cropped.numpy())
    assert float(restored.double().sum()) == float(cropped.double().sum())  # zeros outside the box


@pytest.mark.parametrize(
    ("laterality", "horizontal_flip", "flipped"),
    [("L", False, False), ("R", False, True), ("L", True, True), ("R", True, False)],
)
def test_orient_to_right_and_inverse(laterality: str, horizontal_flip: bool, flipped: bool) -> None:
    image = raw_image(0)
    image.meta.update(laterality=laterality, horizontal_flip=horizontal_flip)
    orienter = OrientToRight()
    oriented = orienter(image)
    assert oriented.meta["flipped"] is flipped
    expected = image.numpy()[:, :, ::-1] if flipped else image.numpy()
    np.testing.assert_array_equal(oriented.numpy(), expected)
    assert image.meta.get("flipped") is None  # the input's meta is left alone
    np.testing.assert_array_equal(orienter.inverse(oriented).numpy(), image.numpy())


@pytest.mark.parametrize("index", [0, 2])
def test_orient_to_right_without_laterality_looks_at_the_image(index: int) -> None:
    image = raw_image(index)
    image.meta["laterality"] = ""
    assert OrientToRight()(image).meta["flipped"] is (index == 2)


@pytest.mark.parametrize(("index", "window"), [(0, (128, 80)), (1, (128, 80)), (2, (256, 160)), (3, (256, 160))])
def test_best_center_window_and_inverse(index: int, window: tuple[int, int]) -> None:
    oriented = OrientToRight()(BreastCrop(erosion_iterations=8, buffer=5)(raw_image(index)))
    windower = BestCenterWindow(window)
    out = windower(oriented)
    assert out.shape == (1, *window)
    top, bottom, left, right = out.meta["window_box"]
    height, width = oriented.shape[1:]
    # What lies inside the image is copied, what lies outside is zero.
    inside = oriented.numpy()[:, max(top, 0) : min(bottom, height), max(left, 0) : min(right, width)]
    assert float(out.sum()) == pytest.approx(float(inside.sum()))
    # The published anchor: center column = right-most point - w // 2 - 1, so the window (even w) ends one column
    # before the right-most point, shifted inside the image; a narrower image is padded on the right.
    rightmost = oriented.meta["rightmost_point"][1]
    assert out.meta["best_center"][1] == rightmost - window[1] // 2 - 1
    if width >= window[1]:
        assert right == min(max(rightmost - 1, window[1]), width)
    else:
        assert (left, right) == (0, window[1])
    restored = windower.inverse(out)
    assert restored.shape == oriented.shape
    np.testing.assert_array_equal(
        restored.numpy()[:, max(top, 0) : min(bottom, height), max(left, 0) : min(right, width)], inside
    )


def test_anchor_points_follow_the_published_convention() -> None:
    left_view = raw_image(0)  # an L-CC view: the breast points right
    right_view = MetaTensor(left_view.as_tensor().flip(-1), meta={**left_view.meta, "laterality": "R"})
    cropper = BreastCrop(erosion_iterations=8, buffer=5)
    left_crop, right_crop = cropper(left_view), cropper(right_view)
    np.testing.assert_array_equal(right_crop.numpy(), left_crop.numpy()[:, :, ::-1])  # the same breast, mirrored
    # Recorded in the right-facing frame; the R view's right-most column is one larger (the published reflection
    # is W - first column, not W - 1 - first column), the rows are the same.
    assert right_crop.meta["rightmost_point"][1] == left_crop.meta["rightmost_point"][1] + 1
    assert right_crop.meta["rightmost_point"][0] == left_crop.meta["rightmost_point"][0]
    assert right_crop.meta["bottommost_point"][0] == left_crop.meta["bottommost_point"][0]
    # OrientToRight keeps them (they already describe the right-facing frame) ...
    assert OrientToRight()(right_crop).meta["rightmost_point"] == right_crop.meta["rightmost_point"]
    # ... unless it is told to mirror a crop that already points right.
    forced = OrientToRight(laterality="R")(left_crop)
    assert forced.meta["flipped"] is True and "rightmost_point" not in forced.meta
    # Hence the L view's window is one column left of the mirrored R view's.
    left_center = BestCenterWindow((128, 80))(OrientToRight()(left_crop)).meta["best_center"]
    right_center = BestCenterWindow((128, 80))(OrientToRight()(right_crop)).meta["best_center"]
    assert right_center[1] == left_center[1] + 1


@pytest.mark.parametrize("flipped", [False, True])
def test_best_center_window_without_crop_points_uses_the_pixels(flipped: bool) -> None:
    oriented = OrientToRight()(BreastCrop(erosion_iterations=8, buffer=5)(raw_image(0)))
    plain = MetaTensor(oriented.as_tensor().clone(), meta={"view": "CC", "flipped": flipped})
    breast = plain[0].numpy() > 0
    height = breast.shape[0]
    last_column = np.flatnonzero(breast[height // 3 :].any(axis=0))[-1]
    # A mirrored image gets the published R-view convention: one column more.
    rightmost = last_column + 1 if flipped else last_column
    assert BestCenterWindow((128, 80))(plain).meta["best_center"][1] == rightmost - 40 - 1


def test_best_center_window_rejects_empty_images() -> None:
    with pytest.raises(ValueError, match="empty image"):
        BestCenterWindow((8, 8))(MetaTensor(torch.zeros(1, 10, 10)))


def test_rand_best_center_window_is_reproducible_and_invertible() -> None:
    oriented = OrientToRight()(BreastCrop(erosion_iterations=8, buffer=5)(raw_image(1)))
    first = RandBestCenterWindow((128, 80), max_crop_noise=(10, 10), max_crop_size_noise=10)
    second = RandBestCenterWindow((128, 80), max_crop_noise=(10, 10), max_crop_size_noise=10)
    plain_window = RandBestCenterWindow((128, 80), max_crop_size_noise=10, prob=0.0)
    first.set_random_state(4)
    second.set_random_state(4)
    outputs = [first(oriented) for _ in range(3)]
    assert all(out.shape == (1, 128, 80) for out in outputs)
    np.testing.assert_array_equal(outputs[2].numpy(), [second(oriented) for _ in range(3)][2].numpy())
    assert not torch.equal(outputs[0], outputs[1])
    assert first.inverse(outputs[2]).shape == oriented.shape
    plain = plain_window(oriented)
    np.testing.assert_array_equal(plain.numpy(), BestCenterWindow((128, 80))(oriented).numpy())


def test_standardize_intensity() -> None:
    set_determinism(0)
    image = MetaTensor(torch.rand(1, 20, 10) * 4095, meta={"view": "CC"})
    out = StandardizeIntensity()(image)
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(out.std(correction=0)) == pytest.approx(1.0, abs=1e-4)
    assert out.meta["view"] == "CC" and out.dtype == torch.float32
    flat = StandardizeIntensity()(torch.full((1, 4, 4), 7.0))
    assert torch.equal(flat, torch.zeros(1, 4, 4))  # std below eps: no division blow-up
    set_determinism(None)


@pytest.mark.parametrize(
    ("factory", "named"),
    [
        (lambda: BreastCrop(erosion_iterations=-1), "erosion_iterations"),
        (lambda: BreastCrop(buffer=-5), "buffer"),
        (lambda: BreastCrop(laterality="X"), "laterality"),
        (lambda: OrientToRight(laterality="left-ish"), "laterality"),
        (lambda: BestCenterWindow((0, 10)), "spatial_size"),
        (lambda: BestCenterWindow((10, 10, 10)), "spatial_size"),
        (lambda: BestCenterWindow(view="??"), "view"),
        (lambda: RandBestCenterWindow((64, 64), max_crop_noise=(-1, 0)), "max_crop_noise"),
        (lambda: RandBestCenterWindow((64, 64), max_crop_size_noise=64), "max_crop_size_noise"),
        (lambda: StandardizeIntensity(eps=0), "eps"),
    ],
)
def test_arguments_are_validated(factory, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        factory()


@pytest.mark.parametrize("shape", [(10, 10), (1, 1, 10, 10), (1, 0, 10)])
def test_wrong_dimensions_are_rejected(shape: tuple) -> None:
    with pytest.raises(ValueError, match=r"\(C, H, W\)|empty image"):
        BreastCrop()(torch.ones(shape))
