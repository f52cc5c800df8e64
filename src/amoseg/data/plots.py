"""Plots of the dataset card: organ volumes, intensity histograms per modality, spacings.

``statistics_figures`` builds the matplotlib figures (for tests and embedding), ``plot_statistics``
writes them as PNGs next to the card.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from amoseg.data.card import INTENSITY_ORDER
from amoseg.data.statistics import HISTOGRAM_LOW, StatisticsAccumulator
from amoseg.labels import MODALITIES, ORGAN_BY_ID, ORGANS
from amoseg.plotting.figures import (
    FEW_POINTS,
    caption,
    jittered_points,
    organ_colour,
    pyplot,
    save_png,
    styled,
)

#: Legend text of the CT histograms' dashed lines: the window the plan clips CT to.
CLIP_WINDOW_LABEL = "clip window (0.5-99.5 %)"
#: The histograms' x range: the foreground's 0.5-99.5 % window widened by this share of it each side.
_RANGE_MARGIN = 0.15
_BINS = 60
_INTENSITY_UNITS = {"CT": "HU", "MR": "scanner units"}


def plot_statistics(card: dict, accumulator: StatisticsAccumulator, output: Path) -> list[Path]:
    """Write volumes.png, intensity_<modality>.png per modality present, and spacing.png.

    The figures are drawn from the accumulator, which holds what the card's tables summarize.
    """
    written = []
    for name, figure in statistics_figures(accumulator).items():
        save_png(figure, output / f"{name}.png")
        written.append(output / f"{name}.png")
    return written


def statistics_figures(accumulator: StatisticsAccumulator) -> dict:
    """The card's figures by file stem: ``volumes``, ``intensity_<modality>`` per modality with
    labelled voxels, ``spacing``; the caller saves (or closes) them."""
    figures = {"volumes": volumes_figure(accumulator)}
    for modality in MODALITIES:
        if any(key[0] == modality for key in accumulator.organ_intensity):
            figures[f"intensity_{modality.lower()}"] = intensity_figure(accumulator, modality)
    figures["spacing"] = spacing_figure(accumulator)
    return figures


@styled
def volumes_figure(accumulator: StatisticsAccumulator):
    """A box per organ of its volume (mL) in each labelled case that annotates it; with fewer than
    ``FEW_POINTS`` cases every case is also drawn as a point."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(11, 5.5), layout="constrained")
    data, names, colours = [], [], []
    for organ in ORGANS:
        volumes = [
            case.organ_voxels[organ.id] * float(np.prod(case.spacing_mm)) / 1000.0
            for case in accumulator.cases
            if case.organ_voxels is not None
            and case.organ_voxels[organ.id]
            and organ.id in case.annotated_labels
        ]
        if volumes:
            data.append(volumes)
            names.append(f"{organ.title} ({len(volumes)})")
            colours.append(organ_colour(organ.id))
    few = bool(data) and max(len(values) for values in data) < FEW_POINTS
    if data:
        boxes = axis.boxplot(
            data, patch_artist=True, showfliers=not few, medianprops={"color": "black"}, widths=0.6
        )
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.75)
        if few:
            for position, values in enumerate(data, start=1):
                jittered_points(axis, position, values, 0.3, seed=position)
        axis.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
        axis.set_yscale("log")
        # Plain numbers at 1-2-5 steps: a reader should not decode 10^1 to read a 3 mL gland.
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_locator(NullLocator())
    else:
        axis.text(0.5, 0.5, "no labelled case", ha="center", va="center", transform=axis.transAxes)
    axis.set_xlabel("organ (cases)")
    axis.set_ylabel("volume per case (mL, log scale)")
    axis.grid(axis="y", alpha=0.3)
    axis.set_title("Organ volumes")
    labelled = sum(case.organ_voxels is not None for case in accumulator.cases)
    caption(
        figure,
        f"Volume of each organ in each of the {labelled} labelled cases (CT and MR together) that "
        "annotates it and contains it; (n) after a name: those cases. Box: quartiles and median; "
        "whiskers: 1.5 × IQR"
        + ("; every case is a point." if few else "; beyond them each case is a point."),
    )
    return figure


