"""Instance norms run as group norms: the same function, parameters and checkpoints, in either layout."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from amoseg.model.network import build_network, build_training_network, cpu_layout
from amoseg.model.norms import group_norm_like, instance_norms_as_group_norms
from tiny import tiny_plan


def _instance_norm_by_hand(features, weight, bias, eps):
    mean = features.mean(dim=(2, 3, 4), keepdim=True)
    variance = features.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
    shape = (1, -1, 1, 1, 1)
    return (features - mean) / torch.sqrt(variance + eps) * weight.view(shape) + bias.view(shape)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last_3d])
def test_the_group_norm_computes_the_instance_norm(layout):
    generator = torch.Generator().manual_seed(0)
    norm = nn.InstanceNorm3d(5, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(5, generator=generator) + 0.5)
        norm.bias.copy_(torch.randn(5, generator=generator))
    features = (torch.randn((2, 5, 6, 7, 4), generator=generator) * 3 + 1).contiguous(memory_format=layout)
    replacement = group_norm_like(norm)
    expected = _instance_norm_by_hand(features, norm.weight.detach(), norm.bias.detach(), norm.eps)
    assert torch.allclose(replacement(features), expected, atol=1e-5)
    assert torch.allclose(norm(features), expected, atol=1e-5)
    # Gradients too: the same parameters receive the same updates.
    for module in (norm, replacement):
        module.zero_grad()
        (module(features) * torch.linspace(-1, 1, 7).view(1, 1, 1, 7, 1)).sum().backward()
    assert torch.allclose(norm.weight.grad, replacement.weight.grad, atol=1e-4)
    assert torch.allclose(norm.bias.grad, replacement.bias.grad, atol=1e-4)


def test_only_stateless_instance_norms_are_replaced():
    module = nn.Sequential(nn.InstanceNorm3d(4, affine=True), nn.InstanceNorm3d(4, track_running_stats=True))
    instance_norms_as_group_norms(module)
    assert isinstance(module[0], nn.GroupNorm) and module[0].num_groups == 4
    assert isinstance(module[1], nn.InstanceNorm3d)


@pytest.mark.parametrize("single", [True, False])
def test_the_network_and_its_checkpoints_are_the_same_with_either_norm(single):
    topology = dataclasses.replace(tiny_plan().network, single_conv_blocks=single)
    torch.manual_seed(0)
    monai_norms = build_network(topology, group_norms=False).eval()
    group_norms = build_network(topology).eval()
    assert not any(isinstance(layer, nn.InstanceNorm3d) for layer in group_norms.modules())
    assert monai_norms.state_dict().keys() == group_norms.state_dict().keys()
    group_norms.load_state_dict(monai_norms.state_dict())  # a checkpoint from before loads as it is
    image = torch.randn((1, 1, 16, 16, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(monai_norms(image), group_norms(image), atol=1e-4)


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
    network.train(), reference.train()
    for ours, theirs in zip(network(image), reference(image), strict=True):
        assert ours.is_contiguous(memory_format=torch.channels_last_3d)
        assert torch.allclose(ours, theirs, atol=1e-4)


def test_a_norm_after_frozen_layers_trains_in_channels_last():
    # torch's channels-last kernel crashes the process when only the norm's own parameters need
    # gradients; the norm steps around it.
    norm = group_norm_like(nn.InstanceNorm3d(5, affine=True))
    frozen = torch.randn((2, 5, 6, 7, 4)).contiguous(memory_format=torch.channels_last_3d)
    norm(frozen).square().sum().backward()
    assert norm.weight.grad is not None and torch.isfinite(norm.weight.grad).all()
