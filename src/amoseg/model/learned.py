"""Which organs a model learned, per modality: the rule, applied to a fold's training cases.

A network trained on partially labelled data has an output for every AMOS class, but it only learns
the classes its training cases show it. The rule: an organ is learned for a modality when at least
``MIN_CASES`` training cases of that modality annotate it and contain it. One case is too few to call
an organ learned (the network can only have memorised it), and an organ that no case of a modality
annotates was never shown to the network in that modality, whatever it learned in the other. The
predictor writes only learned organs (docs/inference.md, "What a model learned").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from amoseg.labels import MODALITIES

#: Training cases of a modality that must annotate and contain an organ for it to count as learned.
MIN_CASES = 2
RULE = f"annotated and present in at least {MIN_CASES} training cases of that modality"


def learned_labels(cases: Iterable) -> dict[str, tuple[int, ...]]:
    """Organ ids learned per modality, by the module's rule.

    Args:
        cases: training cases with ``modality`` and ``present`` (the annotated organs with at least
            one voxel), such as ``amoseg.training.dataset.CacheCase``.

    Returns:
        modality -> sorted organ ids, for every modality with at least one training case (an empty
        tuple when it taught none).
    """
    counts: dict[str, Counter] = {}
    for case in cases:
        counts.setdefault(case.modality, Counter()).update(set(case.present))
    return {
        modality: tuple(sorted(label for label, seen in counts[modality].items() if seen >= MIN_CASES))
        for modality in sorted(counts, key=_modality_order)
    }


def learned_from_record(record: Mapping) -> dict[str, tuple[int, ...]] | None:
    """The learned organs a fold's ``dataset.json`` record (also stored in its checkpoints) states.

    A model trained before the record held them learned, at most, the organs its training data
    annotated: those, for each of its modalities. None when the record says neither.
    """
    stored = record.get("learned_labels")
    if isinstance(stored, Mapping):
        return {str(modality): tuple(sorted(int(v) for v in labels)) for modality, labels in stored.items()}
    if "annotated_labels" not in record:
        return None
    annotated = tuple(sorted(int(v) for v in record["annotated_labels"]))
    return {str(modality): annotated for modality in record.get("modalities", MODALITIES)}


def _modality_order(modality: str) -> tuple[int, str]:
    return (MODALITIES.index(modality) if modality in MODALITIES else len(MODALITIES), modality)
