"""Training: patches and augmentation, the partial-label loss, the loop, resuming, DDP.

Importing this package loads no torch; the submodules that need it import it themselves.
Training writes what ``amoseg.model`` defines (checkpoints, the organs learned); the predictor reads
it from there, never from this package.
"""

from amoseg.training.config import TrainConfig, parse_duration

__all__ = ["TrainConfig", "parse_duration"]
