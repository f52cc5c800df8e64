"""A preview PNG: axial, coronal and sagittal slices with the organs overlaid in their colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amoseg.io.image import Image, LabelMap
from amoseg.labels import ORGAN_BY_ID
from amoseg.reporting.figures import pyplot, save_png

#: Display windows: CT soft tissue in HU; MR between its own 1st and 99th percentiles.
CT_WINDOW = (-160.0, 240.0)


def save_preview(image: Image, label: LabelMap, modality: str, path: Path, title: str = "") -> Path:
    """Three planes through the centre of the labelled organs, in the radiological convention.

    Slices are taken along the array axes (x, y, z), which for most scans are the patient's left,
    posterior and superior; the patient's right is drawn on the viewer's left.
    """
    save_png(preview_figure(image, label, modality, title), path)
    return path


def preview_figure(
    image: Image,
    label: LabelMap,
    modality: str,
    title: str = "",
    centre: tuple[int, int, int] | None = None,
):
    """The figure of ``save_preview``; ``centre`` (x, y, z voxel index) picks the slices, by default
    the centre of the labelled organs. Give two label maps of one image the same centre to compare them.
    """
    plt = pyplot()
    array = np.asarray(image.array, dtype=np.float32)
    labels = np.asarray(label.array)
    centre = organ_centre(labels) if centre is None else centre
    low, high = CT_WINDOW if modality == "CT" else tuple(np.percentile(array, [1, 99]))
    spacing = image.geometry.spacing
    planes = [
        ("axial", array[:, :, centre[2]].T, labels[:, :, centre[2]].T, spacing[1] / spacing[0]),
        ("coronal", array[:, centre[1], :].T[::-1], labels[:, centre[1], :].T[::-1], spacing[2] / spacing[0]),
        (
            "sagittal",
            array[centre[0], :, :].T[::-1],
            labels[centre[0], :, :].T[::-1],
            spacing[2] / spacing[1],
        ),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(15, 5.5))
    for axis, (name, pixels, organs, aspect) in zip(axes, planes, strict=True):
        axis.imshow(pixels, cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
        axis.imshow(_overlay(organs), aspect=aspect, interpolation="nearest")
        axis.set_title(name)
        axis.axis("off")
    present = [int(value) for value in np.unique(labels) if value in ORGAN_BY_ID]
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=np.array(ORGAN_BY_ID[organ].colour) / 255) for organ in present
    ]
    figure.legend(
        handles, [ORGAN_BY_ID[organ].title for organ in present], loc="lower center", ncol=8, fontsize=8
    )
    figure.suptitle(title)
    return figure


def organ_centre(labels: np.ndarray) -> tuple[int, int, int]:
    """Median voxel index (x, y, z) of the labelled voxels; of the whole array when none is labelled."""
    found = np.argwhere(labels > 0) if labels.any() else np.argwhere(np.ones_like(labels, dtype=bool))
    return tuple(int(value) for value in np.median(found, axis=0))


def _overlay(organs: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*organs.shape, 4), dtype=np.float32)
    for organ_id, organ in ORGAN_BY_ID.items():
        where = organs == organ_id
        if where.any():
            rgba[where, :3] = np.array(organ.colour) / 255
            rgba[where, 3] = 0.5
    return rgba
