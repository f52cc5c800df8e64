"""One-convolution blocks for the cpu preset's network (``NetworkTopology.single_conv_blocks``).

This module imports torch; ``model.network.build_network`` loads it only for a topology that asks
for it. A DynUNet block runs two convolutions. The second ones of the full-resolution encoder block and
of the decoder blocks cost about a third of a cpu-preset training step (``bench/cpu_network.py``), and
within minutes of training on 2 CPU cores they teach less than the steps they take away
(docs/training.md, "Results on phantoms").
"""

from __future__ import annotations

import torch
from torch import nn


class SingleConvBlock(nn.Module):
    """The first half of a DynUNet block: convolution, norm, leaky ReLU. The second convolution, and a
    residual block's shortcut, are dropped. Attribute names are DynUNet's, so the state-dict keys of
    what remains read the same."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv1, self.norm1, self.lrelu = block.conv1, block.norm1, block.lrelu

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.lrelu(self.norm1(self.conv1(features)))


def use_single_conv_blocks(network: nn.Module) -> None:
    """Give a DynUNet's full-resolution encoder block and every decoder block one convolution, in place."""
    stem = SingleConvBlock(network.input_block)
    network.input_block = stem
    network.skip_layers.downsample = stem  # the skip layers run the same block object, not a copy
    for upsample in network.upsamples:
        upsample.conv_block = SingleConvBlock(upsample.conv_block)
