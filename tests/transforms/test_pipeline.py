from __future__ import annotations


def test_augmentation_works_on_windows_smaller_than_the_published_size_noise(tmp_path) -> None:
    """The published 100-pixel window size noise is halved to the window's smaller side below 101 pixels."""
    from monai_glam.data import write_synthetic_dataset
    from monai_glam.data.datalist import read_datalist
    from monai_glam.transforms import glam_transforms

    datalist = write_synthetic_dataset(
        tmp_path, num=4, size=(256, 160), seed=0, write_dicom=False, fractions=(1.0, 0.0, 0.0), progress=False
    )
    chain = glam_transforms((128, 96), augment=True)
    window = next(t for t in chain.transforms if type(t).__name__ == "RandBestCenterWindowd")
    assert window.windower.max_crop_size_noise == 48
    for item in read_datalist(datalist, "training"):
        assert tuple(chain(item)["image"].shape) == (1, 128, 96)
