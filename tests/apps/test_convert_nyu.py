from __future__ import annotations

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


def test_convert_nyu_reports_one_line_errors(tmp_path, capsys):
    assert main(["convert-nyu", str(tmp_path / "missing.ckpt"), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("monai-glam convert-nyu: error: checkpoint not found")
    assert err.count("\n") == 1
    assert not (tmp_path / "out.pt").exists()


def test_help_lists_convert_nyu(capsys):
    assert main(["--help"]) == 0
    assert "convert-nyu" in capsys.readouterr().out
