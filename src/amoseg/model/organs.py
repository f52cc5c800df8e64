"""Which organs a prediction may hold, and the others folded into background.

A network trained with the marginal loss on partially labelled data has an output for every class,
but learned only some (``amoseg.model.learned``): the loss merges the classes a case does not
annotate into its background, so for a class no case annotated, the split between it and background
is arbitrary, and its argmax is noise (a whole body labelled duodenum). Prediction therefore takes the
loss's own view: the probabilities of every class the model did not learn are added to background
before the argmax.

An organ learned from one modality only (the gallbladder from CT, applied to an MR) is left out by
default: the network never saw it in that modality, and its predictions there cannot be checked
against any reference it learned from (docs/inference.md gives the measurement). ``cross_modality``
keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def output_organs(
    labels: Iterable[int],
    learned: Mapping[str, Iterable[int]] | None,
    modality: str,
    cross_modality: bool = False,
) -> tuple[int, ...]:
    """The organ ids a prediction of ``modality`` may hold.

    Args:
        labels: the network's organ channels (background excluded).
        learned: modality -> organs learned from it; None for a model that states nothing (every
            channel counts as learned).
        modality: the input's modality.
        cross_modality: also the organs learned from the other modalities only.

    Returns:
        sorted organ ids, a subset of ``labels``.
    """
    channels = set(labels)
    if learned is None:
        return tuple(sorted(channels))
    if cross_modality:
        allowed = {label for organs in learned.values() for label in organs}
    else:
        allowed = set(learned.get(modality, ()))
    return tuple(sorted(channels & allowed))


def fold_into_background(probabilities, organs: Iterable[int]):
    """Add every organ channel outside ``organs`` to background (channel 0) and zero it, in place.

    Args:
        probabilities: torch tensor (C, x, y, z) of class probabilities (summing to 1 per voxel).
        organs: the organ ids to keep.

    Returns:
        ``probabilities``, still summing to 1 per voxel.
    """
    keep = set(organs)
    for channel in range(1, probabilities.shape[0]):
        if channel not in keep:
            probabilities[0] += probabilities[channel]
            probabilities[channel].zero_()
    return probabilities
