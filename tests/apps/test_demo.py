from __future__ import annotations

import csv
import json

from monai_glam.apps.cli import main


def test_minimal_demo_runs_every_step(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--minimal", "--no-progress"]) == 0
    out = capsys.readouterr().out
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "thresholds (benign, malignant)", "done in"):
        assert step in out
    rows = list(csv.DictReader((tmp_path / "evaluation" / "predictions" / "predictions.csv").open()))
    assert rows and all(0.0 <= float(row["prob_global_malignant"]) <= 1.0 for row in rows)
    report = json.loads((tmp_path / "evaluation" / "report.json").read_text())
    assert report["num_images"] == len(rows)
    assert (tmp_path / "evaluation" / "report.md").read_text().startswith("#")
    assert any((tmp_path / "evaluation" / "predictions" / "overlays").iterdir())
    assert (tmp_path / "runs" / "local" / "model_config.json").is_file()
    # The fused map against the global map alone, on the test split (issue 11's demo summary).
    assert "fused / global-only Dice:" in out and "global map only" in out
    comparison = json.loads((tmp_path / "evaluation" / "localization.json").read_text())
    assert list(comparison["methods"]) == ["fused", "global", "local"]
    assert comparison["num_images"]["test"] == len(rows)
    assert "| fused map |" in (tmp_path / "evaluation" / "localization.md").read_text()
    # A second run into the same folder is refused before anything is touched.
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["demo", "--output", str(tmp_path), "--minimal", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path} already holds results (data, evaluation, runs and 1 more); pass --overwrite" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    (tmp_path / "runs" / "global" / "stale.txt").write_text("from the earlier run")
    assert main(["demo", "--output", str(tmp_path), "--minimal", "--no-progress", "--overwrite"]) == 0
    assert (
        not (tmp_path / "runs" / "global" / "stale.txt").exists() and (tmp_path / "evaluation" / "report.md").is_file()
    )


def test_demo_rejects_too_few_images(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--num", "4", "--no-progress"]) == 2
    assert "argument --num: must be an integer >= 8, got 4" in capsys.readouterr().err


def test_demo_help(capsys):
    assert main(["demo", "--help"]) == 0
    assert "--minimal" in capsys.readouterr().out
