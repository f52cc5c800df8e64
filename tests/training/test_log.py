"""The line ``amoseg train`` prints when its steps are slower than the plan's."""

from __future__ import annotations

import dataclasses

from amoseg.planning.plan import MeasuredStep
from amoseg.training.log import SLOW_STEP_RATIO, slow_step_warning
from tiny import tiny_plan


def test_a_step_over_one_and_a_half_times_the_measured_one_is_warned_of():
    measured = MeasuredStep(0.4, "float32", "AMD EPYC 7B13", "AVX2", 2, 120.0)
    plan = dataclasses.replace(tiny_plan(), measured_step=measured, estimated_step_s=None)
    assert slow_step_warning(plan, 0.4 * SLOW_STEP_RATIO) is None
    warning = slow_step_warning(plan, 1.0)
    assert warning.startswith("warning: training steps take 1.00 s against the plan's 0.40 s")
    assert "measured on AMD EPYC 7B13 (AVX2, 2 threads, float32)" in warning and "2.5x fewer" in warning


def test_without_a_measurement_the_estimate_is_the_reference_and_gpu_plans_state_none():
    estimated = dataclasses.replace(tiny_plan(), estimated_step_s=0.2)
    assert "against the plan's 0.20 s (estimated for the reference 2 CPU cores)" in slow_step_warning(
        estimated, 0.5
    )
    assert slow_step_warning(dataclasses.replace(tiny_plan(), estimated_step_s=None), 100.0) is None
