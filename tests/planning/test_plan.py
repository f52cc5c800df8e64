"""The Plan record: frozen, JSON round trip, content-derived id, clear errors on bad files."""

from __future__ import annotations

import dataclasses
import json

import pytest

from amoseg.errors import AmosegError, InputError
from amoseg.planning import Plan, make_plan


def test_plan_is_frozen_all_the_way_down(amos_like_fingerprint):
    plan = make_plan(amos_like_fingerprint, "fullres")
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.batch_size = 4
    with pytest.raises(TypeError):
        plan.normalization["CT"] = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.network.filters = (1,)


def test_json_round_trip_keeps_plan_and_id(amos_like_fingerprint, tmp_path):
    for preset in ("fullres", "fast", "cpu"):
        plan = make_plan(amos_like_fingerprint, preset)
        path = tmp_path / f"{preset}.json"
        plan.save(path)
        again = Plan.load(path)
        assert again == plan
        assert again.plan_id == plan.plan_id
        assert json.loads(path.read_text())["plan_id"] == plan.plan_id
        assert plan.plan_id.startswith(preset + "_")


def test_plan_id_follows_content(amos_like_fingerprint):
    plan = make_plan(amos_like_fingerprint, "fullres")
    assert make_plan(amos_like_fingerprint, "fullres").plan_id == plan.plan_id
    edited = dataclasses.replace(plan, batch_size=plan.batch_size + 1)
    assert edited.plan_id != plan.plan_id
    bigger = make_plan(amos_like_fingerprint, "fullres", gpu_memory_gb=24)
    assert bigger.plan_id != plan.plan_id
    # Unset, the newest network field is not written: plans saved before it existed keep their ids.
    assert "single_conv_blocks" not in plan.to_dict()["network"]
    single = dataclasses.replace(plan, network=dataclasses.replace(plan.network, single_conv_blocks=True))
    assert single.to_dict()["network"]["single_conv_blocks"] is True
    assert single.plan_id != plan.plan_id


def test_hand_edited_file_gets_a_new_id(amos_like_fingerprint, tmp_path):
    plan = make_plan(amos_like_fingerprint, "fast")
    data = plan.to_dict()
    data["batch_size"] = 7
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(data))
    loaded = Plan.load(path)
    assert loaded.batch_size == 7
    assert loaded.plan_id != data["plan_id"]  # the stored id is stale; it is recomputed from content


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"preset": "fullres"}', "missing keys"),
        ('{"preset": "fullres", "surprise": 1}', "unknown keys"),
    ],
)
def test_bad_plan_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "plans.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        Plan.load(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="not found"):
        Plan.load(tmp_path / "missing.json")


def test_missing_modality_is_a_clear_error(amos_like_fingerprint):
    fingerprint = dataclasses.replace(amos_like_fingerprint, foreground_intensity={})
    plan = make_plan(fingerprint, "fullres")
    assert set(plan.normalization) == {"MR"}
    with pytest.raises(AmosegError, match="no CT normalization"):
        plan.normalization_for("CT")


def test_dynunet_kwargs_are_plain_lists(amos_like_fingerprint):
    kwargs = make_plan(amos_like_fingerprint, "fullres").network.dynunet_kwargs()
    assert kwargs["in_channels"] == 1 and kwargs["out_channels"] == 16
    assert all(isinstance(item, list) for item in kwargs["kernel_size"] + kwargs["strides"])
    assert kwargs["upsample_kernel_size"] == kwargs["strides"][1:]
