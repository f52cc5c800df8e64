from __future__ import annotations

import csv
import json

import pytest

from amoseg.evaluation import evaluate_folder, write_outputs
from amoseg.evaluation import plots as plots_module


def test_outputs_content(study, tmp_path):
    pred, ref = study
    evaluation = evaluate_folder(pred, ref, labels=(1, 4, 6), tolerance_profile="flare22", workers=1)
    written = write_outputs(evaluation, tmp_path / "out")
    assert sorted(path.name for path in written) == [
        "boxplot.png",
        "per_case.csv",
        "summary.json",
        "summary.md",
    ]
    rows = list(csv.DictReader((tmp_path / "out" / "per_case.csv").open()))
    assert len(rows) == 3 * 3
    first = rows[0]
    assert (first["case"], first["modality"], first["organ"], first["label"]) == (
        "amos_0001",
        "CT",
        "spleen",
        "1",
    )
    assert first["tolerance_mm"] == "3"
    assert float(first["ref_volume_ml"]) == pytest.approx(5 * 5 * 4 * 2 / 1000)  # 1 x 1 x 2 mm voxels
    tp, fp, fn, tn = (
        int(first[key]) for key in ("true_positive", "false_positive", "false_negative", "true_negative")
    )
    assert tp + fp + fn + tn == 20 * 18 * 10 and fp == fn == 5 * 4
    gallbladder = rows[1]
    assert gallbladder["dsc"] == gallbladder["nsd"] == "" and gallbladder["note"] == "absent from both"

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["tolerance_profile"] == "flare22"
    assert summary["tolerance_mm"] == {"spleen": 3.0, "gallbladder": 2.0, "liver": 5.0}
    everything = summary["groups"]["all"]
    assert everything["cases"] == 3 and everything["not_a_number"] == 3
    assert everything["organs"]["gallbladder"]["dsc_mean"] is None  # NaN as null
    assert everything["mDSC"] == pytest.approx(evaluation.groups["all"].mean_dsc)
    assert summary["groups"]["MR"]["cases"] == 1

    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "profile flare22" in markdown and "Liver 5 mm" in markdown
    assert "| Organ | CT DSC | CT NSD | MR DSC | MR NSD | all DSC | all NSD |" in markdown
    assert "| Gallbladder | – | – |" in markdown
    assert "3 organ-case pairs" in markdown


def test_a_failure_while_writing_leaves_nothing(study, tmp_path, monkeypatch):
    pred, ref = study
    evaluation = evaluate_folder(pred, ref, workers=1)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots_module, "write_boxplot", broken)
    with pytest.raises(RuntimeError):
        write_outputs(evaluation, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out")]