@styled
def intensity_figure(accumulator: StatisticsAccumulator, modality: str):
    """Per organ, a histogram of its voxels' intensities in the labelled cases of one modality.

    All panels share one x range and one set of bins: the modality's foreground 0.5-99.5 % window,
    widened by 15 % each side. On CT that window is the one the plan clips to, drawn as two dashed
    lines (legend ``CLIP_WINDOW_LABEL``). The y axis is the share of the organ's voxels in each bin.
    """
    plt = pyplot()
    foreground = accumulator.foreground_intensity(modality)
    edges = _bin_edges(foreground)
    unit = _INTENSITY_UNITS.get(modality, "a.u.")
    figure, axes = plt.subplots(5, 3, figsize=(11, 12), sharex=True, layout="constrained")
    clip = modality == "CT" and foreground
    for axis, organ_id in zip(axes.ravel(), INTENSITY_ORDER, strict=True):
        axis.set_title(ORGAN_BY_ID[organ_id].title, fontsize=10)
        axis.grid(alpha=0.3)
        distribution = accumulator.organ_intensity.get((modality, organ_id))
        if distribution is None or distribution.count == 0:
            axis.text(0.5, 0.5, "no voxels", ha="center", va="center", transform=axis.transAxes)
            axis.set_yticks([])
            continue
        counts = np.zeros(len(edges) - 1)
        if distribution.histogram is not None:
            present = np.flatnonzero(distribution.histogram)
            counts += np.histogram(
                present + HISTOGRAM_LOW, bins=edges, weights=distribution.histogram[present]
            )[0]
        for chunk in distribution.floats:
            counts += np.histogram(chunk, bins=edges)[0] / distribution.keep_fraction
        axis.stairs(100.0 * counts / distribution.count, edges, fill=True, color=organ_colour(organ_id))
        if clip:
            for value in (foreground["p0.5"], foreground["p99.5"]):
                axis.axvline(value, color="black", linestyle="--", linewidth=1, label=CLIP_WINDOW_LABEL)
    axes[0, 0].set_xlim(edges[0], edges[-1])
    figure.supxlabel(f"intensity ({unit})")
    figure.supylabel("share of the organ's voxels per bin (%)")
    figure.suptitle(f"{modality} intensity per organ")
    if clip:
        figure.legend(handles=_lines(axes, CLIP_WINDOW_LABEL)[:1], loc="outside upper right")
    cases = sum(case.modality == modality and case.organ_voxels is not None for case in accumulator.cases)
    window = (
        f"{foreground['p0.5']:g} to {foreground['p99.5']:g} {unit}"
        if foreground
        else "not known (no foreground voxels)"
    )
    note = (
        "Dashed: the 0.5-99.5 % window of all labelled CT voxels, which the plan clips CT to."
        if clip
        else "MR is clipped and z-scored per image, so no dataset window applies."
    )
    caption(
        figure,
        f"All voxels of each organ in the {cases} labelled {modality} cases; bins of "
        f"{edges[1] - edges[0]:g} {unit}. x range: the foreground's 0.5-99.5 % window ({window}) "
        f"widened by {_RANGE_MARGIN:.0%} each side; voxels outside it are not drawn. {note}",
    )
    return figure


def _lines(axes, label: str) -> list:
    return [line for axis in axes.ravel() for line in axis.get_lines() if line.get_label() == label]


def _bin_edges(foreground: dict) -> np.ndarray:
    """``_BINS`` bins over the widened foreground window; whole-number wide and centred on whole
    numbers when the window is wide enough, so integer images show no binning stripes."""
    if not foreground:
        return np.linspace(0.0, 1.0, _BINS + 1)
    low, high = float(foreground["p0.5"]), float(foreground["p99.5"])
    margin = max(high - low, 1.0) * _RANGE_MARGIN
    low, high = max(low - margin, foreground["min"]), min(high + margin, foreground["max"])
    if high - low >= _BINS:
        width = math.ceil((high - low) / _BINS)
        start = math.floor(low) - 0.5
        return start + width * np.arange(math.ceil((high - start) / width) + 1)
    return np.linspace(low, high if high > low else low + 1.0, _BINS + 1)


@styled
def spacing_figure(accumulator: StatisticsAccumulator):
    """One point per case: in-plane spacing (mean of x and y) against slice spacing, in mm."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 5.5), layout="constrained")
    for modality, marker in zip(MODALITIES, "os", strict=True):
        cases = [case for case in accumulator.cases if case.modality == modality]
        if cases:
            in_plane = [float(np.mean(case.spacing_mm[:2])) for case in cases]
            slices = [case.spacing_mm[2] for case in cases]
            axis.scatter(in_plane, slices, marker=marker, label=f"{modality} ({len(cases)} cases)", alpha=0.7)
    axis.set_xlabel("in-plane spacing (mm, mean of x and y)")
    axis.set_ylabel("slice spacing (mm, z)")
    axis.set_title("Voxel spacing per case")
    axis.grid(alpha=0.3)
    if accumulator.cases:
        axis.legend()
    caption(figure, "One point per case, all splits; cases with equal spacing overlap (darker points).")
    return figure
