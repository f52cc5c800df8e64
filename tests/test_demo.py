import json

from amoseg.cli import main


def test_demo_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    assert json.loads((out / "check.json").read_text())["ok"] is True
    card = json.loads((out / "stats" / "stats.json").read_text())
    assert card["meta"]["modalities"] == {"CT": 8, "MR": 4}
    first = (out / "phantoms" / "imagesTr" / "amos_0002.nii.gz").stat().st_mtime_ns
    assert main(["demo", "--out", str(out)]) == 0  # a second run reuses the phantoms
    assert (out / "phantoms" / "imagesTr" / "amos_0002.nii.gz").stat().st_mtime_ns == first
    assert "Label Information Statistics" in capsys.readouterr().out
