"""Synthetic mammograms: determinism, geometry, labels, lesion contrast under the masks, files written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from monai_glam.data import SyntheticMammogramGenerator, load_mammogram, power_law_noise, read_datalist
from monai_glam.data.synthetic import write_synthetic_dataset

SIZE = (256, 160)


def _with_lesions(seed: int = 0, **kwargs) -> SyntheticMammogramGenerator:
    settings = {"benign_probability": 1.0, "malignant_probability": 1.0, **kwargs}
    return SyntheticMammogramGenerator(size=SIZE, seed=seed, **settings)


def lesion_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean inside the mask minus the mean of a ring of breast around it (other lesions excluded)."""
    ring = ndimage.binary_dilation(mask, iterations=8) & ~ndimage.binary_dilation(mask, iterations=3) & (image > 0)
    return float(image[mask].mean() - image[ring].mean())


def test_deterministic_per_seed_and_index() -> None:
    first = list(SyntheticMammogramGenerator(size=SIZE, seed=5).generate(6))
    again = SyntheticMammogramGenerator(size=SIZE, seed=5)
    for sample in first:
        other = again.image(sample.index)
        np.testing.assert_array_equal(sample.image, other.image)
        np.testing.assert_array_equal(sample.mask_malignant, other.mask_malignant)
    different = SyntheticMammogramGenerator(size=SIZE, seed=6).image(0)
    assert not np.array_equal(first[0].image, different.image)


def test_views_value_range_and_raw_orientation() -> None:
    samples = list(_with_lesions().generate(8))
    assert [(s.laterality, s.view) for s in samples[:4]] == [("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO")]
    for sample in samples:
        image = sample.image
        assert image.shape == SIZE and image.dtype == np.uint16
        assert image.max() <= 4095 and image.min() == 0
        left, right = image[:, : SIZE[1] // 2].sum(), image[:, SIZE[1] // 2 :].sum()
        assert (left > right) == (sample.laterality == "L")  # L faces right: chest wall on the left
        assert sample.spacing[0] == pytest.approx(270.0 / SIZE[0])


def test_mlo_views_have_a_pectoral_muscle() -> None:
    for sample in _with_lesions(seed=2).generate(8):
        image = sample.image.astype(float)
        facing_right = sample.laterality == "L"
        oriented = image if facing_right else image[:, ::-1]
        corner = oriented[: SIZE[0] // 20, : SIZE[1] // 12]
        # The same chest-wall columns lower down, below the muscle.
        below = oriented[int(0.65 * SIZE[0]) : int(0.75 * SIZE[0]), : SIZE[1] // 12]
        if sample.view == "MLO":
            assert corner.mean() > below.mean() + 300
        else:  # CC: the top rows are background
            assert corner.max() == 0


def test_labels_match_masks_and_are_shared_by_both_views() -> None:
    generator = SyntheticMammogramGenerator(size=SIZE, seed=11)
    samples = list(generator.generate(16))
    for sample in samples:
        assert sample.label == (int(sample.mask_benign.any()), int(sample.mask_malignant.any()))
        assert not (sample.mask_benign & (sample.image == 0)).any()  # masks lie inside the breast
    by_breast: dict[tuple[int, str], set] = {}
    for sample in samples:
        by_breast.setdefault((sample.exam, sample.laterality), set()).add(sample.label)
    assert all(len(labels) == 1 for labels in by_breast.values())
    assert {label for labels in by_breast.values() for label in labels} >= {(0, 0), (1, 1)} or len(by_breast) == 8


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lesions_are_brighter_inside_their_masks(seed: int) -> None:
    for sample in _with_lesions(seed).generate(4):
        image = sample.image.astype(np.float64)
        for mask in (sample.mask_benign, sample.mask_malignant):
            assert mask.sum() > 10
            assert lesion_contrast(image, mask) > 150  # in 12-bit units; the tissue spans about 1000-3500


def test_contrast_setting_controls_visibility() -> None:
    faint = _with_lesions(benign_contrast=(0.02, 0.02), malignant_probability=0.0).image(0)
    strong = _with_lesions(benign_contrast=(0.3, 0.3), malignant_probability=0.0).image(0)
    assert (
        lesion_contrast(strong.image.astype(float), strong.mask_benign)
        > lesion_contrast(faint.image.astype(float), faint.mask_benign) + 500
    )


def test_lesion_kinds_and_sizes_are_configurable() -> None:
    spiculated = _with_lesions(calcification_fraction=0.0, benign_probability=0.0)
    calcified = _with_lesions(calcification_fraction=1.0, benign_probability=0.0)
    assert all(lesion.kind == "spiculated" for lesion in spiculated.breast_lesions(0, "L"))
    assert all(lesion.kind == "calcifications" for lesion in calcified.breast_lesions(0, "L"))
    small = _with_lesions(benign_radius=(0.02, 0.02), malignant_probability=0.0).image(0).mask_benign.sum()
    large = _with_lesions(benign_radius=(0.06, 0.06), malignant_probability=0.0).image(0).mask_benign.sum()
    assert large > 4 * small


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"size": (32, 32)}, "size"),
        ({"benign_probability": 1.5}, "benign_probability"),
        ({"benign_radius": (0.05, 0.01)}, "benign_radius"),
        ({"malignant_contrast": (0.1, 2.0)}, "malignant_contrast"),
        ({"bits": 20}, "bits"),
    ],
)
def test_generator_validates_arguments(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SyntheticMammogramGenerator(**kwargs)


def test_power_law_noise_is_normalized_and_smooth() -> None:
    rng = np.random.default_rng(0)
    smooth, white = power_law_noise(rng, (64, 48), 3.0), power_law_noise(rng, (64, 48), 0.0)
    assert smooth.mean() == pytest.approx(0.0, abs=1e-9) and smooth.std() == pytest.approx(1.0)
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.5 * np.abs(np.diff(white, axis=0)).mean()


def test_eight_images_png_and_dicom_agree(tmp_path: Path) -> None:
    datalist = write_synthetic_dataset(tmp_path, num=8, size=(512, 320), seed=0, progress=False)
    items = [item for split in ("training", "validation", "test") for item in read_datalist(datalist, split)]
    assert len(items) == 8 and len({item["patient_id"] for item in items}) == 2
    for item in items:
        png = load_mammogram(item["image"])
        dicom = load_mammogram(item["image_dicom"])
        np.testing.assert_array_equal(png.numpy(), dicom.numpy())
        assert (dicom.meta["laterality"], dicom.meta["view"]) == (item["laterality"], item["view"])
        assert png.meta["bits_stored"] == 16 and dicom.meta["bits_stored"] == 12
        mask = load_mammogram(item["mask_benign"])
        assert mask.shape == png.shape and set(np.unique(mask.numpy())) <= {0.0, 255.0}
        assert bool(mask.max() > 0) == bool(item["label"][0])
    photometric = {pydicom.dcmread(path).PhotometricInterpretation for path in (tmp_path / "dicom").glob("*.dcm")}
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}
    assert not list(tmp_path.rglob("*.tmp*"))  # no temporary files left behind
