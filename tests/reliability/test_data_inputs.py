"""Hostile data inputs: each is refused with one line that names the file and the problem, or read correctly."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_glam.data import (
    MammogramReadError,
    UnsafePickleError,
    datalist_from_csv,
    load_mammogram,
    read_datalist,
    restricted_load,
    write_png,
)
from monai_glam.data.dicom import build_mammogram_dataset, write_dicom_mammogram

REPO_ROOT = Path(__file__).resolve().parents[2]


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


# --- restricted unpickler -------------------------------------------------------------------------------------


def _shared_pairs(levels: int) -> list:
    x: list = []
    for _ in range(levels):
        x = [x, x]
    return x


def _nested(levels: int) -> list:
    x: list = []
    for _ in range(levels):
        x = [x]
    return x


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_shared_nested_pairs_do_not_hang_the_unpickler(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps(_shared_pairs(40), protocol=protocol))
    assert path.stat().st_size < 400  # a few hundred bytes hold 2**40 leaves through memoised sharing
    start = time.perf_counter()
    value = restricted_load(path)
    assert time.perf_counter() - start < 5.0  # a guard against hanging, not a benchmark
    assert value[0] is value[1]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (list(range(1_000_001)), "data holds more than 1,000,000 objects"),
        (_nested(102), "data nested more than 100 levels deep"),
    ],
    ids=["too-many-objects", "too-deep"],
)
def test_oversized_pickles_are_refused_with_one_line(tmp_path: Path, value: object, problem: str) -> None:
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps(value, protocol=2))
    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        restricted_load(path)
    assert time.perf_counter() - start < 5.0
    assert isinstance(err.value, UnsafePickleError)
    assert _one_line(err) == f"{path}: {problem}"


# --- datalists ------------------------------------------------------------------------------------------------


def _write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("document", "split", "expected"),
    [
        (
            {"training": [{"image": "a.png", "label": [0, 1]}, {"image": 5, "label": [0, 1]}]},
            "training",
            "{path} training[1]: 'image' must be a file path (a string), got a number 5",
        ),
        (
            {"validation": [{"image": ["a.png"], "label": [0, 1]}]},
            "validation",
            "{path} validation[0]: 'image' must be a file path (a string), got an array ['{folder}/a.png']",
        ),
        (
            {"training": [{"image": "a.png", "label": [0, 1], "mask_benign": {"path": "m.png"}}]},
            "training",
            "{path} training[0]: 'mask_benign' must be a file path (a string), got an object {{'path': 'm.png'}}",
        ),
        (
            {"training": {"image": "a.png", "label": [0, 1]}},
            "training",
            "{path}: split 'training' must be a list of items, got an object",
        ),
        ({"test": "a.png"}, "test", "{path}: split 'test' must be a list of items, got a string"),
        ({"training": [7]}, "training", "{path} training[0]: expected an object, got a number"),
        (
            {
                "test": [
                    {"image": "a.png", "label": [0, 1]},
                    {"image": "b.png", "label": [1, 0]},
                    {"image": "./a.png", "label": [0, 1]},
                ]
            },
            "test",
            "{path} test: image {folder}/a.png is listed twice (test[0] and test[2])",
        ),
    ],
    ids=["image-number", "image-list", "mask-object", "split-object", "split-string", "item-number", "duplicate"],
)
def test_bad_datalists_are_refused_with_one_line(tmp_path: Path, document: dict, split: str, expected: str) -> None:
    path = _write_json(tmp_path / "datalist.json", document)
    with pytest.raises(ValueError) as err:
        read_datalist(path, split)
    assert _one_line(err) == expected.format(path=path, folder=tmp_path)


def test_duplicates_can_be_allowed(tmp_path: Path) -> None:
    item = {"image": "a.png", "label": [0, 1]}
    path = _write_json(tmp_path / "datalist.json", {"training": [item, item]})
    items = read_datalist(path, allow_duplicates=True)
    assert [entry["image"] for entry in items] == [str(tmp_path / "a.png")] * 2


def test_null_split_is_empty_and_plain_test_list_is_read(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "datalist.json", {"training": None, "test": ["a.png", "b.png"]})
    assert read_datalist(path, "training") == []
    items = read_datalist(path, "test", require_label=False)
    assert [entry["image"] for entry in items] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_excel_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("image,benign,malignant\nmammo_é.png,0,1\n".encode("utf-8-sig"))
    items = datalist_from_csv(path)
    assert [(item["image"], item["label"]) for item in items] == [(str(tmp_path / "mammo_é.png"), [0, 1])]


def test_json_datalist_is_utf8_in_a_c_locale_subprocess(tmp_path: Path) -> None:
    path = _write_json(tmp_path / "datalist.json", {"training": [{"image": "brüst_乳房.png", "label": [0, 1]}]})
    env = {
        **os.environ,
        "LC_ALL": "C",
        "LANG": "C",
        "PYTHONUTF8": "0",
        "PYTHONCOERCECLOCALE": "0",
        "PYTHONIOENCODING": "ascii:backslashreplace",
        "PYTHONPATH": str(REPO_ROOT),
        "OMP_NUM_THREADS": "1",
    }
    code = "import sys; from monai_glam.data import read_datalist; print(ascii(read_datalist(sys.argv[1])[0]['image']))"
    result = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", code, str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ascii(str(tmp_path / "brüst_乳房.png"))


# --- image files ----------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(path: Path) -> Path:
    # A valid PNG header claiming 100000 x 100000 8-bit gray pixels, with a tiny (truncated) image stream.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")
    )
    return path


def _dicom_with_bad_frames(path: Path) -> Path:
    dataset = build_mammogram_dataset(np.zeros((6, 4), np.uint16), "L", "CC")
    dataset.NumberOfFrames = 11
    write_dicom_mammogram(path, dataset)
    raw = path.read_bytes()
    good = b"\x28\x00\x08\x00IS\x02\x0011"  # (0028,0008) NumberOfFrames, explicit VR little endian
    assert raw.count(good) == 1
    path.write_bytes(raw.replace(good, b"\x28\x00\x08\x00IS\x02\x001A"))
    return path


def _make_fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(path)
    return path


def _make_directory(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make", "name", "problem"),
    [
        (_make_directory, "scan.png", "is a directory, not an image file"),
        (_make_fifo, "scan.png", "is not a regular file (a FIFO, socket or device)"),
        (
            _png_bomb,
            "bomb.png",
            "refused as a possible decompression bomb (Image size (10000000000 pixels) exceeds limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS} pixels, could be decompression bomb DOS attack.)",
        ),
        (_dicom_with_bad_frames, "frames.dcm", "tag NumberOfFrames is not an integer: '1A'"),
    ],
    ids=["directory", "fifo", "decompression-bomb", "dicom-frames-1A"],
)
def test_bad_image_files_are_refused_with_one_line(
    tmp_path: Path, make: Callable[[Path], Path], name: str, problem: str
) -> None:
    path = make(tmp_path / name)
    start = time.perf_counter()
    with pytest.raises(MammogramReadError) as err:
        load_mammogram(path)
    assert time.perf_counter() - start < 5.0
    assert _one_line(err) == f"{path}: {problem}"


def test_missing_image_is_still_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_mammogram(tmp_path / "missing.png")
    assert _one_line(err) == f"{tmp_path / 'missing.png'}: no such file"


def test_a_normal_png_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "0_L-CC.png"
    write_png(path, np.arange(24, dtype=np.uint16).reshape(6, 4))
    assert load_mammogram(path).shape == (1, 6, 4)
