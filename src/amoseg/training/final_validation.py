"""Final validation: a fold's validation cases predicted whole, real Dice per organ, and postprocessing.

During training validation sees fixed patches only (a pseudo-Dice). At the end, as nnU-Net does, every
validation case is predicted in full from the preprocessing cache by the sliding window in plan space
(``inference.predictor``), with no mirroring to stay fast; the cache's image and label share one grid,
so nothing is resampled. Each annotated organ is scored with the exact Dice, with and without keeping
the prediction's largest component of that organ, and those scores decide the postprocessing
(``inference.postprocess.decide_from_scores``). Writes into the fold folder:

    validation.json      per case and organ the Dice of the raw argmax; per organ the mean
    postprocessing.json  the organs whose largest component alone is kept, and the Dice that decided it

Dice here is in plan space (the network's own grid), so it differs slightly from ``amoseg evaluate``'s
on the original grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from amoseg.atomic import read_json
from amoseg.errors import InputError
from amoseg.inference.postprocess import decide_from_scores, score_case
from amoseg.labels import organ_name
from amoseg.model.postprocessing import POSTPROCESSING_FILE, Postprocessing, floats_from_json
from amoseg.planning.plan import Plan
from amoseg.training.dataset import CacheCase, case_arrays

VALIDATION_FILE = "validation.json"


@dataclass(frozen=True)
class ValidationScores:
    """Whole-case validation Dice of one fold (plan space, no test-time augmentation).

    Attributes:
        dice: case id -> organ name -> Dice of the argmax; only the organs the case annotates, NaN
            where the organ is in neither the reference nor the prediction.
        mean_dice: organ name -> mean over the cases that score it (NaN left out; NaN when none does).
        mean: mean of ``mean_dice`` over the organs that have one.
        modality: case id -> "CT" or "MR".
    """

    dice: dict[str, dict[str, float]]
    mean_dice: dict[str, float]
    mean: float
    modality: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "mean_dice": dict(self.mean_dice),
            "cases": len(self.dice),
            "dice": {case: dict(organs) for case, organs in self.dice.items()},
            "modality": dict(self.modality),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationScores:
        """Rebuild from ``to_dict``'s output (null read as NaN)."""
        return cls(
            dice={str(case): floats_from_json(organs) for case, organs in data["dice"].items()},
            mean_dice=floats_from_json(data["mean_dice"]),
            mean=math.nan if data["mean"] is None else float(data["mean"]),
            modality={str(case): str(value) for case, value in data.get("modality", {}).items()},
        )

    def save(self, path: str | Path) -> None:
        from amoseg.atomic import write_json

        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ValidationScores:
        """Read a ``validation.json``.

        Raises:
            InputError: unreadable, or not a validation record.
        """
        path = Path(path)
        data = read_json(path, "validation record")
        try:
            return cls.from_dict(data)
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise InputError(path, f"not a validation record ({error})") from None


def summarize(
    case_ids: Sequence[str],
    scores: Sequence[Mapping[int, tuple[float, float]]],
    modalities: Sequence[str],
) -> ValidationScores:
    """``ValidationScores`` from ``score_case``'s results (the Dice before postprocessing), one per case."""
    dice = {
        case: {organ_name(organ): pair[0] for organ, pair in sorted(case_scores.items())}
        for case, case_scores in zip(case_ids, scores, strict=True)
    }
    names = [organ_name(organ) for organ in sorted({organ for case in scores for organ in case})]
    mean_dice = {}
    for name in names:
        values = [organs[name] for organs in dice.values() if name in organs and not math.isnan(organs[name])]
        mean_dice[name] = float(np.mean(values)) if values else math.nan
    scored = [value for value in mean_dice.values() if not math.isnan(value)]
    return ValidationScores(
        dice=dice,
        mean_dice=mean_dice,
        mean=float(np.mean(scored)) if scored else math.nan,
        modality=dict(zip(case_ids, modalities, strict=True)),
    )


def predict_case_label(
    network, image: np.ndarray, plan: Plan, device, step: float = 0.5, organs: Sequence[int] | None = None
) -> np.ndarray:
    """The argmax label map (uint8, the image's shape) of one plan-space image, no mirroring.

    ``organs``: the organs the network learned for this case's modality; the others' probabilities
    go to background first, as the predictor does (None: every class competes).
    """
    import torch

    from amoseg.inference.windows import WindowSettings, predict_probabilities
    from amoseg.model.organs import fold_into_background

    settings = WindowSettings(step=step, mirror=False)
    probabilities = predict_probabilities(
        [network], image, plan.num_classes, plan.patch_size, settings, device
    )
    if organs is not None:
        probabilities = fold_into_background(probabilities, organs)
    return torch.argmax(probabilities, dim=0).to(torch.uint8).cpu().numpy()


def final_validation(
    fold_dir: str | Path,
    network,
    plan: Plan,
    val_cases: Sequence[CacheCase],
    device,
    *,
    progress: bool = False,
    step: float = 0.5,
    learned: Mapping[str, Sequence[int]] | None = None,
) -> tuple[ValidationScores, Postprocessing] | None:
    """Predict each validation case whole, score it, decide postprocessing; write both into ``fold_dir``.

    Args:
        fold_dir: the fold folder; gets ``validation.json`` and ``postprocessing.json``.
        network: torch module in eval mode mapping (B, 1, x, y, z) to logits (B, C, x, y, z), on ``device``.
        plan: the plan the network and the cache were made with.
        val_cases: the fold's validation cases (from ``index_cases``).
        device: torch device for the sliding window.
        progress: show a progress bar and a closing line.
        step: window step as a fraction of the patch.
        learned: modality -> organs the network learned from it: each case is predicted as the
            predictor would (the others folded into background); None lets every class compete.

    Returns:
        (scores, decision), or None (and nothing written) when there is no validation case.
    """
    from amoseg.progress import track

    if not val_cases:
        return None
    fold_dir = Path(fold_dir)
    scores = []
    for case in track(val_cases, total=len(val_cases), description="final validation", enabled=progress):
        arrays = case_arrays(case.folder)
        # A writable copy: torch refuses to wrap the read-only memory map without a warning.
        organs = None if learned is None else learned.get(case.modality, ())
        prediction = predict_case_label(network, np.array(arrays.image), plan, device, step, organs)
        scores.append(score_case(prediction, np.asarray(arrays.label), case.annotated))
    summary = summarize([case.case_id for case in val_cases], scores, [case.modality for case in val_cases])
    decision = decide_from_scores(scores)
    summary.save(fold_dir / VALIDATION_FILE)
    decision.save(fold_dir / POSTPROCESSING_FILE)
    if progress:
        names = ", ".join(organ_name(organ) for organ in decision.largest_component) or "no organ"
        print(
            f"Final validation of {fold_dir.name} on {len(val_cases)} whole cases: mean Dice "
            f"{summary.mean:.4f} ({fold_dir / VALIDATION_FILE}); largest component kept for {names}"
        )
    return summary, decision
