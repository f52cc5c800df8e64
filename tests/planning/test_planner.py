"""make_plan: target spacing per preset, normalization per modality, topology and budgets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from amoseg.data.fingerprint import Fingerprint
from amoseg.errors import AmosegError
from amoseg.planning import make_plan
from amoseg.planning import topology as model
from amoseg.planning.plan import MeasuredStep, Plan
from amoseg.planning.planner import MIN_TRAINABLE_STAGES, size_by_measurement
from amoseg.planning.spacing import case_geometry, fullres_target_spacing
from fingerprints import fingerprint_from


def test_fullres_uses_median_and_tenth_percentile_for_thick_slices(amos_like_fingerprint):
    spacings, shapes = case_geometry(amos_like_fingerprint)
    target = fullres_target_spacing(spacings, shapes)
    assert target[0] == pytest.approx(np.median(spacings[:, 0]))
    assert target[2] == pytest.approx(np.percentile(spacings[:, 2], 10))
    assert target[2] < np.median(spacings[:, 2]) == 5.0


def test_fullres_is_plain_median_without_strong_anisotropy(isotropic_fingerprint):
    plan = make_plan(isotropic_fingerprint, "fullres")
    assert plan.target_spacing_mm == pytest.approx((1.55, 1.55, 1.45))


def test_fast_and_cpu_spacing(amos_like_fingerprint):
    assert make_plan(amos_like_fingerprint, "fast").target_spacing_mm == (3.0, 3.0, 3.0)
    cpu = make_plan(amos_like_fingerprint, "cpu").target_spacing_mm
    assert cpu == (3.0, 3.0, 5.0)  # 3 mm or coarser: the median slice is 5 mm, never upsampled


def test_axis_permutation_puts_slice_spacing_on_the_right_axis():
    # The file's second axis holds the 5 mm slices; the header says it runs along world z.
    coronal = fingerprint_from([((0.8, 5.0, 0.8), (512, 80, 512))] * 3)
    assert make_plan(coronal, "fullres").target_spacing_mm == (0.8, 5.0, 0.8)
    # Canonical axis i is file axis permutation[i].
    coronal = fingerprint_from([((0.8, 5.0, 0.8), (512, 80, 512))] * 3, axis_permutation=(0, 2, 1))
    assert make_plan(coronal, "fullres").target_spacing_mm == (0.8, 0.8, 5.0)


def test_normalization_per_modality(amos_like_fingerprint):
    plan = make_plan(amos_like_fingerprint, "fullres")
    ct, mr = plan.normalization["CT"], plan.normalization["MR"]
    assert (ct.method, ct.clip_low, ct.clip_high, ct.mean, ct.std) == (
        "dataset_foreground",
        -120.0,
        280.0,
        55.5,
        70.25,
    )
    assert (mr.method, mr.percentile_low, mr.percentile_high) == ("per_image_body", 0.5, 99.5)


def test_anisotropic_topology_pools_in_plane_first(amos_like_fingerprint):
    fingerprint = fingerprint_from([((0.8, 0.8, 4.0), (512, 512, 90))] * 5)
    plan = make_plan(fingerprint, "fullres")
    network = plan.network
    assert network.strides[0] == (1, 1, 1)
    assert network.strides[1] == (2, 2, 1) and network.kernel_size[0] == (3, 3, 1)
    assert network.kernel_size[-1] == (3, 3, 3)
    assert network.filters[0] == 32 and max(network.filters) == 320
    assert all(b == min(2 * a, 320) for a, b in zip(network.filters, network.filters[1:], strict=False))
    total_stride = np.prod(np.array(network.strides), axis=0)
    assert all(size % stride == 0 for size, stride in zip(plan.patch_size, total_stride, strict=True))
    # The smallest feature map keeps at least MIN_FEATURE_MAP_EDGE voxels on each pooled axis.
    assert min(np.array(plan.patch_size) / total_stride) >= model.MIN_FEATURE_MAP_EDGE
    assert network.deep_supervision and 1 <= network.deep_supr_num < network.num_stages - 1


def test_gpu_budget_sets_patch_and_batch(amos_like_fingerprint):
    small = make_plan(amos_like_fingerprint, "fullres", gpu_memory_gb=8)
    large = make_plan(amos_like_fingerprint, "fullres", gpu_memory_gb=40)
    assert small.estimated_memory_gb <= 8 and large.estimated_memory_gb <= 40
    assert np.prod(large.patch_size) * large.batch_size > np.prod(small.patch_size) * small.batch_size
    assert small.batch_size >= 2 and small.device == "cuda"


def test_cpu_preset_fits_its_step_budget(amos_like_fingerprint):
    plan = make_plan(amos_like_fingerprint, "cpu")
    assert plan.device == "cpu" and plan.batch_size == 2
    assert plan.network.filters[0] == 16 and plan.network.num_stages <= 4
    assert plan.estimated_step_s <= plan.step_budget_s == 0.4
    assert plan.network.single_conv_blocks
    assert not make_plan(amos_like_fingerprint, "fullres").network.single_conv_blocks
    slower = make_plan(amos_like_fingerprint, "cpu", cpu_step_seconds=4.0)
    assert np.prod(slower.patch_size) > np.prod(plan.patch_size)


@pytest.mark.parametrize(
    ("preset", "kwargs", "message"),
    [
        ("turbo", {}, "unknown preset"),
        ("cpu", {"gpu_memory_gb": 8}, "GPU presets"),
        ("fullres", {"cpu_step_seconds": 1.0}, "cpu preset only"),
        ("fullres", {"gpu_memory_gb": -1}, "positive"),
    ],
)
def test_bad_requests_are_refused(amos_like_fingerprint, preset, kwargs, message):
    with pytest.raises(AmosegError, match=message):
        make_plan(amos_like_fingerprint, preset, **kwargs)


def test_empty_fingerprint_is_refused():
    with pytest.raises(AmosegError, match="no case"):
        make_plan(Fingerprint(dataset="empty", cases=(), foreground_intensity={}), "fullres")


def _machine(gflops: float, calls: list):
    """A stand-in for measuring a step: a machine that runs the compute model's FLOPs at ``gflops``."""

    def measure(plan):
        calls.append(plan.patch_size)
        seconds = model.training_flops(plan.network, plan.patch_size, plan.batch_size) / (gflops * 1e9)
        return MeasuredStep(seconds, "float32", "test CPU", "AVX2", 2, 0.0)

    return measure


