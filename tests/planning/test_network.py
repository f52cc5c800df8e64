"""The planned network builds as MONAI's DynUNet, and one measured training step checks the models."""

from __future__ import annotations

import pytest

from amoseg.planning import build_network, make_plan
from amoseg.planning import topology as model

from .conftest import fingerprint_from


@pytest.fixture
def cpu_plan():
    return make_plan(fingerprint_from([((1.5, 1.5, 1.5), (160, 150, 140))] * 3), "cpu")


@pytest.mark.slow
def test_network_is_dynunet_with_the_stored_arguments(cpu_plan):
    import torch
    from monai.networks.nets import DynUNet

    network = build_network(cpu_plan)
    assert isinstance(network, DynUNet)
    assert list(network.filters) == list(cpu_plan.network.filters)
    network.eval()
    with torch.no_grad():
        output = network(torch.zeros((1, 1, 32, 32, 32)))
    assert tuple(output.shape) == (1, 16, 32, 32, 32)


def test_instance_norm_learns_scale_and_shift_and_older_plans_keep_theirs(cpu_plan):
    import dataclasses

    from torch import nn

    from amoseg.planning import Plan

    def norms(plan):
        return [module for module in build_network(plan).modules() if isinstance(module, nn.InstanceNorm3d)]

    reloaded = Plan.from_json(cpu_plan.to_json())
    assert reloaded.network.norm_name == ("instance", {"affine": True})
    assert norms(reloaded) and all(norm.affine for norm in norms(reloaded))
    older = dataclasses.replace(cpu_plan, network=dataclasses.replace(cpu_plan.network, norm_name="instance"))
    assert not any(norm.affine for norm in norms(Plan.from_json(older.to_json())))


@pytest.mark.slow
def test_measured_step_agrees_with_the_memory_and_compute_models(cpu_plan):
    import json
    import subprocess
    import sys

    patch = (32, 32, 32)
    # A fresh process: in one that already ran torch (a test worker) the resident peak is stale.
    code = (
        "import json, sys; from amoseg.planning.plan import Plan; from amoseg.planning.network import measure_step; "
        "plan = Plan.from_dict(json.loads(sys.stdin.read())); "
        "m = measure_step(plan, patch_size=(32, 32, 32), batch_size=2, device='cpu', threads=2, repeats=1); "
        "print(json.dumps([m.device, m.seconds, m.peak_memory_gb]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=cpu_plan.to_json(), capture_output=True, text=True, check=True
    )
    device, seconds, peak_memory_gb = json.loads(result.stdout.strip().splitlines()[-1])
    measured = type("Measured", (), {"device": device, "seconds": seconds, "peak_memory_gb": peak_memory_gb})
    assert measured.device == "cpu" and measured.seconds > 0 and measured.peak_memory_gb > 0
    estimate = model.estimated_memory_gb(cpu_plan.network, patch, 2, "cpu")
    # The model was calibrated on such measurements; a factor 2 either way flags a broken model.
    assert 0.5 < measured.peak_memory_gb / estimate < 2.0
    # Wall time is a benchmark's business, not a test's: under a parallel test run it says nothing.
