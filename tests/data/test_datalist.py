"""Datalist JSON, CSV and exam-list converters, and patient-level splitting."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from monai.data import load_decathlon_datalist

from monai_glam.data import (
    UnsafePickleError,
    datalist_from_csv,
    datalist_from_exam_list,
    read_datalist,
    split_by_patient,
    validate_item,
    write_datalist,
)


def _items(tmp_path: Path, patients: int = 10, per_patient: int = 4) -> list[dict]:
    items = []
    for patient in range(patients):
        for view in range(per_patient):
            image = tmp_path / "images" / f"{patient}_{view}.png"
            image.parent.mkdir(exist_ok=True)
            image.touch()
            items.append({"image": str(image), "label": [patient % 2, view % 2], "patient_id": f"p{patient}"})
    return items


def test_write_then_read_with_monai_and_ourselves(tmp_path: Path) -> None:
    items = _items(tmp_path, patients=3)
    mask = tmp_path / "masks" / "m.png"
    mask.parent.mkdir()
    mask.touch()
    items[0]["mask_benign"] = str(mask)
    path = write_datalist(tmp_path / "lists" / "datalist.json", {"training": items[:8], "test": items[8:]})
    document = json.loads(path.read_text())
    assert document["training"][0]["image"] == "../images/0_0.png"  # stored relative to the JSON file
    monai_items = load_decathlon_datalist(str(path), is_segmentation=False, data_list_key="training")
    assert monai_items[0]["image"] == str(items[0]["image"])
    assert monai_items[0]["mask_benign"] == str(mask)
    assert monai_items[1]["label"] == [0, 1]
    assert read_datalist(path, "test") == [validate_item(item) for item in items[8:]]


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"label": [0, 1]}, "has no 'image'"),
        ({"image": "a.png"}, "has no 'label'"),
        ({"image": "a.png", "label": [1]}, r"\[benign, malignant\]"),
        ({"image": "a.png", "label": "01"}, r"\[benign, malignant\]"),
        ({"image": "a.png", "label": [0, 2]}, "must be 0 or 1"),
        ({"image": "a.png", "label": [0, "x"]}, "must be 0 or 1"),
        ({"image": "a.png", "label": [0, 1], "laterality": "B"}, "laterality"),
    ],
)
def test_invalid_items_are_named(item: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_item(item, "training[7]")


def test_read_datalist_reports_bad_items_and_missing_splits(tmp_path: Path) -> None:
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": [{"image": "a.png", "label": [0, 1]}, {"image": "b.png"}]}))
    with pytest.raises(ValueError, match=r"datalist.json training\[1\].*has no 'label'"):
        read_datalist(path)
    assert read_datalist(path, "validation") == []
    with pytest.raises(ValueError, match="unknown split"):
        read_datalist(path, "train")
    with pytest.raises(FileNotFoundError):
        read_datalist(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("header", "row", "label"),
    [
        ("image,benign,malignant,laterality,view,patient_id", "a.png,1,0,L,CC,p1", [1, 0]),
        ("image,label,mask_malignant,horizontal_flip", 'a.png,"0,1",m.png,YES', [0, 1]),
    ],
)
def test_csv_converter(tmp_path: Path, header: str, row: str, label: list[int]) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"{header}\n{row}\n")
    (item,) = datalist_from_csv(path)
    assert item["image"] == str(tmp_path / "a.png")
    assert item["label"] == label
    if "mask_malignant" in header:
        assert item["mask_malignant"] == str(tmp_path / "m.png")
        assert item["horizontal_flip"] is True
    else:
        assert (item["laterality"], item["view"], item["patient_id"]) == ("L", "CC", "p1")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("path,benign,malignant\na.png,0,1\n", "no 'image' column"),
        ("image,benign\na.png,0\n", "'benign' and 'malignant'"),
        ("image,benign,malignant\na.png,0,\n", "line 2.*has no 'label'|line 2.*benign, malignant"),
    ],
)
def test_csv_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "list.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        datalist_from_csv(path)


def _exam_list() -> list[dict]:
    return [
        {
            "horizontal_flip": "NO",
            "L-CC": ["0_L-CC"],
            "R-CC": ["0_R-CC"],
            "L-MLO": ["0_L-MLO"],
            "R-MLO": ["0_R-MLO"],
            "cancer_label": {"left_benign": 0, "left_malignant": 1, "right_benign": 1, "right_malignant": 0},
            "R-CC_benign_seg": ["0_R-CC_benign"],
            "best_center": {"R-CC": [(10, 20)]},
        },
        {
            "horizontal_flip": "YES",
            "L-CC": ["1_L-CC"],
            "cancer_label": {"left_benign": 0, "left_malignant": 0, "right_benign": 0, "right_malignant": 0},
        },
    ]


def test_exam_list_converter(tmp_path: Path) -> None:
    (tmp_path / "seg").mkdir()
    (tmp_path / "seg" / "0_R-CC_benign.png").touch()
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps(_exam_list()))
    items = datalist_from_exam_list(path, tmp_path / "img", mask_dir=tmp_path / "seg")
    by_name = {Path(item["image"]).stem: item for item in items}
    assert sorted(by_name) == ["0_L-CC", "0_L-MLO", "0_R-CC", "0_R-MLO", "1_L-CC"]
    assert by_name["0_L-MLO"]["label"] == [0, 1] and by_name["0_R-MLO"]["label"] == [1, 0]
    assert by_name["0_R-CC"]["mask_benign"] == str(tmp_path / "seg" / "0_R-CC_benign.png")
    assert "mask_benign" not in by_name["0_R-MLO"]
    assert by_name["0_R-CC"]["best_center"] == [10, 20]
    assert (by_name["0_R-MLO"]["laterality"], by_name["0_R-MLO"]["view"]) == ("R", "MLO")
    assert by_name["1_L-CC"]["horizontal_flip"] is True
    assert by_name["1_L-CC"]["patient_id"] == "1" != by_name["0_L-CC"]["patient_id"]


def test_exam_list_converter_skips_missing_images(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "0_L-CC.png").touch()
    path = tmp_path / "exam_list.json"
    path.write_text(json.dumps(_exam_list()))
    with pytest.warns(UserWarning, match="left out 4 images"):
        items = datalist_from_exam_list(path, tmp_path / "img", skip_missing_images=True)
    assert [Path(item["image"]).name for item in items] == ["0_L-CC.png"]


@pytest.mark.parametrize(
    ("exams", "problem"),
    [
        ({"not": "a list"}, "list of exams"),
        ([{"L-CC": ["a"]}], "exam 0: has no 'cancer_label'"),
        ([{"L-CC": ["a"], "cancer_label": {"left_benign": 0}}], "left_malignant"),
    ],
)
def test_exam_list_errors(tmp_path: Path, exams: object, problem: str) -> None:
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps(exams))
    with pytest.raises(ValueError, match=problem):
        datalist_from_exam_list(path, tmp_path)


def test_exam_list_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps([{"L-CC": ["a"], "cancer_label": print}]))
    with pytest.raises(UnsafePickleError, match=r"builtins\.print"):
        datalist_from_exam_list(path, tmp_path)


def test_real_exam_list(shared_dir: Path) -> None:
    root = shared_dir / "data" / "nyu_sample"
    if not root.is_dir():
        pytest.skip("NYU sample is absent")
    items = datalist_from_exam_list(root / "exam_list_before_cropping.pkl", root / "images", root / "segmentation")
    assert len(items) == 16
    with_masks = sorted(Path(item["image"]).stem for item in items if "mask_benign" in item)
    assert with_masks == ["0_R-CC", "0_R-MLO"]
    assert all(item["label"] == [1, 0] for item in items if item["image"].endswith("0_R-CC.png"))


@pytest.mark.parametrize(("fractions", "sizes"), [((0.8, 0.1, 0.1), (8, 1, 1)), ((0.6, 0.2, 0.2), (6, 2, 2))])
def test_split_by_patient(tmp_path: Path, fractions: tuple, sizes: tuple) -> None:
    items = _items(tmp_path, patients=10)
    splits = split_by_patient(items, fractions, seed=3)
    patients = {name: {item["patient_id"] for item in split} for name, split in splits.items()}
    assert tuple(len(patients[name]) for name in ("training", "validation", "test")) == sizes
    assert not patients["training"] & patients["validation"]
    assert not patients["training"] & patients["test"]
    assert not patients["validation"] & patients["test"]
    assert sum(len(split) for split in splits.values()) == len(items)
    assert split_by_patient(items, fractions, seed=3) == splits  # deterministic
    assert split_by_patient(list(reversed(items)), fractions, seed=3)["test"][0]["patient_id"] in patients["test"]


def test_split_seed_changes_the_split(tmp_path: Path) -> None:
    items = _items(tmp_path, patients=20, per_patient=1)
    assert split_by_patient(items, seed=0) != split_by_patient(items, seed=1)


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.2, 0.1), (1.2, -0.1, -0.1)])
def test_split_rejects_bad_fractions(fractions: tuple) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_by_patient([], fractions)


@pytest.mark.parametrize(("require_label", "accepted"), [(True, False), (False, True)])
def test_read_datalist_labels_optional_for_inference(tmp_path: Path, require_label: bool, accepted: bool) -> None:
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"test": [{"image": "a.png"}, {"image": "b.png", "label": [0, 1]}]}))
    if not accepted:
        with pytest.raises(ValueError, match=r"test\[0\].*has no 'label'"):
            read_datalist(datalist, "test", require_label=require_label)
        return
    items = read_datalist(datalist, "test", require_label=require_label)
    assert "label" not in items[0] and items[1]["label"] == [0, 1]
    datalist.write_text(json.dumps({"test": [{"image": "c.png", "label": [0, 2]}]}))
    with pytest.raises(ValueError, match=r"test\[0\] label"):  # a label that is there is still checked
        read_datalist(datalist, "test", require_label=False)


def _csv(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8-sig"))  # Excel's "CSV UTF-8" starts with a byte-order mark
    return path


def test_read_datalist_reads_a_csv_table_by_its_split_column(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    path = _csv(
        tmp_path / "lists" / "datalist.csv",
        "image,benign,malignant,split,laterality\n"
        "a.png,0,1,training,L\n"
        "b.png,1,0,Test,R\n"
        "c.png,1,1,training,R\n"
        "d.png,0,0,validation,L\n",
    )
    training = read_datalist(path, "training")
    assert training == [
        {"image": str(tmp_path / "lists" / "a.png"), "label": [0, 1], "laterality": "L"},
        {"image": str(tmp_path / "lists" / "c.png"), "label": [1, 1], "laterality": "R"},
    ]
    assert [item["image"] for item in read_datalist(path, "test")] == [str(tmp_path / "lists" / "b.png")]
    assert [item["label"] for item in read_datalist(path, "validation")] == [[0, 0]]


def test_read_datalist_csv_without_labels_for_inference(tmp_path: Path) -> None:
    path = _csv(tmp_path / "images.csv", "image,split\nscans/a.png,test\nscans/b.png,test\n")
    items = read_datalist(path, "test", require_label=False)
    assert items == [{"image": str(tmp_path / "scans" / "a.png")}, {"image": str(tmp_path / "scans" / "b.png")}]
    with pytest.raises(ValueError, match="needs 'benign' and 'malignant' columns or a 'label' column"):
        read_datalist(path, "test")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            'image,label\na.png,"0,1"\n',
            "{path}: a CSV datalist needs a 'split' column (training, validation or test) for each row",
        ),
        ("image,split\na.png,train\n", "{path} line 2: split must be one of training, validation, test, got 'train'"),
        ("image,split\na.png,test\nb.png,\n", "{path} line 3: split must be one of training, validation, test, got ''"),
        (
            "image,split\na.png,test\nb.png,test\n./a.png,test\n",
            "{path} test: image {folder}/a.png is listed twice (lines 2 and 4)",
        ),
        ('image,split,label\na.png,test,"0,2"\n', "{path} line 2 label must be 0 or 1, got '2'"),
    ],
    ids=["no-split-column", "unknown-split", "empty-split", "duplicate", "bad-label"],
)
def test_read_datalist_csv_errors_are_one_line(tmp_path: Path, content: str, problem: str) -> None:
    path = _csv(tmp_path / "datalist.csv", content)
    with pytest.raises(ValueError) as info:
        read_datalist(path, "test", require_label=False)
    assert str(info.value) == problem.format(path=path, folder=tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "datalist.json",
            '{"test": ["a.png"]}'.encode("utf-16"),
            "not a UTF-8 text file (invalid start byte at byte 0)",
        ),
        ("datalist.csv", b"image,split\n\xff.png,test\n", "not a UTF-8 text file (invalid start byte at byte 12)"),
    ],
    ids=["json-utf16", "csv-latin1"],
)
def test_read_datalist_names_a_file_that_is_not_utf8(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_datalist(path, "test", require_label=False)
    assert str(info.value) == f"{path}: {problem}"
