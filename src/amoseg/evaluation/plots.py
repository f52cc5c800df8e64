"""Per-organ box plot of DSC and NSD over all cases."""

from __future__ import annotations

import math
from pathlib import Path

from amoseg.atomic import atomic_path
from amoseg.evaluation.aggregate import Evaluation
from amoseg.labels import ORGAN_BY_ID


def write_boxplot(evaluation: Evaluation, path: str | Path) -> None:
    """Two panels (DSC, NSD), one box per organ over all cases; NaN scores are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = evaluation.labels
    names = [ORGAN_BY_ID[label].title for label in labels]
    colours = [tuple(channel / 255 for channel in ORGAN_BY_ID[label].colour) for label in labels]
    figure, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.7 * len(labels) + 2), 7), sharex=True)
    for axis, metric in zip(axes, ("dsc", "nsd"), strict=True):
        data = []
        for label in labels:
            values = [
                getattr(score, metric)
                for case in evaluation.cases
                for score in case.organs
                if score.label == label
            ]
            data.append([value for value in values if not math.isnan(value)])
        boxes = axis.boxplot(data, patch_artist=True, showfliers=True, medianprops={"color": "black"})
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
        axis.set_ylim(-0.02, 1.02)
        title = "DSC" if metric == "dsc" else "NSD"
        axis.set_ylabel(title)
        axis.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(range(1, len(labels) + 1), names, rotation=45, ha="right")
    tolerances = set(evaluation.tolerances_mm.values())
    tolerance = (
        f"{tolerances.pop():g} mm" if len(tolerances) == 1 else evaluation.tolerance_profile or "per organ"
    )
    figure.suptitle(f"{len(evaluation.cases)} cases; NSD tolerance {tolerance}")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
