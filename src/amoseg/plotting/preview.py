"""Pictures of a case with its organs overlaid, in the radiological convention whatever the storage.

Every picture is drawn in the display frame of ``amoseg.plotting.display``: the volume is turned to
LPS index order first, so the patient's right is on the image's left (axial and coronal), anterior at
the top of the axial plane and on the left of the sagittal one, superior at the top of the coronal and
sagittal planes, for files stored LPS, RAS, LAS or slightly oblique alike. Each panel carries its
orientation letters on its edges and its slice position in mm; one legend of all 15 organs sits under
every figure, so colours read the same in every picture.

- ``case_figure``: one plane of a case, image | reference | prediction | errors (or image |
  prediction without a reference), through an organ's centre or the organs' centre. For reports.
- ``save_preview``: three planes of one label map, for ``amoseg predict --preview``; optionally with
  each organ's quality flags (``amoseg.inference.quality``) beside its legend entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from amoseg.io.image import Image, LabelMap
from amoseg.labels import ORGAN_BY_ID, ORGANS
from amoseg.plotting.display import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    PLANES,
    WRONG_ORGAN,
    DisplayFrame,
    PlaneView,
    error_map,
    labelled_centre,
    plane_pixels,
    plane_view,
)
from amoseg.plotting.figures import pyplot, save_png

#: Display windows: CT soft tissue in HU; MR between its own 1st and 99th percentiles.
CT_WINDOW = (-160.0, 240.0)
MR_PERCENTILES = (1.0, 99.0)

#: Error-map colours (r, g, b), 0..255, and their legend entries; blue and vermilion stay apart for
#: colour-blind readers.
ERROR_COLOURS: dict[int, tuple[int, int, int]] = {
    FALSE_POSITIVE: (213, 94, 0),
    FALSE_NEGATIVE: (0, 114, 178),
    WRONG_ORGAN: (240, 228, 66),
}
ERROR_TITLES: dict[int, str] = {
    FALSE_POSITIVE: "false positive (predicted, not in reference)",
    FALSE_NEGATIVE: "false negative (missed)",
    WRONG_ORGAN: "wrong organ (both labelled, differently)",
}

#: Legend text of an organ with quality flags: dark red, readable on white and for colour-blind readers
#: thanks to the flag text itself.
FLAGGED_TEXT_COLOUR = "#a50f15"

#: Type sizes in points; at the report's 70 dpi the smallest is still about 10 pixels high.
_TEXT_PT = 11
_TITLE_PT = 12
_LETTER_PT = 13
_OVERLAY_ALPHA = 0.45
_PANEL_WIDTH_IN = 4.2
_FIGURE_HEIGHT_IN = 6.2


def case_figure(
    image: Image,
    prediction: LabelMap,
    modality: str,
    *,
    reference: LabelMap | None = None,
    organ: int | None = None,
    title: str = "",
    plane: str = "axial",
):
    """One plane of a case: image | reference | prediction | error map, in the display frame.

    Without a reference: image | prediction. The slice goes through the centre (median voxel) of
    ``organ`` (an AMOS id) in the reference, or in the prediction when the reference has none of it;
    with ``organ`` None, or found in neither, through the centre of all labelled voxels of the
    reference (else the prediction, else the grid's centre). The error map is that organ's when
    ``organ`` is given, all organs' otherwise (see ``amoseg.plotting.display.error_map``).

    Args:
        image: the intensity image; its geometry sets the display frame.
        prediction: label map on the image's grid.
        modality: "CT" (window -160..240 HU) or "MR" (1st..99th percentile of the image).
        reference: the reference label map on the same grid, if any.
        organ: AMOS id (1..15) whose centre picks the slice and whose errors are drawn.
        title: first line of the figure's title.
        plane: "axial" (default), "coronal" or "sagittal".

    Returns:
        A matplotlib figure; save it with ``amoseg.plotting.figures.save_png`` or ``figure_png``.

    Raises:
        ValueError: a label map on another grid shape than the image, an unknown organ or plane.
    """
    if organ is not None and organ not in ORGAN_BY_ID:
        raise ValueError(f"organ must be an AMOS id 1..{len(ORGANS)}, got {organ!r}")
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}, got {plane!r}")
    frame = DisplayFrame.of(image.geometry)
    pixels = frame.to_display(image.array)
    predicted = frame.to_display(prediction.array)
    expected = None if reference is None else frame.to_display(reference.array)
    centre, where = _slice_centre(predicted, expected, organ, frame.shape)
    view = plane_view(frame, plane, centre)
    window = display_window(image.array, modality)

    panels: list[tuple[str, np.ndarray | None]] = [("image", None)]
    if expected is not None:
        panels.append(("reference", _organ_overlay(plane_pixels(expected, plane, centre))))
    panels.append(("prediction", _organ_overlay(plane_pixels(predicted, plane, centre))))
    errors = None
    if expected is not None:
        errors = plane_pixels(error_map(predicted, expected, organ), plane, centre)
        name = "errors" if organ is None else f"errors: {ORGAN_BY_ID[organ].title.lower()}"
        panels.append((name, _error_overlay(errors)))

    plt = pyplot()
    figure, axes = plt.subplots(
        1, len(panels), figsize=(_PANEL_WIDTH_IN * len(panels), _FIGURE_HEIGHT_IN), layout="constrained"
    )
    background = plane_pixels(pixels, plane, centre)
    for axis, (name, overlay) in zip(axes, panels, strict=True):
        _draw_panel(axis, background, window, overlay, view, name)
    if errors is not None:
        _error_legend(figure, errors)
    _organ_legend(figure)
    description = f"{plane} slice through {where}"
    figure.suptitle(f"{title}\n{description}" if title else description, fontsize=_TITLE_PT)
    return figure


def save_preview(
    image: Image,
    label: LabelMap,
    modality: str,
    path: Path,
    title: str = "",
    flags: Mapping[int, Sequence[str]] | None = None,
) -> Path:
    """Write a PNG of the axial, coronal and sagittal planes through the labelled organs' centre.

    The planes are drawn in the display frame (radiological convention, whatever the file's voxel
    order), with orientation letters, slice positions in mm and the legend of all 15 organs.

    Args:
        flags: organ id -> short texts of its quality flags (``amoseg.inference.quality.legend_flags``),
            written after the organ's legend entry, in dark red; None or empty: the plain legend.
    """
    save_png(planes_figure(image, label, modality, title=title, flags=flags), path)
    return path


def planes_figure(
    image: Image,
    label: LabelMap,
    modality: str,
    *,
    title: str = "",
    centre: tuple[int, int, int] | None = None,
    flags: Mapping[int, Sequence[str]] | None = None,
):
    """The figure of ``save_preview``: three planes of ``label`` overlaid on ``image``.

    ``centre`` is a display-frame voxel index (see ``amoseg.plotting.display``); by default the
    centre of the labelled voxels, or of the grid when none is labelled. ``flags`` as for
    ``save_preview``.
    """
    frame = DisplayFrame.of(image.geometry)
    pixels = frame.to_display(image.array)
    labels = frame.to_display(label.array)
    if centre is None:
        centre = labelled_centre(labels) or _grid_centre(frame.shape)
    window = display_window(image.array, modality)
    plt = pyplot()
    figure, axes = plt.subplots(
        1, len(PLANES), figsize=(_PANEL_WIDTH_IN * len(PLANES), _FIGURE_HEIGHT_IN), layout="constrained"
    )
    for axis, plane in zip(axes, PLANES, strict=True):
        view = plane_view(frame, plane, centre)
        overlay = _organ_overlay(plane_pixels(labels, plane, centre))
        _draw_panel(axis, plane_pixels(pixels, plane, centre), window, overlay, view, plane)
    _organ_legend(figure, flags)
    if title:
        figure.suptitle(title, fontsize=_TITLE_PT)
    return figure


def display_window(array: np.ndarray, modality: str) -> tuple[float, float]:
    """Grey-level window (low, high): CT_WINDOW in HU for CT; the 1st and 99th percentiles for MR."""
    if modality == "CT":
        return CT_WINDOW
    low, high = (float(value) for value in np.percentile(array, MR_PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def _slice_centre(
    predicted: np.ndarray,
    expected: np.ndarray | None,
    organ: int | None,
    shape: tuple[int, int, int],
) -> tuple[tuple[int, int, int], str]:
    """The display-frame voxel the plane goes through, and a phrase saying how it was chosen."""
    sources = [("reference", expected), ("prediction", predicted)]
    sources = [(name, labels) for name, labels in sources if labels is not None]
    if organ is not None:
        organ_title = ORGAN_BY_ID[organ].title.lower()
        for name, labels in sources:
            centre = labelled_centre(labels, organ)
            if centre is not None:
                return centre, f"the centre of the {organ_title} in the {name}"
    for name, labels in sources:
        centre = labelled_centre(labels)
        if centre is not None:
            missing = "" if organ is None else f" (no {organ_title} labelled)"
            return centre, f"the centre of the organs in the {name}{missing}"
    return _grid_centre(shape), "the centre of the grid (no organ labelled)"


def _grid_centre(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(int(size // 2) for size in shape)


def _draw_panel(axis, pixels, window, overlay, view: PlaneView, name: str) -> None:
    axis.imshow(
        pixels, cmap="gray", vmin=window[0], vmax=window[1], aspect=view.aspect, interpolation="nearest"
    )
    if overlay is not None:
        axis.imshow(overlay, aspect=view.aspect, interpolation="nearest")
    axis.set_title(name, fontsize=_TITLE_PT)
    axis.set_xlabel(view.caption, fontsize=_TEXT_PT)
    axis.set_xticks([])
    axis.set_yticks([])
    _orientation_letters(axis, view)


def _orientation_letters(axis, view: PlaneView) -> None:
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=3, foreground="black")]
    edges = view.edges
    for text, x, y, horizontal, vertical in (
        (edges.left, 0.015, 0.5, "left", "center"),
        (edges.right, 0.985, 0.5, "right", "center"),
        (edges.top, 0.5, 0.985, "center", "top"),
        (edges.bottom, 0.5, 0.015, "center", "bottom"),
    ):
        axis.text(
            x,
            y,
            text,
            transform=axis.transAxes,
            ha=horizontal,
            va=vertical,
            color="white",
            fontsize=_LETTER_PT,
            fontweight="bold",
            path_effects=outline,
        )


def _organ_overlay(organs: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*organs.shape, 4), dtype=np.float32)
    for organ_id, organ in ORGAN_BY_ID.items():
        where = organs == organ_id
        if where.any():
            rgba[where, :3] = np.array(organ.colour) / 255
            rgba[where, 3] = _OVERLAY_ALPHA
    return rgba


def _error_overlay(errors: np.ndarray) -> np.ndarray:
    rgba = np.zeros((*errors.shape, 4), dtype=np.float32)
    for value, colour in ERROR_COLOURS.items():
        where = errors == value
        rgba[where, :3] = np.array(colour) / 255
        rgba[where, 3] = 0.8
    return rgba


def _error_legend(figure, errors: np.ndarray) -> None:
    """False positive and false negative always; wrong organ only where the slice shows some."""
    from matplotlib.patches import Patch

    shown = [FALSE_POSITIVE, FALSE_NEGATIVE] + ([WRONG_ORGAN] if (errors == WRONG_ORGAN).any() else [])
    handles = [
        Patch(color=np.array(ERROR_COLOURS[value]) / 255, label=ERROR_TITLES[value]) for value in shown
    ]
    # A figure legend under the error panel: an axes legend outside its axes upsets the layout.
    figure.legend(
        handles=handles,
        loc="outside lower right",
        fontsize=_TEXT_PT,
        frameon=False,
        handlelength=1.2,
    )


def _organ_legend(figure, flags: Mapping[int, Sequence[str]] | None = None) -> None:
    """All 15 organs, always, so that a colour means the same organ in every picture; an organ with
    quality flags has them after its name, in dark red."""
    from matplotlib.patches import Patch

    flags = {organ: texts for organ, texts in (flags or {}).items() if texts}
    handles = [
        Patch(color=np.array(organ.colour) / 255, label=legend_label(organ.id, flags.get(organ.id)))
        for organ in ORGANS
    ]
    # Five columns need about 9 inches; a two-panel figure gets four; flag texts make entries wider.
    columns = 5 if figure.get_figwidth() >= 12 else 4
    if flags:
        columns -= 2
    legend = figure.legend(
        handles=handles,
        loc="outside lower center",
        ncol=columns,
        fontsize=_TEXT_PT,
        frameon=False,
        handlelength=1.4,
        columnspacing=1.6,
    )
    for organ, text in zip(ORGANS, legend.get_texts(), strict=True):
        if organ.id in flags:
            text.set_color(FLAGGED_TEXT_COLOUR)


def legend_label(organ_id: int, flags: Sequence[str] | None = None) -> str:
    """An organ's legend entry: its title, and its quality flags after it ("Liver: volume high")."""
    title = ORGAN_BY_ID[organ_id].title
    return f"{title}: {'; '.join(flags)}" if flags else title
