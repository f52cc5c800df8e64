"""Plots of the dataset card: organ volumes, intensity histograms per modality, spacings."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amoseg.data.card import INTENSITY_ORDER
from amoseg.data.statistics import HISTOGRAM_LOW, StatisticsAccumulator
from amoseg.labels import MODALITIES, ORGAN_BY_ID, ORGANS
from amoseg.reporting.figures import organ_colour, pyplot, save_png


def plot_statistics(card: dict, accumulator: StatisticsAccumulator, output: Path) -> list[Path]:
    """Write volumes.png, intensity_<modality>.png per modality present, and spacing.png."""
    written = [_volumes(accumulator, output / "volumes.png")]
    for modality in MODALITIES:
        if any(key[0] == modality for key in accumulator.organ_intensity):
            written.append(_intensities(accumulator, modality, output / f"intensity_{modality.lower()}.png"))
    written.append(_spacing(accumulator, output / "spacing.png"))
    return written


def _volumes(accumulator: StatisticsAccumulator, path: Path) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(11, 5))
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
            names.append(organ.title)
            colours.append(organ_colour(organ.id))
    if data:
        boxes = axis.boxplot(data, patch_artist=True)
        for patch, colour in zip(boxes["boxes"], colours, strict=True):
            patch.set_facecolor(colour)
        axis.set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right")
        axis.set_yscale("log")
    axis.set_ylabel("volume (cm³, log scale)")
    axis.set_title("Organ volumes per case")
    save_png(figure, path)
    return path


def _intensities(accumulator: StatisticsAccumulator, modality: str, path: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(3, 5, figsize=(16, 9))
    for axis, organ_id in zip(axes.ravel(), INTENSITY_ORDER, strict=True):
        axis.set_title(ORGAN_BY_ID[organ_id].title, fontsize=9)
        distribution = accumulator.organ_intensity.get((modality, organ_id))
        if distribution is None:
            axis.text(0.5, 0.5, "no voxels", ha="center", va="center", transform=axis.transAxes)
            axis.set_xticks([])
            axis.set_yticks([])
            continue
        colour = organ_colour(organ_id)
        if distribution.histogram is not None:
            present = np.flatnonzero(distribution.histogram)
            values = present + HISTOGRAM_LOW
            axis.hist(
                values, bins=min(100, len(values)), weights=distribution.histogram[present], color=colour
            )
        if distribution.floats:
            axis.hist(np.concatenate(distribution.floats), bins=100, color=colour)
        axis.tick_params(labelsize=7)
    figure.suptitle(f"{modality} intensity per organ (all voxels of all labelled {modality} cases)")
    figure.tight_layout()
    save_png(figure, path)
    return path


def _spacing(accumulator: StatisticsAccumulator, path: Path) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 5))
    for modality, marker in zip(MODALITIES, "os", strict=True):
        cases = [case for case in accumulator.cases if case.modality == modality]
        if cases:
            in_plane = [float(np.mean(case.spacing_mm[:2])) for case in cases]
            slices = [case.spacing_mm[2] for case in cases]
            axis.scatter(in_plane, slices, marker=marker, label=f"{modality} ({len(cases)})", alpha=0.7)
    axis.set_xlabel("in-plane spacing (mm, mean of x and y)")
    axis.set_ylabel("slice spacing (mm, z)")
    axis.set_title("Spacing per case")
    axis.legend()
    save_png(figure, path)
    return path
