"""Maps written in the original geometry line up with the synthetic lesions they came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_glam.data import SyntheticMammogramGenerator, load_mammogram, write_png
from monai_glam.engines import build_inference_transforms
from monai_glam.writers import OriginalGeometryInverter, write_class_maps

CLASSES = ("benign", "malignant")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.mark.parametrize(
    ("index", "sliding_window"),
    [
        (0, False),  # L-CC: raw image faces right, no flip
        (2, False),  # R-CC: raw image faces left, the preprocessing mirrors it
        (3, False),  # R-MLO
        (2, True),  # padded breast crop instead of a best-center window
    ],
)
def test_lesion_mask_round_trip_matches_the_raw_mask(tmp_path: Path, index: int, sliding_window: bool) -> None:
    generator = SyntheticMammogramGenerator(size=(256, 160), seed=5, benign_probability=1, malignant_probability=1)
    sample = generator.image(index)
    item = {"image": str(tmp_path / "image.png"), "laterality": sample.laterality, "view": sample.view}
    write_png(item["image"], sample.image)
    for name in CLASSES:
        item[f"mask_{name}"] = str(tmp_path / f"mask_{name}.png")
        write_png(item[f"mask_{name}"], getattr(sample, f"mask_{name}").astype(np.uint8) * 255)
    chain = build_inference_transforms((192, 128), 9, 4, sliding_window=sliding_window)
    data = chain(item)
    assert tuple(data["image"].shape[1:]) != sample.image.shape  # the network frame differs from the raw one
    # The lesion masks in the network frame stand for a perfect saliency map.
    fake_saliency = torch.cat([data["mask_benign"], data["mask_malignant"]]) * 0.75
    raw_map = OriginalGeometryInverter(chain)(fake_saliency, data["image"])
    assert tuple(raw_map.shape) == (2, *sample.image.shape)
    written = write_class_maps(tmp_path / "out", "x", raw_map, CLASSES, ("nifti", "png"), "saliency", (0.1, 0.1))
    assert [p.name for p in written] == ["x_benign.nii.gz", "x_benign.png", "x_malignant.nii.gz", "x_malignant.png"]
    for name in CLASSES:
        truth = getattr(sample, f"mask_{name}")
        nifti = load_mammogram(tmp_path / "out" / f"x_{name}.nii.gz")
        png = load_mammogram(tmp_path / "out" / f"x_{name}.png")
        assert nifti.shape == (1, *truth.shape) and nifti.meta["spacing"] == pytest.approx((0.1, 0.1))
        assert float(nifti.max()) == pytest.approx(0.75)
        assert int(png.max()) == round(0.75 * 65535)
        assert _dice(nifti[0].numpy() > 0.5, truth) == pytest.approx(1.0)  # lesion inside the window: exact
        assert _dice(png[0].numpy() > 30000, truth) == pytest.approx(1.0)


def test_inverter_checks_its_inputs() -> None:
    chain = build_inference_transforms((128, 96), 9, 4)
    inverter = OriginalGeometryInverter(chain)
    with pytest.raises(ValueError, match="applied_operations"):
        inverter(torch.zeros(2, 128, 96), torch.zeros(1, 128, 96))
    reference = MetaTensor(torch.zeros(1, 128, 96))
    reference.applied_operations = [{"class": "X"}]
    with pytest.raises(ValueError, match=r"\(C, 128, 96\)"):
        inverter(torch.zeros(2, 64, 96), reference)
    with pytest.raises(ValueError, match="InvertibleTransform"):
        OriginalGeometryInverter(lambda x: x)  # type: ignore[arg-type]
