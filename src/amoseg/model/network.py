"""The trained network: MONAI's ``DynUNet`` from the plan, and a wrapper that exposes every output head.

Why MONAI's DynUNet rather than a module of our own: it is nnU-Net's architecture (plain or residual
encoder blocks, instance norm, leaky ReLU, transposed-convolution decoder, deep-supervision heads),
it installs beside our pinned torch without pulling anything else, and the plan already stores its
exact constructor arguments, so the predictor rebuilds the same network from ``plans.json`` alone.

DynUNet's own training forward upsamples every deep-supervision head to full resolution and stacks
them, which costs a full-resolution map per head in memory and loss compute. ``DeepSupervision`` runs
the same modules but returns the heads at their own resolution, finest first; the labels are
downsampled to match (``loss.downsample_label``), as nnU-Net does. Its state dict is the DynUNet's under
the prefix ``network.``; checkpoints store the DynUNet's own state dict, which ``build_network`` loads.

On a CPU the network runs in channels-last layout with instance norms that keep that layout
(``for_device``, ``model.norms``): the same function and parameters, other kernels. Elsewhere it stays as
MONAI builds it.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from amoseg.planning.plan import NetworkTopology, Plan


def build_network(plan: Plan | NetworkTopology):
    """``monai.networks.nets.DynUNet`` with exactly the plan's stored constructor arguments, its
    full-resolution encoder and decoder blocks cut to one convolution when the topology says so."""
    from monai.networks.nets import DynUNet

    topology = plan.network if isinstance(plan, Plan) else plan
    network = DynUNet(**topology.dynunet_kwargs())
    if topology.single_conv_blocks:
        from amoseg.model.blocks import use_single_conv_blocks

        use_single_conv_blocks(network)
    return network


def cpu_layout(device: torch.device | str) -> torch.memory_format:
    """The memory format a network runs in on ``device``: channels-last on a CPU, where oneDNN's 3-D
    convolutions are fastest in it (``bench/cpu_step.py``); torch's default elsewhere."""
    return torch.channels_last_3d if torch.device(device).type == "cpu" else torch.contiguous_format


def for_device(network: nn.Module, device: torch.device | str) -> nn.Module:
    """``network`` moved to ``device`` in the layout that runs fastest there (``cpu_layout``).

    On a CPU its instance norms are replaced first by ones that keep the layout (torch's would turn
    every channels-last tensor back, ``model.norms``). GPUs keep torch's default layout and MONAI's norms:
    nothing there was measured faster.
    """
    layout = cpu_layout(device)
    if layout == torch.channels_last_3d:
        from amoseg.model.norms import replace_instance_norms

        replace_instance_norms(network)
    return network.to(device, memory_format=layout)


def training_topology(plan: Plan, residual: bool = False, deep_supervision: bool = True) -> NetworkTopology:
    """The plan's topology, with residual encoder blocks when asked, and deep supervision switched off
    when asked (or when the network has too few stages for it)."""
    topology = plan.network
    if residual and not topology.res_block:
        topology = replace(topology, res_block=True)
    if not deep_supervision and topology.deep_supervision:
        topology = replace(topology, deep_supervision=False)
    return topology


class DeepSupervision(nn.Module):
    """A DynUNet returning a list of logits: full resolution (B, C, x, y, z) first, then each
    deep-supervision head at its own, coarser resolution. In eval mode it returns the first alone."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.memory_format = torch.contiguous_format

    def place(self, device: torch.device | str) -> DeepSupervision:
        """Move to ``device`` as ``for_device`` does; inputs are converted to its layout. The way to move
        this module: a plain ``.to`` keeps converting inputs to the layout of the last ``place``."""
        self.network = for_device(self.network, device)
        self.memory_format = cpu_layout(device)
        return self

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        net = self.network
        image = image.contiguous(memory_format=self.memory_format)
        if not (self.training and net.deep_supervision):
            return [net(image)]
        output = net.output_block(net.skip_layers(image))
        # DynUNet's skip layers write each head's output into this shared list during the forward pass.
        return [output, *list(net.heads)]


def build_training_network(topology: NetworkTopology) -> DeepSupervision:
    """A freshly initialized network (the global torch RNG draws the weights), on the CPU in torch's
    default layout until ``place``."""
    return DeepSupervision(build_network(topology))


def unwrap(model: nn.Module) -> nn.Module:
    """The DynUNet inside DDP, ``torch.compile`` and ``DeepSupervision`` wrappers."""
    while True:
        if hasattr(model, "module"):  # DistributedDataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif isinstance(model, DeepSupervision):
            model = model.network
        else:
            return model
