"""The planned network builds as MONAI's DynUNet, and one measured training step checks the models."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.model.network import build_network
from amoseg.planning import make_plan
from amoseg.planning import topology as model
from fingerprints import fingerprint_from


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


def _convolutions(module):
    from torch import nn

    return [layer for layer in module.modules() if isinstance(layer, nn.Conv3d)]


@pytest.mark.parametrize("single", [True, False])
def test_single_conv_blocks_cut_the_full_resolution_and_decoder_blocks(cpu_plan, single):
    import dataclasses

    import torch
    import torch.nn.functional as F

    topology = dataclasses.replace(cpu_plan.network, single_conv_blocks=single)
    network = build_network(topology)
    convolutions = 1 if single else 2
    assert len(_convolutions(network.input_block)) == convolutions
    assert [len(_convolutions(up.conv_block)) for up in network.upsamples] == [convolutions] * 3
    assert all(len(_convolutions(block)) == 2 for block in network.downsamples)
    assert network.skip_layers.downsample is network.input_block  # the block the forward pass runs
    # The compute and memory models count the same weights as the network holds (output heads aside).
    heads = [network.output_block, *network.deep_supervision_heads]
    weights = sum(layer.weight.numel() for layer in _convolutions(network))
    head_weights = sum(layer.weight.numel() for head in heads for layer in _convolutions(head))
    transposed = sum(up.transp_conv.conv.weight.numel() for up in network.upsamples)
    assert weights - head_weights + transposed == model.parameter_count(topology)
    if single:
        block = network.input_block
        image = torch.randn((1, 1, 16, 16, 16))
        expected = F.leaky_relu(
            F.instance_norm(
                F.conv3d(image, block.conv1.conv.weight, padding=1),
                weight=block.norm1.weight,
                bias=block.norm1.bias,
            ),
            0.01,
        )
        torch.testing.assert_close(block(image), expected)


def test_residual_encoder_keeps_the_single_convolution_blocks(cpu_plan):
    import dataclasses

    from monai.networks.blocks.dynunet_block import UnetResBlock

    network = build_network(dataclasses.replace(cpu_plan.network, res_block=True))
    assert cpu_plan.network.single_conv_blocks and len(_convolutions(network.input_block)) == 1
    assert all(isinstance(block, UnetResBlock) for block in network.downsamples)
    assert [len(_convolutions(up.conv_block)) for up in network.upsamples] == [1] * 3


@pytest.mark.slow
def test_compute_model_counts_the_forward_flops_torch_counts(cpu_plan):
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    patch = (32, 32, 16)
    for single in (True, False):
        topology = dataclasses.replace(cpu_plan.network, single_conv_blocks=single)
        network = build_network(topology).eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            network(torch.zeros((1, 1, *patch)))
        # The model leaves out the 1 x 1 x 1 output convolutions: the output block at full resolution and
        # the deep-supervision heads (DynUNet runs them in eval mode too), one stage down each.
        shapes = model.stage_shapes(topology, patch)
        outputs = [(topology.filters[stage], shapes[stage]) for stage in range(1 + topology.deep_supr_num)]
        heads = sum(2 * features * 16 * float(np.prod(shape)) for features, shape in outputs)
        counted = counter.get_total_flops() - heads
        assert model.training_flops(topology, patch, 1) / 3 == pytest.approx(counted, rel=1e-9)


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
        "import json, sys; from amoseg.planning.plan import Plan; from amoseg.model.measure import measure_step; "
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
