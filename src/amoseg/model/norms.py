"""Instance norm that keeps a channels-last tensor channels-last.

Torch's instance norm runs batch norm on a (1, B*C, ...) view of its input, which forces a channels-last
tensor back to the contiguous layout and the next convolution to convert it again. Batch norm in
training mode over a batch of one case normalizes each channel over that case's voxels: it is the
instance norm, and its CPU kernels keep the channels-last layout. So ``ChannelsLastInstanceNorm`` runs
it case by case. Torch's group norm with one channel per group, the other layout-keeping form, has a
channels-last backward pass six times as long as its forward on a full-resolution map of the cpu
preset; with batch norm the training step is 1.05-1.10x faster (``bench/cpu_step.py``, variant
``group_norm``; docs/benchmarks.md).

Same function, same parameters (``weight``, ``bias``): state dicts and checkpoints are shared with the
instance norms MONAI builds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class ChannelsLastInstanceNorm(nn.InstanceNorm3d):
    """``nn.InstanceNorm3d`` (without running statistics) that returns a channels-last input's
    normalization in channels-last layout; other inputs go to torch's instance norm."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if (
            features.dim() != 5
            or features.is_contiguous()
            or not features.is_contiguous(memory_format=torch.channels_last_3d)
        ):
            return super().forward(features)
        cases = [
            F.batch_norm(case, None, None, self.weight, self.bias, True, 0.0, self.eps)
            for case in features.split(1)
        ]
        return cases[0] if len(cases) == 1 else torch.cat(cases)


def channels_last_like(norm: nn.InstanceNorm3d) -> ChannelsLastInstanceNorm:
    """A ``ChannelsLastInstanceNorm`` equal to ``norm``: the same channels, epsilon and affine weights,
    on their device and in their precision."""
    where = {"device": norm.weight.device, "dtype": norm.weight.dtype} if norm.affine else {}
    replacement = ChannelsLastInstanceNorm(norm.num_features, eps=norm.eps, affine=norm.affine, **where)
    if norm.affine:
        replacement.load_state_dict(norm.state_dict())
    return replacement


def replace_instance_norms(
    module: nn.Module,
    replace: Callable[[nn.InstanceNorm3d], nn.Module] = channels_last_like,
) -> nn.Module:
    """Replace every instance norm inside ``module`` (in place) by ``replace(norm)``, by default its
    ``channels_last_like``; return ``module``.

    Only instance norms that keep no running statistics are replaced: those that do compute something
    else in eval mode.
    """
    for name, child in module.named_children():
        if type(child) is nn.InstanceNorm3d and not child.track_running_stats:
            setattr(module, name, replace(child))
        else:
            replace_instance_norms(child, replace)
    return module
