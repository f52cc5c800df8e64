"""Planning: fingerprint -> plan (target spacing, normalization per modality, network, patch, batch).

Importing this package loads neither torch nor MONAI; ``build_network`` and ``measure_step`` do, when
called.
"""

from amoseg.planning.dataset import plan_dataset
from amoseg.planning.network import StepMeasurement, build_network, measure_step
from amoseg.planning.plan import PRESETS, NetworkTopology, NormalizationScheme, Plan, ResamplingScheme
from amoseg.planning.planner import make_plan

__all__ = [
    "PRESETS",
    "NetworkTopology",
    "NormalizationScheme",
    "Plan",
    "ResamplingScheme",
    "StepMeasurement",
    "build_network",
    "make_plan",
    "measure_step",
    "plan_dataset",
]
