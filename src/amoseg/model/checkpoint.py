"""Checkpoints: one typed record (``Checkpoint``), stored as data only (``torch.load(weights_only=True)``)
and written atomically. This module is the only code that reads or writes checkpoint files.

On disk a checkpoint is ``Checkpoint.to_dict()``: a dict of tensors and plain Python values (dict,
list, str, int, float, bool, None) under the keys

    format, checkpoint_version, amoseg_version, name ("latest", "best" or "final"), fold,
    network          the DynUNet's state dict
    topology         ``NetworkTopology.to_dict()``: its constructor arguments and ``single_conv_blocks``
                     (the plan's, with ``res_block`` as trained)
    optimizer, scaler
    epoch, iteration, elapsed_seconds, ema_dice, best_ema_dice, history (the log's records)
    rng              torch (and CUDA), numpy and Python generator states, as tensors
    plan             the plan (its id names the preprocessing cache)
    config           ``TrainConfig.to_dict()``: training parses it; this package reads only its mirror axes
    labels           class id (str) -> organ name, "0": "background"
    dataset          dataset.json-like label map (names -> ids, annotated and learned organs, modalities)

``load_network(folder)`` gives the predictor a ready network: the fold folder (or a run folder with
one fold) is all it needs.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amoseg.atomic import write_atomic
from amoseg.errors import AmosegError, InputError
from amoseg.model import FORMAT_1_MIRROR_AXES
from amoseg.planning.plan import NetworkTopology, Plan

CHECKPOINT_FORMAT = "amoseg-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAMES = ("final", "best", "latest")


def checkpoint_path(fold_dir: Path, name: str) -> Path:
    return Path(fold_dir) / f"checkpoint_{name}.pt"


def rng_states() -> dict[str, Any]:
    """Every global generator's state as tensors and plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(python_state, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = [state.cpu() for state in torch.cuda.get_rng_state_all()]
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators back to ``rng_states()``'s result."""
    torch.set_rng_state(states["torch"].cpu().to(torch.uint8))
    numpy_state = states["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = states["python"]
    random.setstate(
        (python_state["version"], tuple(int(v) for v in python_state["state"]), python_state["gauss_next"])
    )
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.to(torch.uint8) for state in states["cuda"]])


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A fold's network and everything needed to predict with it or to continue training it.

    Attributes:
        name: "latest", "best" or "final" ("" before it is saved under a name).
        fold: the fold ("0".."4" or "all").
        plan: the plan (its preprocessing is what the network expects).
        topology: the network's constructor arguments as trained.
        network: the DynUNet's state dict.
        config: ``TrainConfig.to_dict()`` of the run.
        labels: class id (str) -> organ name, "0" background: what each output channel is.
        dataset: dataset.json-like label map (``training.run.label_map``), with the organs learned.
        epoch, iteration, elapsed_seconds: training done so far (validation included in the time).
        ema_dice, best_ema_dice: the EMA of the mean validation pseudo-Dice, now and at its best.
        history: the log's per-epoch records.
        optimizer, scaler, rng: state to continue training exactly (empty for prediction only).
        amoseg_version: the version that wrote it.
    """

    name: str
    fold: str
    plan: Plan
    topology: NetworkTopology
    network: Mapping[str, torch.Tensor]
    config: Mapping[str, Any]
    labels: Mapping[str, str]
    dataset: Mapping[str, Any]
    epoch: int = 0
    iteration: int = 0
    elapsed_seconds: float = 0.0
    ema_dice: float | None = None
    best_ema_dice: float | None = None
    history: tuple[dict[str, Any], ...] = ()
    optimizer: Mapping[str, Any] = field(default_factory=dict)
    scaler: Mapping[str, Any] = field(default_factory=dict)
    rng: Mapping[str, Any] = field(default_factory=dict)
    amoseg_version: str = ""

    @property
    def mirror_axes(self) -> tuple[int, ...]:
        """The axes the augmentation mirrored (a config of format 1 predates the setting: all three)."""
        return _mirror_axes(self.config)

    @property
    def last_record(self) -> dict[str, Any]:
        """The last epoch's log record ({} before the first epoch ends)."""
        return dict(self.history[-1]) if self.history else {}

    def to_dict(self) -> dict[str, Any]:
        from amoseg import __version__

        return {
            "format": CHECKPOINT_FORMAT,
            "checkpoint_version": CHECKPOINT_VERSION,
            "amoseg_version": self.amoseg_version or __version__,
            "name": self.name,
            "fold": self.fold,
            "network": dict(self.network),
            "topology": self.topology.to_dict(),
            "optimizer": dict(self.optimizer),
            "scaler": dict(self.scaler),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "elapsed_seconds": self.elapsed_seconds,
            "ema_dice": self.ema_dice,
            "best_ema_dice": self.best_ema_dice,
            "history": [dict(record) for record in self.history],
            "rng": dict(self.rng),
            "plan": self.plan.to_dict(),
            "config": dict(self.config),
            "labels": dict(self.labels),
            "dataset": dict(self.dataset),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Rebuild from ``to_dict``'s output.

        Raises:
            ValueError, KeyError, TypeError: a missing or malformed entry.
        """
        plan = Plan.from_dict(data["plan"])
        _mirror_axes(data["config"])  # refused here, not when a predictor first asks
        best = data.get("best_ema_dice")
        ema = data.get("ema_dice")
        return cls(
            name=str(data.get("name", "")),
            fold=str(data["fold"]),
            plan=plan,
            topology=Plan.from_dict({**plan.to_dict(), "network": data["topology"]}).network,
            network=data["network"],
            config=dict(data["config"]),
            labels={str(key): str(value) for key, value in data["labels"].items()},
            dataset=dict(data.get("dataset") or {}),
            epoch=int(data["epoch"]),
            iteration=int(data["iteration"]),
            elapsed_seconds=float(data["elapsed_seconds"]),
            ema_dice=None if ema is None else float(ema),
            best_ema_dice=None if best is None else float(best),
            history=tuple(dict(record) for record in data["history"]),
            optimizer=data.get("optimizer") or {},
            scaler=data.get("scaler") or {},
            rng=data.get("rng") or {},
            amoseg_version=str(data.get("amoseg_version", "")),
        )


def _mirror_axes(config: Mapping[str, Any]) -> tuple[int, ...]:
    axes = tuple(int(axis) for axis in config.get("mirror_axes", FORMAT_1_MIRROR_AXES))
    if any(axis not in (0, 1, 2) for axis in axes):
        raise ValueError(f"mirror axes {list(axes)} are not among 0, 1, 2")
    return axes


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written checkpoint."""
    content = checkpoint.to_dict()
    write_atomic(path, lambda temporary: torch.save(content, temporary))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint, loaded as data (``weights_only=True``).

    Raises:
        InputError: missing, unreadable, not an amoseg checkpoint, from a newer amoseg, or incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        stored = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, which would run whatever code the file holds.
        raise InputError(
            path,
            "not a plain amoseg checkpoint: it holds Python objects beyond tensors and plain values, "
            "and is refused for safety (loading it could run arbitrary code)",
        ) from None
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise InputError(
            path, f"not a loadable checkpoint ({type(error).__name__}: {_first_line(error)})"
        ) from None
    if not isinstance(stored, dict) or stored.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "not an amoseg training checkpoint")
    if int(stored.get("checkpoint_version", 0)) > CHECKPOINT_VERSION:
        raise InputError(path, f"written by a newer amoseg ({stored.get('amoseg_version')}); update amoseg")
    try:
        return Checkpoint.from_dict(stored)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise InputError(path, f"incomplete checkpoint ({type(error).__name__}: {error})") from None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines or [type(error).__name__])[0][:200]


