"""Training: patches and augmentation, network, partial-label loss, trainer, checkpoints, DDP.

Importing this package loads no torch; the submodules that need it import it themselves.
``amoseg.training.checkpoint.load_model(fold_dir, device)`` gives the predictor a trained network.
"""

from amoseg.training.config import TrainConfig, parse_duration

__all__ = ["TrainConfig", "parse_duration"]
