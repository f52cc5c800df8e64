"""Planning: fingerprint -> plan (target spacing, normalization per modality, network, patch, batch).

Importing this package loads neither torch nor MONAI. The network a plan describes is built by
``amoseg.model.network.build_network``.
"""

from amoseg.planning.dataset import plan_dataset
from amoseg.planning.plan import PRESETS, NetworkTopology, NormalizationScheme, Plan, ResamplingScheme
from amoseg.planning.planner import make_plan

__all__ = [
    "PRESETS",
    "NetworkTopology",
    "NormalizationScheme",
    "Plan",
    "ResamplingScheme",
    "make_plan",
    "plan_dataset",
]