def checkpoint_for_prediction(fold_dir: str | Path) -> Path | None:
    """A fold folder's checkpoint to predict with: final, else latest (an unfinished run); None if neither."""
    for name in ("final", "latest"):
        candidate = checkpoint_path(Path(fold_dir), name)
        if candidate.is_file():
            return candidate
    return None


def find_checkpoint(path: str | Path, name: str | None = None) -> Path:
    """The checkpoint file for a checkpoint file, a fold folder, or a run folder holding one fold.

    Args:
        path: file or folder.
        name: "final", "best" or "latest"; None takes final, else latest.

    Raises:
        InputError: nothing there, several folds to choose from, or that checkpoint is not written
            (yet): the message lists what is there.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputError(path, "no such trained-model folder")
    if name is not None and name not in CHECKPOINT_NAMES:
        raise AmosegError(f"checkpoint {name!r} is not one of {', '.join(CHECKPOINT_NAMES)}")
    folds = sorted(child for child in path.glob("fold_*") if child.is_dir())
    if not any(path.glob("checkpoint_*.pt")) and folds:
        if len(folds) > 1:
            names = ", ".join(fold.name for fold in folds)
            raise InputError(path, f"holds several folds ({names}); pass one fold folder")
        path = folds[0]
    candidate = checkpoint_path(path, name) if name else checkpoint_for_prediction(path)
    if candidate is None or not candidate.is_file():
        name = name or "final or latest"
        present = sorted(item.stem.removeprefix("checkpoint_") for item in path.glob("checkpoint_*.pt"))
        hint = f"it has {', '.join(present)}" if present else "it holds no checkpoint"
        raise InputError(path, f"no {name} checkpoint ({hint}); training may not have finished")
    return candidate


def load_network(
    run_or_fold_dir: str | Path, device: str | torch.device = "cpu", checkpoint: str | None = None
) -> tuple[torch.nn.Module, Checkpoint]:
    """A trained network ready for inference, and the checkpoint it came from.

    Args:
        run_or_fold_dir: a fold folder (``RUNS/fold_0``), a run folder with a single fold, or a
            checkpoint file.
        device: where the network goes.
        checkpoint: "final" (as nnU-Net predicts), "best" (highest EMA pseudo-Dice), "latest", or None
            (default): final, else latest.

    Returns:
        (network, checkpoint): the MONAI DynUNet in eval mode, mapping (B, 1, x, y, z) to logits
        (B, C, x, y, z) in plan space (``checkpoint.plan``'s preprocessing); the checkpoint without its
        optimizer, scaler and generator states.

    Raises:
        InputError: no such checkpoint, or it is not an amoseg checkpoint.
    """
    import dataclasses

    from amoseg.model.network import build_network, for_device

    path = find_checkpoint(run_or_fold_dir, checkpoint)
    stored = read_checkpoint(path, map_location="cpu")
    try:
        network = build_network(stored.topology)
        network.load_state_dict(stored.network)
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise InputError(path, f"checkpoint does not describe a loadable network ({error})") from None
    # On a CPU, prediction in channels-last takes about 0.8 times as long (docs/benchmarks.md).
    network = for_device(network, device).eval()
    return network, dataclasses.replace(stored, network={}, optimizer={}, scaler={}, rng={})


def weights_digest(network: torch.nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of every parameter and buffer in state-dict order: equal digests,
    bitwise equal weights."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in network.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


__all__ = [
    "CHECKPOINT_NAMES",
    "Checkpoint",
    "checkpoint_for_prediction",
    "checkpoint_path",
    "find_checkpoint",
    "load_network",
    "read_checkpoint",
    "restore_rng_states",
    "rng_states",
    "save_checkpoint",
    "weights_digest",
]
