from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "window, expected",
    [
        ((2944, 1920), ((100, 100), 100)),  # the published values at the published size
        ((512, 320), ((17, 17), 17)),
        ((256, 160), ((9, 8), 8)),
        ((16, 16), ((1, 1), 1)),
    ],
)
def test_scaled_window_noise(window, expected) -> None:
    from monai_glam.transforms import scaled_window_noise

    assert scaled_window_noise(window) == expected


def test_scaled_window_noise_rejects_empty_windows() -> None:
    from monai_glam.transforms import scaled_window_noise

    with pytest.raises(ValueError, match="spatial_size"):
        scaled_window_noise((0, 10))


def test_augmentation_noise_is_scaled_to_the_window(tmp_path) -> None:
    """The published 100-pixel window noise is a fraction of a 2944x1920 window: smaller windows get that fraction."""
    from monai_glam.data import write_synthetic_dataset
    from monai_glam.data.datalist import read_datalist
    from monai_glam.transforms import glam_transforms

    datalist = write_synthetic_dataset(
        tmp_path, num=4, size=(256, 160), seed=0, write_dicom=False, fractions=(1.0, 0.0, 0.0), progress=False
    )
    chain = glam_transforms((128, 96), augment=True)
    window = next(t for t in chain.transforms if type(t).__name__ == "RandBestCenterWindowd")
    assert window.windower.max_crop_size_noise == 4
    assert window.windower.max_crop_noise == (4, 5)
    for item in read_datalist(datalist, "training"):
        assert tuple(chain(item)["image"].shape) == (1, 128, 96)
