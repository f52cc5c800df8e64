"""Box plots of DSC and NSD per organ with CT and MR side by side, from per-case scores."""

from __future__ import annotations

from collections.abc import Sequence

from amoseg.labels import MODALITIES, ORGAN_BY_ID
from amoseg.plotting.figures import FEW_POINTS, caption, jittered_points, pyplot, styled
from amoseg.reporting.scores import ScoreRow, values_by_organ

#: One colour per modality, so CT and MR read apart in every organ's pair of boxes.
MODALITY_COLOURS = {"CT": "#4c84c4", "MR": "#e08a3c"}
_BOX_WIDTH = 0.36


@styled
def modality_boxplot_figure(rows: Sequence[ScoreRow], title: str = ""):
    """Two panels (DSC above, NSD below); for each organ a CT box and an MR box next to each other.

    NaN scores are left out; an organ without values for a modality has no box for it. A box of fewer
    than ``FEW_POINTS`` cases also draws each case as a point (one scatter per box, jittered
    sideways), and then no separate outlier markers. Returns the matplotlib figure (the caller saves
    or embeds it).
    """
    plt = pyplot()
    labels = sorted({row.label for row in rows})
    present = [modality for modality in MODALITIES if any(row.modality == modality for row in rows)]
    figure, axes = plt.subplots(
        2, 1, figsize=(max(7.0, 0.7 * len(labels) + 2.5), 7.5), sharex=True, layout="constrained"
    )
    offsets = {
        modality: (index - (len(present) - 1) / 2) * (_BOX_WIDTH + 0.04)
        for index, modality in enumerate(present)
    }
    with_points = False
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
            few = [len(found) < FEW_POINTS for found in data]
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
                patch.set_alpha(0.8)
            for index, (position, found) in enumerate(zip(positions, data, strict=True)):
                if few[index]:
                    # Its points include the outliers: no second marker for them.
                    boxes["fliers"][index].set_visible(False)
                    jittered_points(axis, position, found, _BOX_WIDTH * 0.6, seed=index)
                    with_points = True
        axis.set_ylim(-0.02, 1.02)
        axis.set_ylabel(f"{name} per case (0-1)")
        axis.grid(axis="y", alpha=0.3)
    cases = {modality: len({row.case_id for row in rows if row.modality == modality}) for modality in present}
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=MODALITY_COLOURS.get(modality, "grey")) for modality in present
    ]
    if handles:
        figure.legend(
            handles,
            [f"{modality} ({cases[modality]} cases)" for modality in present],
            loc="outside upper right",
            ncol=len(handles),
        )
    names = [ORGAN_BY_ID[label].title if label in ORGAN_BY_ID else str(label) for label in labels]
    axes[-1].set_xticks(range(1, len(labels) + 1), names, rotation=45, ha="right")
    axes[-1].set_xlim(0.4, len(labels) + 0.6)
    axes[-1].set_xlabel("organ")
    if title:
        figure.suptitle(title)
    caption(
        figure,
        "Per organ and modality, the cases' Dice similarity coefficient (DSC) and normalized surface "
        "Dice (NSD); cases where the organ is absent from both reference and prediction are left out. "
        "Box: quartiles and median; whiskers: 1.5 × IQR"
        + (f"; with fewer than {FEW_POINTS} cases every case is a point." if with_points else "."),
    )
    return figure