@pytest.mark.parametrize("speed", [0.4, 2.5])
def test_a_cpu_plan_is_sized_by_the_speed_measured_on_this_machine(amos_like_fingerprint, speed):
    calls: list = []
    gflops = model.CPU_GFLOPS * speed
    plan = size_by_measurement(amos_like_fingerprint, "cpu", _machine(gflops, calls))
    reference = make_plan(amos_like_fingerprint, "cpu")
    assert plan.patch_size == make_plan(amos_like_fingerprint, "cpu", cpu_gflops=gflops).patch_size
    smaller = np.prod(plan.patch_size) < np.prod(reference.patch_size)
    assert smaller == (speed < 1) and plan.patch_size != reference.patch_size
    # The reference plan is measured, then the resized one, which confirms the speed: two steps timed,
    # and the plan kept is the one measured last.
    assert calls == [reference.patch_size, plan.patch_size]
    assert plan.measured_step.gflops == pytest.approx(gflops, rel=1e-3)
    assert plan.measured_step.seconds <= plan.step_budget_s and plan.estimated_step_s is None
    # What was measured describes the machine, not the plan: it does not change the plan id.
    assert dataclasses.replace(plan, measured_step=None).plan_id == plan.plan_id
    assert Plan.from_json(plan.to_json()) == plan


def test_a_machine_as_fast_as_the_reference_keeps_the_reference_plan(amos_like_fingerprint):
    calls: list = []
    plan = size_by_measurement(amos_like_fingerprint, "cpu", _machine(model.CPU_GFLOPS, calls))
    assert plan.patch_size == make_plan(amos_like_fingerprint, "cpu").patch_size and len(calls) == 1
    with pytest.raises(AmosegError, match="only the cpu preset"):
        size_by_measurement(amos_like_fingerprint, "fast", _machine(model.CPU_GFLOPS, calls))


def test_a_machine_too_slow_for_any_trainable_network_gets_the_smallest_trainable_plan(amos_like_fingerprint):
    calls: list = []
    slow = model.CPU_GFLOPS / 1000
    plan = size_by_measurement(amos_like_fingerprint, "cpu", _machine(slow, calls))
    untrainable = make_plan(amos_like_fingerprint, "cpu", cpu_gflops=slow)
    assert untrainable.network.num_stages < MIN_TRAINABLE_STAGES  # what sizing by speed alone would give
    assert plan.network.num_stages == MIN_TRAINABLE_STAGES and plan.patch_size == calls[-1]
    reference = make_plan(amos_like_fingerprint, "cpu")
    assert np.prod(plan.patch_size) < np.prod(reference.patch_size)
    assert plan.measured_step.seconds > plan.step_budget_s  # over budget, and the plan says so
