"""Instance norms that keep a channels-last tensor channels-last: the same function, parameters and
checkpoints as torch's."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from amoseg.model.network import build_network, build_training_network, cpu_layout, for_device
from amoseg.model.norms import ChannelsLastInstanceNorm, channels_last_like, replace_instance_norms
from tiny import tiny_plan


def _instance_norm_by_hand(features, weight, bias, eps):
    mean = features.mean(dim=(2, 3, 4), keepdim=True)
    variance = features.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
    shape = (1, -1, 1, 1, 1)
    return (features - mean) / torch.sqrt(variance + eps) * weight.view(shape) + bias.view(shape)


@pytest.mark.parametrize("cases", [1, 3])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_the_norm_computes_the_instance_norm_and_its_gradients_in_the_input_layout(layout, cases):
    generator = torch.Generator().manual_seed(0)
    norm = nn.InstanceNorm3d(5, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(5, generator=generator) + 0.5)
        norm.bias.copy_(torch.randn(5, generator=generator))
    replacement = channels_last_like(norm)
    # Each case and channel on its own scale, so that statistics mixed across cases would show.
    scale = torch.rand((cases, 5, 1, 1, 1), generator=generator) * 4 + 0.5
    values = torch.randn((cases, 5, 6, 7, 4), generator=generator) * scale + scale
    weighting = torch.linspace(-1, 1, 7).view(1, 1, 1, 7, 1)

    def gradients(function):
        features = values.clone().contiguous(memory_format=layout).requires_grad_()
        output = function(features)
        (output * weighting).sum().backward()
        return output, features.grad

    by_hand = gradients(lambda x: _instance_norm_by_hand(x, norm.weight, norm.bias, norm.eps))
    expected_weight, expected_bias = norm.weight.grad.clone(), norm.bias.grad.clone()
    ours = gradients(replacement)
    assert ours[0].is_contiguous(memory_format=layout)
    assert torch.allclose(ours[0], by_hand[0], atol=1e-5)
    assert torch.allclose(ours[1], by_hand[1], atol=1e-4)  # with respect to the input
    assert torch.allclose(replacement.weight.grad, expected_weight, atol=1e-4)
    assert torch.allclose(replacement.bias.grad, expected_bias, atol=1e-4)


def test_a_norm_after_frozen_layers_trains_in_channels_last():
    norm = channels_last_like(nn.InstanceNorm3d(5, affine=True))
    frozen = torch.randn((2, 5, 6, 7, 4)).contiguous(memory_format=torch.channels_last_3d)
    norm(frozen).square().sum().backward()
    assert norm.weight.grad is not None and torch.isfinite(norm.weight.grad).all()


def test_only_stateless_instance_norms_are_replaced_on_their_device_and_precision():
    module = nn.Sequential(nn.InstanceNorm3d(4, affine=True), nn.InstanceNorm3d(4, track_running_stats=True))
    module = module.to(torch.float64)
    replace_instance_norms(module)
    assert type(module[0]) is ChannelsLastInstanceNorm and module[0].num_features == 4
    assert module[0].weight.dtype == torch.float64
    assert type(module[1]) is nn.InstanceNorm3d


@pytest.mark.parametrize("single", [True, False])
def test_on_a_cpu_the_network_and_its_checkpoints_are_the_same_with_either_norm(single):
    topology = dataclasses.replace(tiny_plan().network, single_conv_blocks=single)
    torch.manual_seed(0)
    monai_norms = build_network(topology).eval()
    on_cpu = for_device(build_network(topology), "cpu").eval()
    assert any(type(layer) is nn.InstanceNorm3d for layer in monai_norms.modules())
    assert not any(type(layer) is nn.InstanceNorm3d for layer in on_cpu.modules())
    assert monai_norms.state_dict().keys() == on_cpu.state_dict().keys()
    on_cpu.load_state_dict(monai_norms.state_dict())  # a checkpoint from before loads as it is
    image = torch.randn((1, 1, 16, 16, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(monai_norms(image), on_cpu(image), atol=1e-4)


def test_a_cpu_trains_in_channels_last_and_other_devices_in_the_default_layout():
    assert cpu_layout("cpu") == torch.channels_last_3d
    assert cpu_layout("cuda") == torch.contiguous_format
    torch.manual_seed(0)
    network = build_training_network(tiny_plan().network)
    reference = build_training_network(tiny_plan().network)
    reference.load_state_dict(network.state_dict())
    network.place("cpu")
    convolution = next(layer for layer in network.modules() if isinstance(layer, nn.Conv3d))
    assert convolution.weight.is_contiguous(memory_format=torch.channels_last_3d)
    image = torch.randn((2, 1, 16, 16, 8), generator=torch.Generator().manual_seed(2))  # the loader's layout
    network.train()
    reference.train()
    ours, theirs = network(image), reference(image)
    for mine, expected in zip(ours, theirs, strict=True):
        assert mine.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(mine, expected, atol=1e-4)
    sum(output.square().mean() for output in ours).backward()
    sum(output.square().mean() for output in theirs).backward()
    for (name, mine), expected in zip(network.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(mine.grad, expected.grad, rtol=1e-3, atol=1e-5), name
