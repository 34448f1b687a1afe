from __future__ import annotations

import numpy as np
import pytest

from monai_glam.metrics import LOCALIZATION_COLUMNS, LocalizationSplit, compare_localization, localization_markdown


def _masks(lesion: tuple[int, int] | None, cls: int, size: int = 48) -> np.ndarray:
    masks = np.zeros((2, size, size), dtype=np.uint8)
    if lesion is not None:
        r, c = lesion
        masks[cls, r : r + 8, c : c + 8] = 1
    return masks


def _split(method: str, seed: int) -> LocalizationSplit:
    """Six images, lesions of class 0 on even ones, class 1 on odd ones, at random places.

    ``perfect`` maps are 0.8 on the lesion and 0.1 elsewhere; ``blurred`` maps are a 24x24 square of 0.6 around
    it; ``wrong`` maps light up the opposite corner.
    """
    rng = np.random.default_rng(seed)
    split = LocalizationSplit()
    for i in range(6):
        cls = i % 2
        r, c = (int(v) for v in rng.integers(8, 32, size=2))
        masks = _masks((r, c), cls)
        maps = np.full((2, 48, 48), 0.1, dtype=np.float32)
        if method == "perfect":
            maps[cls][masks[cls] > 0] = 0.8
        elif method == "blurred":
            maps[cls, max(0, r - 8) : r + 16, max(0, c - 8) : c + 16] = 0.6
        else:
            maps[cls, 40:48, 40:48] = 0.9 if r < 30 else 0.2
        label = np.eye(2, dtype=int)[cls]
        score = label * 0.9 + 0.05 if method != "wrong" else 1.0 - (label * 0.9 + 0.05)
        split.add(f"img{i}", score, label, maps, masks)
    split.add("no-truth", [0.2, 0.3], [1, 0], None, None)  # scores only: a positive without a mask
    return split


def test_compare_localization_scores_each_method_on_the_same_images():
    methods = ("perfect", "blurred", "wrong")
    validation = {m: _split(m, seed=0) for m in methods}
    test = {m: _split(m, seed=1) for m in methods}
    result = compare_localization(validation, test, peak_sigma=0.0, peak_min_distance=4)
    assert list(result["methods"]) == list(methods)
    assert result["num_images"] == {"validation": 7, "test": 7, "test_localization": 6}
    perfect, blurred, wrong = (result["methods"][m] for m in methods)
    for name in ("benign", "malignant"):
        assert set(perfect[name]) == set(LOCALIZATION_COLUMNS)
        assert perfect[name]["dice"] == pytest.approx(1.0)
        assert perfect[name]["iou"] == pytest.approx(1.0)
        assert perfect[name]["pointing"] == pytest.approx(1.0)
        assert perfect[name]["froc"] == pytest.approx(1.0)
        # a 24x24 square around an 8x8 lesion: Dice 2*64/(64+576) = 0.2 at the threshold picked on validation
        assert blurred[name]["dice"] == pytest.approx(0.2)
        assert wrong[name]["dice"] < 0.1 and wrong[name]["pointing"] == 0.0
    assert result["median_diameter"] == {"benign": 8.0, "malignant": 8.0}
    # the thresholds come from the validation split: perfect maps are split between 0.1 and 0.8
    assert 0.1 <= perfect["thresholds"][0] < 0.8
    # one image is scored but has no localization truth: its scores still count for the AUC
    assert 0.0 <= wrong["benign"]["auc"] < 0.5 < perfect["benign"]["auc"]


def test_froc_by_size_splits_at_the_median_diameter():
    split = LocalizationSplit()
    for i, side in enumerate((4, 6, 10, 12)):
        masks = np.zeros((2, 40, 40), dtype=np.uint8)
        masks[0, 10 : 10 + side, 10 : 10 + side] = 1
        maps = np.zeros((2, 40, 40), dtype=np.float32)
        if side > 8:  # only the large lesions are found
            maps[0, 10 + side // 2, 10 + side // 2] = 1.0
        split.add(f"img{i}", [0.9, 0.1], [1, 0], maps, masks)
    result = compare_localization({"m": split}, {"m": split}, peak_sigma=0.0, peak_min_distance=2, merge_distance=0)
    row = result["methods"]["m"]["benign"]
    assert result["median_diameter"]["benign"] == pytest.approx(8.0)
    assert (row["froc"], row["froc_small"], row["froc_large"]) == pytest.approx((0.5, 0.0, 1.0))
    assert result["methods"]["m"]["malignant"]["froc"] is None  # no malignant lesion: undefined, not 0
    table = localization_markdown(result, labels={"m": "my method"})
    assert "| my method |" in table and "**benign**" in table and "n/a" in table


@pytest.mark.parametrize(
    "validation, test, message",
    [
        ({"a": LocalizationSplit()}, {"b": LocalizationSplit()}, "must match"),
        ({}, {}, "must match"),
        ({"a": LocalizationSplit()}, {"a": LocalizationSplit()}, "no test image counts"),
    ],
)
def test_compare_localization_errors(validation, test, message):
    with pytest.raises(ValueError, match=message):
        compare_localization(validation, test)


def test_split_add_checks_its_inputs():
    split = LocalizationSplit()
    with pytest.raises(ValueError, match="both"):
        split.add("x", [0.1, 0.2], [0, 1], np.zeros((2, 4, 4)), None)
    with pytest.raises(ValueError, match="differ"):
        split.add("x", [0.1, 0.2], [0, 1], np.zeros((2, 4, 4)), np.zeros((2, 4, 5), dtype=np.uint8))
    split.add("x", [0.1, 0.2], [0, 1], np.full((2, 4, 4), 0.3), np.zeros((2, 4, 4), dtype=np.uint8))
    assert len(split) == 1 and split.maps[0].dtype == np.float16 and split.image_ids == ["x"]


def test_pointing_is_decided_on_the_float32_maps():
    """Two maxima that float16 cannot tell apart: the float32 one inside the lesion wins, as in the report."""
    masks = _masks((24, 24), 0)
    maps = np.zeros((2, 48, 48), dtype=np.float32)
    maps[0, 0, 0] = 0.9000  # outside the lesion, first in row-major order
    maps[0, 26, 26] = 0.9001  # inside: higher in float32, equal to the other in float16
    assert np.float16(maps[0, 0, 0]) == np.float16(maps[0, 26, 26])
    split = LocalizationSplit(np.float16)
    split.add("img", [0.9, 0.1], [1, 0], maps, masks)
    result = compare_localization({"m": split}, {"m": split}, peak_sigma=0.0, peak_min_distance=4)
    assert result["methods"]["m"]["benign"]["pointing"] == 1.0
    assert result["methods"]["m"]["malignant"]["pointing"] is None  # no malignant lesion
