"""The quality reference travels in the plan: copied from the fingerprint, kept through plans.json,
and left out of the plan id, so a cache made without it still belongs to the same plan."""

from __future__ import annotations

import dataclasses
import json

import pytest

from amoseg.data.reference import ModalityReference, ObservedRange, OrganReference, QualityReference
from amoseg.errors import InputError
from amoseg.planning import Plan, make_plan
from amoseg.planning.plan import MeasuredStep
from amoseg.planning.planner import size_by_measurement

REFERENCE = QualityReference(
    {
        "CT": ModalityReference(
            "training",
            120,
            {
                6: OrganReference(
                    volume_ml=ObservedRange(900.0, 2400.5, 118),
                    intensity_mean=ObservedRange(35.0, 140.0, 120),
                    centre_above_mm={1: ObservedRange(-40.0, 25.0, 117)},
                ),
                1: OrganReference(volume_ml=ObservedRange(80.0, 700.0, 119)),
            },
        )
    }
)


@pytest.fixture
def measured_fingerprint(amos_like_fingerprint):
    return dataclasses.replace(amos_like_fingerprint, quality_reference=REFERENCE)


@pytest.mark.parametrize("preset", ["fullres", "fast", "cpu"])
def test_the_plan_carries_the_fingerprints_reference_without_changing_its_id(
    amos_like_fingerprint, measured_fingerprint, preset
):
    plain = make_plan(amos_like_fingerprint, preset)
    carried = make_plan(measured_fingerprint, preset)
    assert plain.quality_reference is None and carried.quality_reference == REFERENCE
    assert carried.plan_id == plain.plan_id
    assert carried == dataclasses.replace(plain, quality_reference=REFERENCE)


def test_plans_json_keeps_the_reference_and_writes_each_range_on_one_line(measured_fingerprint, tmp_path):
    plan = make_plan(measured_fingerprint, "fullres")
    plan.save(tmp_path / "plans.json")
    text = (tmp_path / "plans.json").read_text()
    assert '"volume_ml": {"min": 900.0, "max": 2400.5, "cases": 118},' in text
    assert '"spleen": {"min": -40.0, "max": 25.0, "cases": 117}' in text
    stored = json.loads(text)
    assert stored["plan_id"] == plan.plan_id
    assert list(stored)[-1] == "quality_reference"  # after the decisions a reader looks for first
    loaded = Plan.load(tmp_path / "plans.json")
    assert loaded == plan and loaded.quality_reference == REFERENCE


def test_a_plan_without_a_reference_writes_no_key_so_older_amoseg_reads_it(amos_like_fingerprint):
    plan = make_plan(amos_like_fingerprint, "fast")
    assert "quality_reference" not in plan.to_dict()
    assert Plan.from_dict(plan.to_dict()) == plan


def test_editing_the_reference_by_hand_keeps_the_id_and_a_bad_one_is_refused(measured_fingerprint, tmp_path):
    plan = make_plan(measured_fingerprint, "fast")
    data = plan.to_dict()
    data["quality_reference"]["CT"]["organs"]["liver"]["volume_ml"]["max"] = 3000.0
    edited = Plan.from_dict(data)
    assert edited.plan_id == plan.plan_id
    assert edited.quality_reference.for_modality("CT").organs[6].volume_ml.max == 3000.0
    data["quality_reference"]["CT"]["organs"]["liver"]["volume_ml"]["median"] = 1.0
    (tmp_path / "plans.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="not an amoseg plan: unknown range keys"):
        Plan.load(tmp_path / "plans.json")


def test_a_cpu_plan_sized_by_measurement_keeps_the_reference(measured_fingerprint):
    def measure(plan: Plan) -> MeasuredStep:
        return MeasuredStep(
            seconds=0.3, precision="float32", cpu="test", instruction_set="AVX2", threads=2, gflops=0
        )

    plan = size_by_measurement(measured_fingerprint, "cpu", measure)
    assert plan.measured_step is not None and plan.quality_reference == REFERENCE
