"""Reading back what ``amoseg evaluate`` wrote: the rows and the summary equal what was computed."""

from __future__ import annotations

import json
import math

import pytest

from amoseg.errors import InputError
from amoseg.evaluation import evaluate_folder, write_outputs
from amoseg.evaluation.records import read_per_case, read_summary


def test_written_outputs_read_back_as_computed(study, tmp_path):
    pred, ref = study
    evaluation = evaluate_folder(pred, ref, labels=(1, 4, 6), tolerance_profile="flare22", workers=1)
    write_outputs(evaluation, tmp_path / "out", plot=False)
    rows = read_per_case(tmp_path / "out" / "per_case.csv")
    computed = [(case.case_id, score) for case in evaluation.cases for score in case.organs]
    assert [(row.case_id, row.label) for row in rows] == [(case, score.label) for case, score in computed]
    for row, (_, score) in zip(rows, computed, strict=True):
        for read, exact in ((row.dsc, score.dsc), (row.nsd, score.nsd)):
            assert (math.isnan(read) and math.isnan(exact)) or read == pytest.approx(exact, abs=1e-6)
    summary = read_summary(tmp_path / "out" / "summary.json")
    assert summary["cases"] == len(evaluation.cases) and set(summary["labels"].values()) == {1, 4, 6}


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"cases": 2, "labels": {"liver": 6}}, "KeyError: 'groups'"),
        ({"cases": 2, "labels": {"liver": "six"}, "groups": {"all": {"cases": 2}}}, "ValueError"),
        ({"cases": 2, "labels": {}, "groups": {}}, "no groups or no labels"),
    ],
)
def test_a_damaged_summary_is_refused_naming_it(tmp_path, content, fragment):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match="not an amoseg evaluation summary") as raised:
        read_summary(path)
    assert str(path) in str(raised.value) and fragment in str(raised.value)


def test_a_per_case_file_without_its_columns_is_refused(tmp_path):
    path = tmp_path / "per_case.csv"
    path.write_text("case,organ\namos_0001,liver\n")
    with pytest.raises(InputError, match="no column modality, label, dsc, nsd"):
        read_per_case(path)
