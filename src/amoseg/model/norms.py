"""Instance norm run as group norm with one channel per group.

The two compute the same function with the same parameters (``weight``, ``bias``), so state dicts and
checkpoints are shared. The reason to swap: torch's instance norm runs batch norm on a (1, B*C, ...)
view, which forces a channels-last tensor back to the contiguous layout and the next convolution to
convert it again; its group norm has a channels-last CPU kernel. With the network in channels-last
layout on a CPU (``model.network.for_device``) a float32 training step is faster
(``bench/cpu_step.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelNorm(nn.GroupNorm):
    """``nn.GroupNorm`` with one channel per group, guarded against a crash of torch's CPU kernel.

    The channels-last backward kernel (torch 2.13) crashes the process when only the affine parameters
    need gradients, which happens when the layers before a norm are frozen; such an input is made
    contiguous first.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if (
            torch.is_grad_enabled()
            and self.affine
            and self.weight.requires_grad
            and not features.requires_grad
        ):
            features = features.contiguous()
        return super().forward(features)


def group_norm_like(norm: nn.InstanceNorm3d) -> ChannelNorm:
    """A group norm equal to ``norm``: as many groups as channels, the same epsilon and affine weights,
    on their device and in their precision."""
    channels = norm.num_features
    where = {"device": norm.weight.device, "dtype": norm.weight.dtype} if norm.affine else {}
    replacement = ChannelNorm(channels, channels, eps=norm.eps, affine=norm.affine, **where)
    if norm.affine:
        replacement.load_state_dict(norm.state_dict())
    return replacement


def instance_norms_as_group_norms(module: nn.Module) -> nn.Module:
    """Replace every instance norm inside ``module`` (in place) and return it.

    Only instance norms that keep no running statistics are replaced: those that do compute something
    else in eval mode.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.InstanceNorm3d) and not child.track_running_stats:
            setattr(module, name, group_norm_like(child))
        else:
            instance_norms_as_group_norms(child)
    return module
