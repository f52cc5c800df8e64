"""Box plots of DSC and NSD per organ with CT and MR side by side, from per-case scores."""

from __future__ import annotations

from collections.abc import Sequence

from amoseg.labels import MODALITIES, ORGAN_BY_ID
from amoseg.reporting.figures import pyplot
from amoseg.reporting.scores import ScoreRow, values_by_organ

#: One colour per modality, so CT and MR read apart in every organ's pair of boxes.
MODALITY_COLOURS = {"CT": "#4c84c4", "MR": "#e08a3c"}
_BOX_WIDTH = 0.36


def modality_boxplot_figure(rows: Sequence[ScoreRow], title: str = ""):
    """Two panels (DSC above, NSD below); for each organ a CT box and an MR box next to each other.

    NaN scores are left out; an organ without values for a modality has no box for it. Returns the
    matplotlib figure (the caller saves or embeds it).
    """
    plt = pyplot()
    labels = sorted({row.label for row in rows})
    present = [modality for modality in MODALITIES if any(row.modality == modality for row in rows)]
    figure, axes = plt.subplots(2, 1, figsize=(max(7.0, 0.75 * len(labels) + 2), 7.5), sharex=True)
    offsets = {
        modality: (index - (len(present) - 1) / 2) * (_BOX_WIDTH + 0.04)
        for index, modality in enumerate(present)
    }
    for axis, metric, name in zip(axes, ("dsc", "nsd"), ("DSC", "NSD"), strict=True):
        values = values_by_organ(rows, metric)
        for modality in present:
            data, positions = [], []
            for position, label in enumerate(labels, start=1):
                found = values.get(label, {}).get(modality)
                if found:
                    data.append(found)
                    positions.append(position + offsets[modality])
            if not data:
                continue
            boxes = axis.boxplot(
                data,
                positions=positions,
                widths=_BOX_WIDTH,
                patch_artist=True,
                medianprops={"color": "black"},
                flierprops={"markersize": 3},
            )
            for patch in boxes["boxes"]:
                patch.set_facecolor(MODALITY_COLOURS.get(modality, "grey"))
        axis.set_ylim(-0.02, 1.02)
        axis.set_ylabel(name)
        axis.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=MODALITY_COLOURS[modality]) for modality in present]
    axes[0].legend(handles, present, loc="lower left", ncol=len(present) or 1)
    names = [ORGAN_BY_ID[label].title if label in ORGAN_BY_ID else str(label) for label in labels]
    axes[-1].set_xticks(range(1, len(labels) + 1), names, rotation=45, ha="right")
    axes[-1].set_xlim(0.4, len(labels) + 0.6)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
