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
    # The window's right edge sits at the breast region's right-most column (the published offset leaves that
    # column just outside), shifted inside the image; a narrower image is padded on the right.
    rightmost = oriented.meta["breast_box"][3] - 1
    if width >= window[1]:
        assert right == min(max(rightmost, window[1]), width)
    else:
        assert (left, right) == (0, window[1])
    restored = windower.inverse(out)
    assert restored.shape == oriented.shape
    np.testing.assert_array_equal(
        restored.numpy()[:, max(top, 0) : min(bottom, height), max(left, 0) : min(right, width)], inside
    )


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
