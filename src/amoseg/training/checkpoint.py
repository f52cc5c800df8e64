"""Checkpoints: self-describing, data only (``torch.load(weights_only=True)``), written atomically.

A checkpoint is a dict of tensors and plain Python values (dict, list, str, int, float, bool, None):

    format, checkpoint_version, amoseg_version, name ("latest", "best" or "final"), fold,
    network          the DynUNet's state dict
    topology         ``NetworkTopology.to_dict()``: its constructor arguments and ``single_conv_blocks``
                     (the plan's, with ``res_block`` as trained)
    optimizer, scaler
    epoch, iteration, elapsed_seconds, best_ema_dice, history (the log's records)
    rng              torch (and CUDA), numpy and Python generator states, as tensors
    plan             the plan (its id names the preprocessing cache)
    config           the TrainConfig
    labels           class id (str) -> organ name, "0": "background"
    dataset          dataset.json-like label map (names -> ids, annotated organs, modalities)

``load_model(folder)`` gives the predictor a ready network: the fold folder (or a run folder with
one fold) is all it needs.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amoseg.atomic import write_atomic
from amoseg.errors import AmosegError, InputError
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


def topology_to_dict(topology: NetworkTopology) -> dict[str, Any]:
    return topology.to_dict()


def topology_from_dict(plan: Plan, data: dict[str, Any]) -> NetworkTopology:
    """A stored topology, parsed the way ``Plan.from_dict`` parses the plan's own."""
    return Plan.from_dict({**plan.to_dict(), "network": data}).network


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written checkpoint."""
    write_atomic(path, lambda temporary: torch.save(checkpoint, temporary))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's content, loaded as data (``weights_only=True``).

    Raises:
        InputError: missing, unreadable, not an amoseg checkpoint, or from a newer amoseg.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
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
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise InputError(path, "not an amoseg training checkpoint")
    if int(checkpoint.get("checkpoint_version", 0)) > CHECKPOINT_VERSION:
        raise InputError(
            path, f"written by a newer amoseg ({checkpoint.get('amoseg_version')}); update amoseg"
        )
    return checkpoint


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


def load_model(
    run_or_fold_dir: str | Path, device: str | torch.device = "cpu", checkpoint: str | None = None
) -> tuple[torch.nn.Module, Plan, dict[str, Any]]:
    """A trained network ready for inference, its plan, and what else the checkpoint says.

    Args:
        run_or_fold_dir: a fold folder (``RUNS/fold_0``), a run folder with a single fold, or a
            checkpoint file.
        device: where the network goes.
        checkpoint: "final" (as nnU-Net predicts), "best" (highest EMA pseudo-Dice), "latest", or None
            (default): final, else latest.

    Returns:
        (network, plan, metadata): the MONAI DynUNet in eval mode, mapping (B, 1, x, y, z) to logits
        (B, C, x, y, z) in plan space; the ``Plan`` whose preprocessing the network expects; and a dict
        with ``labels`` (class id as a string -> organ name, "0" background), ``dataset`` (dataset.json-like:
        names to ids, annotated organs, modalities), ``config``, ``topology``, ``epoch``, ``iteration``,
        ``fold``, ``name``, ``amoseg_version``, ``history`` and ``path``.

    Raises:
        InputError: no such checkpoint, or it is not an amoseg checkpoint.
    """
    from amoseg.planning.network import build_network

    path = find_checkpoint(run_or_fold_dir, checkpoint)
    stored = read_checkpoint(path, map_location="cpu")
    try:
        plan = Plan.from_dict(stored["plan"])
        topology = topology_from_dict(plan, stored["topology"])
        network = build_network(topology)
        network.load_state_dict(stored["network"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        raise InputError(path, f"checkpoint does not describe a loadable network ({error})") from None
    network.to(device).eval()
    metadata = {
        key: value for key, value in stored.items() if key not in ("network", "optimizer", "scaler", "rng")
    }
    metadata["path"] = str(path)
    return network, plan, metadata


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
    "checkpoint_for_prediction",
    "checkpoint_path",
    "find_checkpoint",
    "load_model",
    "read_checkpoint",
    "restore_rng_states",
    "rng_states",
    "save_checkpoint",
    "weights_digest",
]
