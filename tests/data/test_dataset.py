"""MammogramDataset: bad items are reported and skipped when asked, raised otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_glam.data import MammogramDataset, NoUsableItemsError, atomic_output_path, write_png
from monai_glam.transforms import LoadMammogramd


def _items(tmp_path: Path) -> list[dict]:
    good = tmp_path / "0_L-CC.png"
    write_png(good, np.full((8, 6), 100, dtype=np.uint16))
    rgb = tmp_path / "1_L-CC.png"
    Image.fromarray(np.zeros((8, 6, 3), dtype=np.uint8)).save(rgb)
    truncated = tmp_path / "2_L-CC.png"
    write_png(truncated, np.full((64, 48), 7, dtype=np.uint16))
    truncated.write_bytes(truncated.read_bytes()[:40])
    return [
        {"image": str(good), "label": [0, 0]},
        {"image": str(rgb), "label": [0, 1]},
        {"image": str(truncated), "label": [1, 0]},
        {"image": str(tmp_path / "missing.png"), "label": [1, 1]},
    ]


def test_bad_items_are_reported_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dataset = MammogramDataset(_items(tmp_path), LoadMammogramd("image"), skip_bad_items=True)
    with caplog.at_level(logging.WARNING, logger="monai_glam.data.dataset"):
        loaded = [dataset[i] for i in range(len(dataset))]
    assert all(item["image"].shape == (1, 8, 6) for item in loaded)
    assert [item["label"] for item in loaded] == [[0, 0]] * 4  # each bad item replaced by the good one
    assert sorted(dataset.skipped) == [1, 2, 3]
    assert "1_L-CC.png" in dataset.skipped[1] and "colour image" in dataset.skipped[1]
    assert "truncated" in dataset.skipped[2]
    assert "FileNotFoundError" in dataset.skipped[3]
    assert len([r for r in caplog.records if "skipping item" in r.message]) == 3  # reported once each


def test_bad_items_raise_by_default(tmp_path: Path) -> None:
    dataset = MammogramDataset(_items(tmp_path), LoadMammogramd("image"))
    with pytest.raises(RuntimeError) as info:
        dataset[1]
    assert "colour image" in str(info.value.__cause__)


def test_all_items_bad(tmp_path: Path) -> None:
    dataset = MammogramDataset(_items(tmp_path)[1:], LoadMammogramd("image"), skip_bad_items=True)
    with pytest.raises(RuntimeError, match="all 3 items failed"):
        dataset[0]


def test_all_items_bad_is_a_one_line_value_error_naming_each_file_once(tmp_path: Path) -> None:
    items = _items(tmp_path)[1:]
    dataset = MammogramDataset(items, LoadMammogramd("image"), skip_bad_items=True)
    with pytest.raises(ValueError) as info:  # the command line reports ValueErrors in one line
        dataset[0]
    assert isinstance(info.value, NoUsableItemsError) and isinstance(info.value, RuntimeError)
    reasons = [dataset.skipped[i] for i in range(3)]
    assert str(info.value) == "all 3 items failed to load; the first problems: " + "; ".join(reasons)
    assert "\n" not in str(info.value)
    # The reader's messages start with the file already: it is not repeated in front of them.
    kinds = ("MammogramReadError", "MammogramReadError", "FileNotFoundError")
    for reason, kind, item in zip(reasons, kinds, items, strict=True):
        assert reason.startswith(f"{kind}: {item['image']}: "), reason


def test_atomic_output_leaves_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(KeyError), atomic_output_path(target) as temp:
        temp.write_text("half")
        raise KeyError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
