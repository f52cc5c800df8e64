"""A trained model ready for prediction: one network per fold, their common plan and label map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amoseg.data.reference import MIN_REFERENCE_CASES, QualityReference
from amoseg.errors import AmosegError, InputError
from amoseg.model.organs import output_organs
from amoseg.planning.plan import Plan


@dataclass(frozen=True, eq=False)
class Model:
    """Networks (eval mode, on their device) of the folds to average, and what they predict.

    Attributes:
        networks: one torch module per fold.
        plan: the plan all folds were trained with.
        labels: class id -> canonical organ name, background excluded.
        folds: the fold names loaded, e.g. ("fold_0", "fold_1").
        keep: organ ids written to the output; None writes every organ the model predicts.
        largest_component: organ ids of which the predictor keeps only the largest connected
            component, as the folds' ``postprocessing.json`` decided (a majority of the folds).
        mirror_axes: the axes test-time augmentation may mirror: those every fold was trained to be
            mirrored along (a fold that never saw the patient's sides swapped must not be shown them).
        learned: modality -> organ ids every fold learned from that modality
            (``amoseg.model.learned``); None when the model states nothing (every channel counts).
    """

    networks: tuple
    plan: Plan
    labels: dict[int, str]
    folds: tuple[str, ...] = ()
    keep: tuple[int, ...] | None = None
    largest_component: tuple[int, ...] = ()
    mirror_axes: tuple[int, ...] = (0, 1, 2)
    learned: dict[str, tuple[int, ...]] | None = None

    def quality_reference(self, min_cases: int = MIN_REFERENCE_CASES) -> QualityReference:
        """What this model's predictions are checked against (``amoseg.inference.quality``).

        Per modality, organ and range (volume, mean intensity): the range measured on the training
        label maps, carried by the plan, when it covers at least ``min_cases`` cases; else the AMOS 2022
        dataset card's range for that organ (``amoseg.data.reference.with_fallback``). Positions come
        from the training data only. Each range names its source (``ObservedRange.source``).
        """
        from amoseg.data.amos_card import amos_card_reference
        from amoseg.data.reference import with_fallback

        return with_fallback(self.plan.quality_reference, amos_card_reference(), min_cases)

    def learned_anywhere(self) -> tuple[int, ...]:
        """Organ ids learned from at least one modality (what any input may hold)."""
        return output_organs(self.labels, self.learned, modality="", cross_modality=True)

    def describe(self) -> list[str]:
        """Lines for people: folds, plan, and the organs learned per modality (and the rule)."""
        from amoseg.labels import organ_name
        from amoseg.model.learned import RULE

        lines = [f"folds: {', '.join(self.folds) or 'one'}; plan {self.plan.plan_id}"]
        if self.learned is None:
            return [*lines, "organs learned: not recorded by this model; every output channel is written"]
        for modality, organs in self.learned.items():
            names = ", ".join(organ_name(organ) for organ in organs) or "none"
            lines.append(f"learned from {modality} ({len(organs)}): {names}")
        never = [organ_name(label) for label in sorted(self.labels) if label not in self.learned_anywhere()]
        lines.append(f"never learned, always written as background: {', '.join(never) or 'none'}")
        lines.append(f"rule: an organ is learned for a modality when {RULE}")
        return lines


def restrict_organs(model: Model, organs: str) -> Model:
    """The model with its output limited to ``organs`` ("liver,spleen" or "6,1").

    Raises:
        AmosegError: an organ name is unknown, or the model does not predict a requested organ.
    """
    import dataclasses

    from amoseg.labels import ORGAN_BY_ID, parse_label_ids
    from amoseg.model.learned import RULE

    try:
        wanted = parse_label_ids(organs)
    except ValueError as error:
        raise AmosegError(f"`organs`: {error}") from None
    learned = model.learned_anywhere()
    missing = [ORGAN_BY_ID[organ].name for organ in wanted if organ not in learned]
    if missing:
        known = ", ".join(ORGAN_BY_ID[organ].name for organ in learned) or "nothing"
        raise AmosegError(
            f"`organs`: the model did not learn {', '.join(missing)} (an organ is learned when {RULE}); "
            f"it learned {known}"
        )
    return dataclasses.replace(model, keep=wanted)


def fold_folders(model_dir: Path, folds: str | None) -> list[Path]:
    """The fold folders to load: ``model_dir`` itself when it is one, else its ``fold_*`` folders.

    Args:
        folds: "0,1,2", "all" or None (every fold folder that has a final or latest checkpoint).

    Raises:
        InputError: the folder or a requested fold is missing, or holds no checkpoint.
    """
    from amoseg.model.checkpoint import checkpoint_for_prediction

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise InputError(model_dir, "model folder not found")
    if checkpoint_for_prediction(model_dir) is not None:
        return [model_dir]
    if folds in (None, "", "all"):
        found = sorted(
            path for path in model_dir.glob("fold_*") if checkpoint_for_prediction(path) is not None
        )
        if not found:
            raise InputError(model_dir, "holds no trained fold (fold_*/checkpoint_final.pt)")
        return found
    chosen = []
    for name in (part.strip() for part in folds.split(",")):
        folder = model_dir / (name if name.startswith("fold_") else f"fold_{name}")
        if checkpoint_for_prediction(folder) is None:
            raise InputError(folder, "fold not found, or it holds no checkpoint")
        chosen.append(folder)
    return chosen


def load_model(model_dir: str | Path, folds: str | None = None, device: str = "cpu") -> Model:
    """Load the folds of a trained model; they must share one plan and one label map.

    The organs whose largest component alone is kept are those a majority of the loaded folds chose
    in their ``postprocessing.json`` (``model.postprocessing.majority_organs``).

    Raises:
        InputError: missing folder, fold or checkpoint; a checkpoint that cannot be read.
        AmosegError: folds trained with different plans or label maps.
    """
    from amoseg.model.checkpoint import load_network
    from amoseg.model.learned import learned_from_record
    from amoseg.model.postprocessing import load_postprocessing, majority_organs

    networks, plans, label_maps, names, decisions, learned = [], [], [], [], [], []
    mirror_axes = {0, 1, 2}  # narrowed to the axes every fold was trained to be mirrored along
    for folder in fold_folders(Path(model_dir), folds):
        decisions.append(load_postprocessing(folder))
        network, checkpoint = load_network(folder, device)
        networks.append(network)
        plans.append(checkpoint.plan)
        label_maps.append({int(key): value for key, value in checkpoint.labels.items() if int(key) != 0})
        names.append(folder.name)
        learned.append(learned_from_record(checkpoint.dataset))
        mirror_axes &= set(checkpoint.mirror_axes)
    if any(plan.plan_id != plans[0].plan_id for plan in plans):
        raise AmosegError(f"{model_dir}: folds {names} were trained with different plans; predict with one")
    if any(labels != label_maps[0] for labels in label_maps):
        raise AmosegError(f"{model_dir}: folds {names} predict different label maps")
    return Model(
        networks=tuple(networks),
        plan=plans[0],
        labels=label_maps[0],
        folds=tuple(names),
        largest_component=tuple(organ for organ in majority_organs(decisions) if organ in label_maps[0]),
        mirror_axes=tuple(sorted(mirror_axes)),
        learned=_learned_by_every_fold(learned),
    )


def _learned_by_every_fold(
    per_fold: list[dict[str, tuple[int, ...]] | None],
) -> dict[str, tuple[int, ...]] | None:
    """Per modality, the organs every fold learned: the average of folds is only as good as its worst.
    Folds that state nothing are left out; None when none states anything."""
    per_fold = [learned for learned in per_fold if learned is not None]
    if not per_fold:
        return None
    modalities = list(dict.fromkeys(modality for learned in per_fold for modality in learned))
    return {
        modality: tuple(sorted(set.intersection(*(set(learned.get(modality, ())) for learned in per_fold))))
        for modality in modalities
    }
