"""PredictionWriterHandler arguments (the bundle workflows themselves run in tests/bundle)."""

from __future__ import annotations

import pytest

from monai_glam.handlers import PredictionWriterHandler
from monai_glam.transforms import glam_transforms


@pytest.mark.parametrize("size", [-1, 1.5, True, "2", None])
def test_write_queue_size_must_be_a_non_negative_integer(tmp_path, size):
    with pytest.raises(ValueError, match="write_queue_size"):
        PredictionWriterHandler(tmp_path / "out", glam_transforms((256, 160), augment=False), write_queue_size=size)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2", None])
def test_write_workers_must_be_a_positive_integer(tmp_path, workers):
    with pytest.raises(ValueError, match="write_workers"):
        PredictionWriterHandler(tmp_path / "out", glam_transforms((256, 160), augment=False), write_workers=workers)


def test_several_writer_threads_do_not_keep_the_last_image(tmp_path):
    with pytest.raises(ValueError, match="keep_original"):
        PredictionWriterHandler(
            tmp_path / "out",
            glam_transforms((256, 160), augment=False),
            write_queue_size=2,
            write_workers=2,
            keep_original=True,
        )


@pytest.mark.parametrize(("size", "locked"), [(0, False), (2, True)])
def test_the_inverter_shares_the_chain_lock_only_with_a_writer_thread(tmp_path, size, locked):
    handler = PredictionWriterHandler(
        tmp_path / "out", glam_transforms((256, 160), augment=False), write_queue_size=size
    )
    assert (handler.inverter.lock is not None) is locked
