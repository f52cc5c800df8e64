"""Network topology from patch size and spacing, and the memory and compute models that size patches.

Pooling follows nnU-Net's ExperimentPlanner (``get_pool_and_conv_props``): an axis is pooled (stride 2)
only while its current spacing is within a factor 2 of the finest axis and its feature map stays at
least ``2 * MIN_FEATURE_MAP_EDGE`` voxels, so a thick-slice axis waits until the in-plane axes have
caught up. Its convolution kernel is 1 until then, 3 afterwards. Features double from the base per
stage up to a cap.

Memory model: training memory is ``batch * feature_elements * bytes_per_element + parameters * 16
bytes`` (weights, gradients, two optimizer moments in float32) plus a fixed overhead.
``feature_elements`` counts the values the forward pass keeps for the backward pass. The bytes per
element were measured with ``measure_step`` in float32 on CPU (``BYTES_PER_FEATURE_ELEMENT``); GPU
presets assume mixed-precision training, which keeps activations in 16 bits, and scale that by
``AMP_ACTIVATION_FACTOR`` (an assumption until checked with ``measure_step(device="cuda")``).

Compute model (cpu preset): a training step costs three times the forward FLOPs (forward, input
gradients, weight gradients); seconds = FLOPs / ``CPU_GFLOPS``, the measured throughput of a step of
the cpu network on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amoseg.planning.plan import Int3, NetworkTopology

MIN_FEATURE_MAP_EDGE = 4
#: Bytes of training memory per counted feature-map element in float32 (measured, docs/planning.md).
BYTES_PER_FEATURE_ELEMENT = 5.0
#: Share of that under mixed precision (16-bit activations), assumed for the GPU presets.
AMP_ACTIVATION_FACTOR = 0.6
#: Memory a training step needs whatever the patch (framework buffers, workspaces; CUDA context on GPU).
FIXED_OVERHEAD_GB = {"cpu": 0.3, "cuda": 1.0}
#: Float32 GFLOP/s of a training step of the cpu network on 2 CPU cores (measured, docs/planning.md).
CPU_GFLOPS = 150.0


@dataclass(frozen=True)
class Pooling:
    """What ``pool_and_conv_props`` decides for one patch size.

    Attributes:
        strides: per stage (x, y, z); the first stage is (1, 1, 1).
        kernel_sizes: per stage (x, y, z).
        patch_size: the patch rounded up to a multiple of ``divisible_by``.
        divisible_by: total stride per axis (2 ** pools on that axis).
    """

    strides: tuple[Int3, ...]
    kernel_sizes: tuple[Int3, ...]
    patch_size: Int3
    divisible_by: Int3


def pool_and_conv_props(
    spacing: tuple,
    patch_size: tuple,
    min_edge: int = MIN_FEATURE_MAP_EDGE,
    max_stages: int | None = None,
) -> Pooling:
    """Pooling and kernel sizes per stage for a patch at a spacing (nnU-Net's rule; module docstring)."""
    current_spacing = [float(value) for value in spacing]
    current_size = [float(value) for value in patch_size]
    pools = [0, 0, 0]
    kernel = [1, 1, 1]
    strides: list[Int3] = [(1, 1, 1)]
    kernels: list[Int3] = []
    while max_stages is None or len(strides) < max_stages:
        poolable = [axis for axis in range(3) if current_size[axis] >= 2 * min_edge]
        if not poolable:
            break
        finest = min(current_spacing[axis] for axis in poolable)
        poolable = [axis for axis in poolable if current_spacing[axis] / finest < 2]
        if len(poolable) == 1 and current_size[poolable[0]] < 3 * min_edge:
            break  # pooling one axis alone is only worth it with room for it
        if not poolable:
            break
        for axis in range(3):
            if kernel[axis] != 3 and current_spacing[axis] / min(current_spacing) < 2:
                kernel[axis] = 3
        stride = [1, 1, 1]
        for axis in poolable:
            stride[axis] = 2
            pools[axis] += 1
            current_spacing[axis] *= 2
            current_size[axis] = np.ceil(current_size[axis] / 2)
        strides.append(tuple(stride))
        kernels.append(tuple(kernel))
    kernels.append((3, 3, 3))  # the bottleneck always sees all three axes
    divisible_by = tuple(2**count for count in pools)
    padded = tuple(
        int(np.ceil(size / step) * step) for size, step in zip(patch_size, divisible_by, strict=True)
    )
    return Pooling(tuple(strides), tuple(kernels), padded, divisible_by)


def make_topology(
    pooling: Pooling,
    base_features: int,
    max_features: int,
    out_channels: int,
    in_channels: int = 1,
    single_conv_blocks: bool = False,
) -> NetworkTopology:
    """DynUNet arguments for a pooling; deep supervision on all decoder outputs but the coarsest."""
    stages = len(pooling.strides)
    filters = tuple(min(base_features * 2**stage, max_features) for stage in range(stages))
    upsamplings = stages - 1
    # nnU-Net supervises every decoder output except the coarsest; DynUNet needs deep_supr_num < upsamplings.
    heads = max(1, stages - 3)
    return NetworkTopology(
        spatial_dims=3,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=pooling.kernel_sizes,
        strides=pooling.strides,
        upsample_kernel_size=pooling.strides[1:],
        filters=filters,
        # MONAI's plain "instance" norm has no learned scale and shift, nnU-Net's has: with them a
        # cpu-preset network fits a batch in about half the steps (docs/training.md).
        norm_name=("instance", {"affine": True}),
        deep_supervision=upsamplings >= 2,
        deep_supr_num=min(heads, max(upsamplings - 1, 1)),
        single_conv_blocks=single_conv_blocks,
    )


def stage_shapes(topology: NetworkTopology, patch_size: tuple) -> list[tuple[int, int, int]]:
    """Feature-map shape (x, y, z) at each stage for a patch."""
    shapes = []
    size = np.asarray(patch_size, dtype=float)
    for stride in topology.strides:
        size = np.ceil(size / np.asarray(stride))
        shapes.append(tuple(int(value) for value in size))
    return shapes


def feature_elements(topology: NetworkTopology, patch_size: tuple) -> float:
    """Float values one sample's forward pass keeps for backward (per counted feature map).

    Counted per stage s with F_s features on V_s voxels: the encoder's two convolutions (2 F_s V_s),
    and in the decoder the transposed convolution, the concatenation (2 F_s V_s) and two convolutions
    (5 F_s V_s in all), plus the output heads; one convolution fewer in each block that
    ``single_conv_blocks`` cuts. Normalization and activation outputs are covered by the calibrated
    bytes per element.
    """
    total = 0.0
    shapes = stage_shapes(topology, patch_size)
    last = len(shapes) - 1
    for stage, (shape, features) in enumerate(zip(shapes, topology.filters, strict=True)):
        voxels = float(np.prod(shape))
        total += block_convolutions(topology, stage, decoder=False) * features * voxels
        if stage < last:
            total += (3 + block_convolutions(topology, stage, decoder=True)) * features * voxels
    # Each head's output is upsampled to full resolution, stacked, and goes through a log-softmax whose
    # result and gradient are kept: about four full-resolution maps of out_channels per head.
    heads = 1 + (topology.deep_supr_num if topology.deep_supervision else 0)
    total += 4 * topology.out_channels * float(np.prod(shapes[0])) * heads
    return total


def block_convolutions(topology: NetworkTopology, stage: int, decoder: bool) -> int:
    """Convolutions in a stage's encoder or decoder block: two, or one in the blocks that
    ``single_conv_blocks`` cuts (the full-resolution encoder block and every decoder block)."""
    return 1 if topology.single_conv_blocks and (decoder or stage == 0) else 2


def _block_weights(topology: NetworkTopology, stage: int, inputs: int, features: int, decoder: bool) -> float:
    """Weights of one block's convolutions per voxel of its kernel: the first from ``inputs`` features,
    the second (where there is one) from the block's own."""
    return inputs * features + (block_convolutions(topology, stage, decoder) - 1) * features * features


def parameter_count(topology: NetworkTopology) -> float:
    """Learnable weights of the DynUNet (convolutions; norms and biases are negligible)."""
    count = 0.0
    previous = topology.in_channels
    for stage, (kernel, features) in enumerate(zip(topology.kernel_size, topology.filters, strict=True)):
        count += float(np.prod(kernel)) * _block_weights(topology, stage, previous, features, decoder=False)
        previous = features
    for stage in range(len(topology.filters) - 2, -1, -1):
        features, deeper = topology.filters[stage], topology.filters[stage + 1]
        volume = float(np.prod(topology.kernel_size[stage]))
        count += float(np.prod(topology.strides[stage + 1])) * deeper * features  # transposed conv
        count += volume * _block_weights(topology, stage, 2 * features, features, decoder=True)
    return count


def bytes_per_element(device: str) -> float:
    """Training bytes per counted feature-map element: float32 on CPU, mixed precision on GPU."""
    return BYTES_PER_FEATURE_ELEMENT * (AMP_ACTIVATION_FACTOR if device == "cuda" else 1.0)


def estimated_memory_gb(
    topology: NetworkTopology, patch_size: tuple, batch_size: int, device: str = "cuda"
) -> float:
    """Training memory (GB, 1e9 bytes) for one step on ``device``; see the module docstring."""
    activations = batch_size * feature_elements(topology, patch_size) * bytes_per_element(device)
    optimizer = parameter_count(topology) * 16
    return (activations + optimizer) / 1e9 + FIXED_OVERHEAD_GB[device]


def training_flops(topology: NetworkTopology, patch_size: tuple, batch_size: int) -> float:
    """Floating-point operations of one training step (forward and backward), 2 per multiply-add."""
    shapes = stage_shapes(topology, patch_size)
    forward = 0.0
    previous = topology.in_channels
    for stage, (shape, kernel, features) in enumerate(
        zip(shapes, topology.kernel_size, topology.filters, strict=True)
    ):
        voxels, volume = float(np.prod(shape)), float(np.prod(kernel))
        forward += 2 * voxels * volume * _block_weights(topology, stage, previous, features, decoder=False)
        previous = features
    for stage in range(len(shapes) - 2, -1, -1):
        voxels = float(np.prod(shapes[stage]))
        features, deeper = topology.filters[stage], topology.filters[stage + 1]
        volume = float(np.prod(topology.kernel_size[stage]))
        forward += (
            2
            * float(np.prod(shapes[stage + 1]))
            * float(np.prod(topology.strides[stage + 1]))
            * deeper
            * features
        )
        forward += 2 * voxels * volume * _block_weights(topology, stage, 2 * features, features, decoder=True)
    return 3 * forward * batch_size


def estimated_step_seconds(
    topology: NetworkTopology, patch_size: tuple, batch_size: int, gflops: float = CPU_GFLOPS
) -> float:
    """Seconds for one training step at ``gflops`` training GFLOP/s (compute model, module docstring;
    the default is the reference machine's, 2 CPU cores)."""
    return training_flops(topology, patch_size, batch_size) / (gflops * 1e9)


def initial_patch(spacing: tuple, median_shape: tuple, volume_edge: float) -> Int3:
    """A patch shaped like 1 / spacing with the volume of a ``volume_edge`` cube, capped at the median shape."""
    inverse = 1.0 / np.asarray(spacing, dtype=float)
    scaled = inverse * (volume_edge**3 / np.prod(inverse)) ** (1 / 3)
    return tuple(int(min(round(value), size)) for value, size in zip(scaled, median_shape, strict=True))


def fit_patch(
    spacing: tuple,
    median_shape: tuple,
    fits,
    *,
    volume_edge: float,
    max_stages: int | None = None,
    min_edge: int = MIN_FEATURE_MAP_EDGE,
) -> tuple[Pooling, bool]:
    """Shrink a patch until ``fits(pooling)`` is true (nnU-Net's loop).

    Starts from ``initial_patch``; each round shrinks the axis that is largest relative to the median
    shape by one pooling step and recomputes the pooling.

    Returns:
        (pooling, fitted): fitted is False when even the smallest patch does not fit.
    """
    pooling = pool_and_conv_props(
        spacing, initial_patch(spacing, median_shape, volume_edge), min_edge, max_stages
    )
    median = np.maximum(np.asarray(median_shape, dtype=float), 1)
    for _ in range(10_000):  # each round shrinks the patch; the bound only guards against a bug
        if fits(pooling):
            return pooling, True
        patch = np.asarray(pooling.patch_size)
        shrinkable = [axis for axis in range(3) if patch[axis] > pooling.divisible_by[axis]]
        if not shrinkable:
            return pooling, False
        axis = max(shrinkable, key=lambda index: patch[index] / median[index])
        trial = patch.copy()
        trial[axis] -= pooling.divisible_by[axis]
        step = pool_and_conv_props(spacing, tuple(trial), min_edge, max_stages).divisible_by[axis]
        patch[axis] = max(patch[axis] - step, 1)
        pooling = pool_and_conv_props(spacing, tuple(int(v) for v in patch), min_edge, max_stages)
    return pooling, fits(pooling)
