"""Dictionary transforms: masks get exactly the image's spatial operations, and Invertd maps them back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.transforms import Invertd
from monai.utils import TransformBackends
from PIL import Image

import monai_glam.transforms as glam_transforms
from monai_glam.data import MammogramReadError, SyntheticMammogramGenerator, read_datalist, write_png
from monai_glam.data.synthetic import write_synthetic_dataset
from monai_glam.transforms import LoadMammogramd, nyu_preprocess, nyu_preprocessing_transforms

MASKS = ("mask_benign", "mask_malignant")
SETTINGS = {"spatial_size": (160, 96), "erosion_iterations": 8, "buffer": 5}


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Four views with lesions of both classes, written as PNG files with raw-geometry masks."""
    root = tmp_path_factory.mktemp("synthetic")
    generator = SyntheticMammogramGenerator(size=(192, 128), seed=3, benign_probability=1.0, malignant_probability=1.0)
    datalist = write_synthetic_dataset(root, num=4, write_dicom=False, progress=False, generator=generator)
    return [item for split in ("training", "validation", "test") for item in read_datalist(datalist, split)]


def _raw_mask(item: dict, key: str) -> np.ndarray:
    return (np.array(Image.open(item[key])) > 0).astype(np.float32)


def _cut(array: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``array[top:bottom, left:right]`` with zeros where the box leaves the array."""
    top, bottom, left, right = box
    before_rows, before_cols = max(-top, 0), max(-left, 0)
    padded = np.pad(
        array, ((before_rows, max(bottom - array.shape[0], 0)), (before_cols, max(right - array.shape[1], 0)))
    )
    return padded[top + before_rows : bottom + before_rows, left + before_cols : right + before_cols]


def test_chain_moves_masks_with_the_image_and_matches_nyu_preprocess(items: list[dict]) -> None:
    chain = nyu_preprocessing_transforms(mask_keys=MASKS, **SETTINGS)
    for item in items:
        out = chain(item)
        image = out["image"]
        assert image.shape == (1, 160, 96)
        # The same geometry by hand, from what the chain recorded.
        top, bottom, left, right = image.meta["window_location"]
        for key in MASKS:
            mask = _raw_mask(item, key)[top:bottom, left:right]
            if image.meta["flipped"]:
                mask = mask[:, ::-1]
            np.testing.assert_array_equal(out[key][0].numpy(), _cut(mask, image.meta["window_box"]))
        # nyu_preprocess runs the same transforms.
        raw = np.array(Image.open(item["image"]))
        window, info = nyu_preprocess(raw, f"{item['laterality']}-{item['view']}", **SETTINGS)
        np.testing.assert_allclose(image[0].numpy(), window, atol=1e-5)
        assert info["window_location"] == image.meta["window_location"]


def test_invertd_maps_window_masks_back_onto_the_raw_image(items: list[dict]) -> None:
    chain = nyu_preprocessing_transforms(mask_keys=MASKS, **SETTINGS)
    for item in items:
        out = chain(item)
        for key in MASKS:
            data = {"pred": out[key].clone(), "image": out["image"]}
            restored = Invertd(keys="pred", transform=chain, orig_keys="image", nearest_interp=True)(data)["pred"]
            raw = _raw_mask(item, key)
            assert restored.shape == (1, *raw.shape)
            # Everything the window kept comes back in place; what it cut off is zero.
            kept = restored[0].numpy() > 0
            assert np.array_equal(kept, kept & (raw > 0))
            assert kept.sum() == out[key].sum()


def test_augmented_chain_keeps_masks_binary_and_invertible(items: list[dict]) -> None:
    chain = nyu_preprocessing_transforms(
        mask_keys=MASKS, augment=True, max_crop_noise=(8, 8), max_crop_size_noise=8, affine_prob=1.0, **SETTINGS
    )
    chain.set_random_state(7)
    for item in items:
        out = chain(item)
        assert out["image"].shape == out["mask_benign"].shape == (1, 160, 96)
        assert set(torch.unique(out["mask_malignant"]).tolist()) <= {0.0, 1.0}
        data = {"pred": out["mask_benign"].clone(), "image": out["image"]}
        restored = Invertd(keys="pred", transform=chain, orig_keys="image", nearest_interp=True)(data)["pred"]
        raw = _raw_mask(item, "mask_benign")
        assert restored.shape == (1, *raw.shape)
        if raw.sum() > 0 and out["mask_benign"].sum() > 0:  # the lesion comes back where it was
            overlap = (restored[0].numpy() > 0.5) & (raw > 0)
            assert overlap.sum() > 0.5 * min(raw.sum(), (restored[0].numpy() > 0.5).sum())


def test_load_mammogramd_fills_missing_masks_and_checks_shapes(tmp_path: Path) -> None:
    image, small = tmp_path / "0_L-CC.png", tmp_path / "small.png"
    write_png(image, np.full((8, 6), 5, dtype=np.uint16))
    write_png(small, np.zeros((4, 6), dtype=np.uint8))
    loader = LoadMammogramd(("image", *MASKS), mask_keys=MASKS, fill_missing_masks=True)
    out = loader({"image": str(image), "mask_benign": None, "laterality": "R", "view": "MLO"})
    assert out["mask_benign"].shape == out["mask_malignant"].shape == (1, 8, 6)
    assert out["mask_benign"].meta["mask_missing"] is True and float(out["mask_malignant"].sum()) == 0
    assert out["image"].meta["laterality"] == "R"  # the item overrides the file name
    with pytest.raises(MammogramReadError, match=r"small.png: mask shape \(4, 6\) differs"):
        loader({"image": str(image), "mask_benign": str(small)})
    with pytest.raises(KeyError, match="mask_benign"):
        LoadMammogramd(("image", "mask_benign"), mask_keys="mask_benign")({"image": str(image)})
    with pytest.raises(ValueError, match="not among keys"):
        LoadMammogramd("image", mask_keys="mask")


def test_factory_validates_probabilities() -> None:
    with pytest.raises(ValueError, match="affine_prob"):
        nyu_preprocessing_transforms(augment=True, affine_prob=2.0)


NAMES = (
    "LoadMammogram",
    "BreastCrop",
    "OrientToRight",
    "BestCenterWindow",
    "RandBestCenterWindow",
    "StandardizeIntensity",
)


@pytest.mark.parametrize("name", NAMES)
def test_monai_style_aliases_and_backends(name: str) -> None:
    dictionary = getattr(glam_transforms, f"{name}d")
    assert getattr(glam_transforms, f"{name}D") is dictionary and getattr(glam_transforms, f"{name}Dict") is dictionary
    assert {f"{name}d", f"{name}D", f"{name}Dict", name} <= set(glam_transforms.__all__)
    assert dictionary.backend == getattr(glam_transforms, name).backend == [TransformBackends.TORCH]
    assert glam_transforms.GLAMTargetsD is glam_transforms.GLAMTargetsDict is glam_transforms.GLAMTargetsd
    assert glam_transforms.GLAMTargetsd.backend == [TransformBackends.TORCH]
