"""``make_plan``: fingerprint + preset -> Plan. A pure function; reading and writing live in ``dataset``.

Presets:

- ``fullres``: nnU-Net's target spacing rule, 32 -> 320 features, patch and batch for a GPU memory budget
  (default 8 GB, nnU-Net's default).
- ``fast``: 3 mm isotropic (TotalSegmentator's ``--fast``), same network family and budget.
- ``cpu``: 3 mm or coarser, 16 -> 128 features over at most 4 stages, one convolution in the
  full-resolution encoder block and in every decoder block, batch 2, and a patch sized so that one
  training step takes about ``cpu_step_seconds`` on 2 CPU cores (default 0.4 s).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from amoseg.data.fingerprint import Fingerprint
from amoseg.errors import AmosegError
from amoseg.labels import MAX_LABEL
from amoseg.planning import spacing as spacing_rules
from amoseg.planning import topology as model
from amoseg.planning.plan import PRESETS, MeasuredStep, NormalizationScheme, Plan

#: MR images are clipped to these percentiles of their own body voxels before z-scoring.
MR_PERCENTILES = (0.5, 99.5)
#: A batch never covers more than this share of the dataset's voxels (nnU-Net's overfitting guard).
MAX_BATCH_SHARE = 0.05
MIN_BATCH_SIZE = 2


@dataclass(frozen=True)
class PresetSettings:
    """Network family and budget of a preset.

    Attributes:
        device: "cuda" or "cpu".
        base_features, max_features: features of the first stage, and their cap.
        max_stages: cap on resolution stages (None: as deep as the patch allows).
        initial_patch_edge: the search starts from a patch with the volume of this cube (voxels).
        default_memory_gb: GPU memory budget when none is given (GPU presets).
        default_step_seconds: training-step time budget (cpu preset).
        single_conv_blocks: one convolution in the full-resolution encoder block and in every decoder
            block (``NetworkTopology.single_conv_blocks``).
    """

    device: str
    base_features: int
    max_features: int
    max_stages: int | None
    initial_patch_edge: float
    default_memory_gb: float | None = None
    default_step_seconds: float | None = None
    single_conv_blocks: bool = False


PRESET_SETTINGS: dict[str, PresetSettings] = {
    "fullres": PresetSettings("cuda", 32, 320, None, 256, default_memory_gb=8.0),
    "fast": PresetSettings("cuda", 32, 320, None, 256, default_memory_gb=8.0),
    # A step budget of 0.4 s by the compute model (about 0.2-0.3 s in bfloat16) rather than 1 s: in a budget
    # of minutes, more steps on a 64 x 72 x 28 patch beat fewer on 80 x 88 x 32 (5 minutes on the phantoms:
    # mean pseudo-Dice 0.81 over five runs against 0.69, docs/training.md). Single-convolution blocks make
    # the same step about two thirds as long and learn faster per step (docs/training.md).
    "cpu": PresetSettings("cpu", 16, 128, 4, 128, default_step_seconds=0.4, single_conv_blocks=True),
}


def check_preset(
    preset: str, gpu_memory_gb: float | None = None, cpu_step_seconds: float | None = None
) -> None:
    """Refuse an unknown preset, or a budget given to the wrong preset or not positive.

    Raises:
        AmosegError: naming the problem.
    """
    if preset not in PRESETS:
        raise AmosegError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    settings = PRESET_SETTINGS[preset]
    if gpu_memory_gb is not None and settings.device != "cuda":
        raise AmosegError("`gpu_memory_gb` applies to the GPU presets (fullres, fast), not to cpu")
    if cpu_step_seconds is not None and settings.device != "cpu":
        raise AmosegError("a CPU step budget applies to the cpu preset only")
    for budget in (gpu_memory_gb, cpu_step_seconds):
        if budget is not None and not 0 < budget < math.inf:  # NaN fails both comparisons
            raise AmosegError(f"a budget must be a positive, finite number, got {budget}")


def make_plan(
    fingerprint: Fingerprint,
    preset: str,
    gpu_memory_gb: float | None = None,
    *,
    cpu_step_seconds: float | None = None,
    cpu_gflops: float | None = None,
) -> Plan:
    """Plan preprocessing and the network for a dataset.

    Args:
        fingerprint: the dataset's fingerprint (``amoseg stats``).
        preset: "fullres", "fast" or "cpu".
        gpu_memory_gb: training memory budget for the GPU presets (default 8 GB).
        cpu_step_seconds: seconds per training step for the cpu preset (default 0.4), at ``cpu_gflops``.
        cpu_gflops: the training GFLOP/s this machine achieves (``size_by_measurement``); None: the
            compute model's reference speed.

    Raises:
        AmosegError: unknown preset, a budget given to the wrong preset or not positive, or a
            fingerprint without cases.
    """
    check_preset(preset, gpu_memory_gb, cpu_step_seconds)
    settings = PRESET_SETTINGS[preset]

    spacings, shapes = spacing_rules.case_geometry(fingerprint)
    target = spacing_rules.target_spacing(preset, spacings, shapes)
    median_shape = spacing_rules.median_resampled_shape(spacings, shapes, target)
    dataset_voxels = spacing_rules.total_resampled_voxels(spacings, shapes, target)
    out_channels = MAX_LABEL + 1

    def topology_for(pooling):
        return model.make_topology(
            pooling,
            settings.base_features,
            settings.max_features,
            out_channels,
            single_conv_blocks=settings.single_conv_blocks,
        )

    if settings.device == "cuda":
        memory = gpu_memory_gb or settings.default_memory_gb

        def fits(pooling) -> bool:
            estimate = model.estimated_memory_gb(topology_for(pooling), pooling.patch_size, MIN_BATCH_SIZE)
            return estimate <= memory

        pooling, _ = model.fit_patch(
            target,
            median_shape,
            fits,
            volume_edge=settings.initial_patch_edge,
            max_stages=settings.max_stages,
        )
        network = topology_for(pooling)
        batch = _batch_for_memory(network, pooling.patch_size, memory, dataset_voxels)
        budget = {
            "memory_budget_gb": float(memory),
            "estimated_memory_gb": round(model.estimated_memory_gb(network, pooling.patch_size, batch), 3),
        }
    else:
        seconds = cpu_step_seconds or settings.default_step_seconds
        gflops = cpu_gflops or model.CPU_GFLOPS

        def fits(pooling) -> bool:
            estimate = model.estimated_step_seconds(
                topology_for(pooling), pooling.patch_size, MIN_BATCH_SIZE, gflops
            )
            return estimate <= seconds

        pooling, _ = model.fit_patch(
            target,
            median_shape,
            fits,
            volume_edge=settings.initial_patch_edge,
            max_stages=settings.max_stages,
        )
        network = topology_for(pooling)
        batch = MIN_BATCH_SIZE
        budget = {
            "step_budget_s": float(seconds),
            "estimated_step_s": round(
                model.estimated_step_seconds(network, pooling.patch_size, batch, gflops), 3
            ),
            "estimated_memory_gb": round(
                model.estimated_memory_gb(network, pooling.patch_size, batch, "cpu"), 3
            ),
        }
    return Plan(
        preset=preset,
        dataset=fingerprint.dataset,
        target_spacing_mm=tuple(round(value, 6) for value in target),
        median_shape=median_shape,
        patch_size=pooling.patch_size,
        batch_size=batch,
        network=network,
        normalization=normalization_schemes(fingerprint),
        device=settings.device,
        **budget,
        # Carried, not used: the trained model checks its predictions against it (not in the plan id).
        quality_reference=fingerprint.quality_reference,
    )


#: MONAI's DynUNet needs at least three stages; a smaller network is planned but cannot be trained.
MIN_TRAINABLE_STAGES = 3


def size_by_measurement(
    fingerprint: Fingerprint,
    preset: str,
    measure: Callable[[Plan], MeasuredStep],
    *,
    cpu_step_seconds: float | None = None,
    rounds: int = 3,
) -> Plan:
    """A cpu plan sized by this machine's measured speed rather than the reference machine's.

    The plan made at the reference speed is measured (``measure``: a real training step of its
    network); the FLOPs per second achieved give this machine's speed, and the plan is made again at
    that speed. Until the patch and network stop changing (at most ``rounds`` times), the new plan is
    measured in turn; the plan returned is always the one measured last. A machine too slow for the
    budget at any trainable size gets the smallest trainable plan, over budget (its measured step
    says by how much).

    Args:
        fingerprint, preset, cpu_step_seconds: as for ``make_plan``.
        measure: times one training step of a plan on this machine.

    Raises:
        AmosegError: as ``make_plan``; a preset other than cpu.
    """
    if PRESET_SETTINGS.get(preset, PRESET_SETTINGS["fullres"]).device != "cpu":
        raise AmosegError(f"only the cpu preset is sized by a measured step, not {preset!r}")
    plan = make_plan(fingerprint, preset, cpu_step_seconds=cpu_step_seconds)
    if plan.network.num_stages < MIN_TRAINABLE_STAGES:
        return plan  # cases too small for a trainable network: nothing to measure
    for _ in range(rounds):
        step = _with_gflops(plan, measure(plan))
        resized = _trainable_plan(fingerprint, preset, cpu_step_seconds, step.gflops)
        if (resized.patch_size, resized.network) == (plan.patch_size, plan.network):
            break
        plan = resized
    else:
        step = _with_gflops(plan, measure(plan))
    return replace(plan, estimated_step_s=None, measured_step=step)


def _trainable_plan(
    fingerprint: Fingerprint, preset: str, cpu_step_seconds: float | None, gflops: float
) -> Plan:
    """The plan for a machine of ``gflops``, or, where that machine is too slow (or was busy when
    measured) for a network of ``MIN_TRAINABLE_STAGES`` within the budget, the smallest one that has
    them: a network that cannot be built would stop training before its first step."""
    while True:
        plan = make_plan(fingerprint, preset, cpu_step_seconds=cpu_step_seconds, cpu_gflops=gflops)
        if plan.network.num_stages >= MIN_TRAINABLE_STAGES:
            return plan
        gflops *= 1.25  # the reference plan is trainable (checked by the caller), so this ends


def _with_gflops(plan: Plan, step: MeasuredStep) -> MeasuredStep:
    flops = model.training_flops(plan.network, plan.patch_size, plan.batch_size)
    return replace(step, gflops=round(flops / step.seconds / 1e9, 1))


def normalization_schemes(fingerprint: Fingerprint) -> dict[str, NormalizationScheme]:
    """CT from the dataset's CT foreground statistics (when it has labelled CT); MR always per image."""
    schemes: dict[str, NormalizationScheme] = {}
    ct = fingerprint.foreground_intensity.get("CT")
    if ct is not None:
        schemes["CT"] = NormalizationScheme(
            modality="CT",
            method="dataset_foreground",
            clip_low=ct.p0_5,
            clip_high=ct.p99_5,
            mean=ct.mean,
            std=ct.std,
        )
    schemes["MR"] = NormalizationScheme(
        modality="MR",
        method="per_image_body",
        percentile_low=MR_PERCENTILES[0],
        percentile_high=MR_PERCENTILES[1],
    )
    return schemes


def _batch_for_memory(network, patch_size: tuple, memory_gb: float, dataset_voxels: float) -> int:
    """Largest batch within the budget, capped at 5% of the dataset's voxels, at least 2."""
    per_sample = model.feature_elements(network, patch_size) * model.bytes_per_element("cuda") / 1e9
    fixed = model.estimated_memory_gb(network, patch_size, 0)
    batch = int((memory_gb - fixed) // per_sample) if per_sample > 0 else MIN_BATCH_SIZE
    share_cap = round(float(dataset_voxels * MAX_BATCH_SHARE / float(np.prod(patch_size))))
    return max(min(batch, share_cap), MIN_BATCH_SIZE)
