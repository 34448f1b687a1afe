from __future__ import annotations

import pytest
import torch

from monai_glam.apps.cli import main
from monai_glam.networks import GLAM
from tests.networks.nyu_layout import to_nyu_layout


def test_convert_nyu_writes_a_loadable_state_dict(tmp_path, capsys):
    torch.manual_seed(0)
    model = GLAM()
    src, dst = tmp_path / "model_joint.ckpt", tmp_path / "out" / "glam.pt"
    torch.save(to_nyu_layout(model.state_dict()), src, _use_new_zipfile_serialization=False)
    assert main(["convert-nyu", str(src), str(dst)]) == 0
    assert f"to {dst}" in capsys.readouterr().out
    converted = torch.load(dst, weights_only=True)
    fresh = GLAM()
    fresh.load_state_dict(converted)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert [p.name for p in dst.parent.iterdir()] == ["glam.pt"]  # no temporary file left behind
    before = dst.read_bytes()
    capsys.readouterr()
    assert main(["convert-nyu", str(src), str(dst)]) == 2  # an existing OUT is not replaced silently
    assert capsys.readouterr().err == (
        f"monai-glam convert-nyu: error: OUT {dst} already exists; pass --overwrite to replace it, or choose another "
        "path\n"
    )
    assert dst.read_bytes() == before
    assert main(["convert-nyu", str(src), str(dst), "--overwrite"]) == 0


def test_convert_nyu_reports_one_line_errors(tmp_path, capsys):
    assert main(["convert-nyu", str(tmp_path / "missing.ckpt"), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("monai-glam convert-nyu: error: checkpoint not found")
    assert err.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_help_lists_convert_nyu(capsys):
    assert main(["--help"]) == 0
    assert "convert-nyu" in capsys.readouterr().out


def _tiny_state() -> dict[str, torch.Tensor]:
    from monai_glam.networks import glam_network

    torch.manual_seed(0)
    return glam_network("tiny").state_dict()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            lambda: GLAM().state_dict(),
            "its 351 keys are already monai_glam's GLAM names (global_network.backbone.stem.weight, ...), so there is "
            "nothing to convert; pass it to --checkpoint or --init as it is",
        ),
        (
            lambda: {"network": _tiny_state(), "optimizer": {"state": {}, "param_groups": []}, "epoch": 3},
            "its 141 keys are already monai_glam's GLAM names (global_network.backbone.stem.weight, ...), so there is "
            "nothing to convert; pass it to --checkpoint or --init as it is",
        ),
        (
            lambda: {f"fc{i}.weight": torch.zeros(2) for i in range(141)},
            "none of its 141 keys starts with global_network.downsampling_branch., global_network.postprocess_module. "
            "or detection_network. (first keys: fc0.weight, fc1.weight, fc2.weight)",
        ),
    ],
    ids=["paper-state-dict", "training-checkpoint", "other-model"],
)
def test_convert_nyu_refuses_other_layouts_in_one_line(tmp_path, capsys, content, problem):
    """Regression: a monai_glam paper state dict was 'converted' (exit 0) and other files got a loading hint."""
    src, dst = tmp_path / "weights.pt", tmp_path / "out.pt"
    torch.save(content(), src)
    assert main(["convert-nyu", str(src), str(dst)]) == 2
    err = capsys.readouterr().err
    expected = f"{src} is not a published GLAM checkpoint (model_sep.ckpt / model_joint.ckpt): {problem}"
    assert err == f"monai-glam convert-nyu: error: {expected}\n"
    assert not dst.exists()


def test_convert_nyu_reports_unsafe_and_empty_files_through_the_reader(tmp_path, capsys):
    empty, dst = tmp_path / "empty.ckpt", tmp_path / "out.pt"
    empty.write_bytes(b"")
    assert main(["convert-nyu", str(empty), str(dst)]) == 2
    assert capsys.readouterr().err == f"monai-glam convert-nyu: error: cannot read checkpoint {empty}: empty file\n"
    folder = tmp_path / "folder.ckpt"
    folder.mkdir()
    assert main(["convert-nyu", str(folder), str(dst)]) == 2
    assert capsys.readouterr().err == (
        f"monai-glam convert-nyu: error: cannot read checkpoint {folder}: it is a directory, not a file\n"
    )
    assert not dst.exists()
