"""The restricted unpickler admits plain data and refuses anything that names a callable."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import pytest

from monai_glam.data import UnsafePickleError, restricted_load, restricted_loads


class _RunsShellCommand:
    """A classic malicious payload: unpickling it would call os.system."""

    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


PLAIN_VALUES = [
    [{"horizontal_flip": "NO", "L-CC": ["0_L-CC"], "cancer_label": {"benign": 1, "malignant": 0}}],
    {"a": (1, 2.5, None, True), "b": {1, 2}, "c": frozenset({3}), "e": 1 + 2j},
]


@pytest.mark.parametrize("value", PLAIN_VALUES)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_plain_data_loads(value: object, protocol: int) -> None:
    assert restricted_loads(pickle.dumps(value, protocol=protocol)) == value


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (_RunsShellCommand(), "system"),
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        ([Path("/etc/passwd")], "pathlib"),
    ],
)
def test_globals_are_refused(payload: object, named: str) -> None:
    data = pickle.dumps(payload)
    with pytest.raises(UnsafePickleError, match=named):
        restricted_loads(data)


def test_malicious_exam_list_file_is_refused_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "exam_list.pkl"
    path.write_bytes(pickle.dumps([{"L-CC": ["0_L-CC"], "evil": _RunsShellCommand()}]))
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(UnsafePickleError, match=r"exam_list\.pkl: .*(posix|os)\.system"):
        restricted_load(path)
    assert calls == []  # nothing ran


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", pickle.dumps([1, 2, 3])[:-3]])
def test_invalid_pickles_raise_value_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.pkl: not a valid pickle"):
        restricted_load(path)


def test_real_exam_list(shared_dir: Path) -> None:
    path = shared_dir / "data" / "nyu_sample" / "exam_list_before_cropping.pkl"
    if not path.is_file():
        pytest.skip("NYU exam list is absent")
    exams = restricted_load(path)
    assert isinstance(exams, list) and exams[0]["L-CC"] == ["0_L-CC"]
