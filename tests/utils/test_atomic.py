from __future__ import annotations

import os
import stat

import pytest

from monai_glam.utils.atomic import atomic_output_path, atomic_write_text, remove_stale_temporaries


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_output_path_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.fstat(fd).st_mode)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_output_path(tmp_path / "b.bin") as temp_path:
        temp_path.write_bytes(b"data")
    assert (tmp_path / "b.bin").read_bytes() == b"data"
    assert stat.S_ISREG(synced[0])
    if os.name == "posix":
        assert stat.S_ISDIR(synced[-1])


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "c.txt"
    target.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_output_path(target) as temp_path:
        temp_path.write_text("partial")
        raise OSError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["c.txt"]


def test_remove_stale_temporaries_only_touches_that_destination(tmp_path):
    names = [".x.pt.a1.tmp.pt", ".x.pt.b2.tmp", ".y.pt.a1.tmp.pt", "x.pt", ".x.pt.a1.bak"]
    for name in names:
        (tmp_path / name).write_text("x")
    removed = remove_stale_temporaries(tmp_path / "x.pt")
    assert sorted(p.name for p in removed) == [".x.pt.a1.tmp.pt", ".x.pt.b2.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.pt.a1.bak", ".y.pt.a1.tmp.pt", "x.pt"]
    assert remove_stale_temporaries(tmp_path / "missing" / "x.pt") == []
