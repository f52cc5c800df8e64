"""Shared matplotlib set-up: a headless backend, one readable style, atomic PNG output and PNG bytes for
embedding, captions and the per-case points drawn over small box plots.

Every figure is drawn at most about 11 inches wide, so the report's 1200-pixel column shows it at about
its saved size and no text on it falls below ``SMALL_FONT_SIZE`` points there.
"""

from __future__ import annotations

import contextlib
import functools
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

#: Axis labels and body text, in points.
FONT_SIZE = 10
#: The smallest type on any figure (tick labels, legends, captions), in points.
SMALL_FONT_SIZE = 9
#: Below this many values a box plot also draws every value as a point (a box of 3 values hides them).
FEW_POINTS = 10

STYLE = {
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE + 1,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": SMALL_FONT_SIZE,
    "ytick.labelsize": SMALL_FONT_SIZE,
    "legend.fontsize": SMALL_FONT_SIZE,
    "legend.title_fontsize": SMALL_FONT_SIZE,
    "figure.titlesize": FONT_SIZE + 2,
    "figure.labelsize": FONT_SIZE,
}

_Function = TypeVar("_Function", bound=Callable)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_style() -> contextlib.AbstractContextManager:
    """A context in which new figures, and figures drawn or saved, use ``STYLE``."""
    return pyplot().rc_context(STYLE)


def styled(function: _Function) -> _Function:
    """Run a figure-making function inside ``figure_style()``, so all its text gets the shared sizes."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with figure_style():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def save_png(figure, path: Path, dpi: int = 110) -> None:
    """Save a figure atomically and close it."""
    from amoseg.atomic import write_atomic

    def save(temporary: Path) -> None:
        with figure_style():
            figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format="png")

    write_atomic(path, save)
    pyplot().close(figure)


def figure_png(figure, dpi: int = 90) -> bytes:
    """A figure as PNG bytes, for embedding in a page; the figure is closed."""
    import io

    buffer = io.BytesIO()
    with figure_style():
        figure.savefig(buffer, dpi=dpi, bbox_inches="tight", format="png")
    pyplot().close(figure)
    return buffer.getvalue()


def caption(figure, text: str) -> None:
    """A caption line (wrapped to the figure's width) under the figure, left-aligned.

    It hangs below the figure's bottom edge; PNGs are saved with a tight bounding box, which takes it in.
    Call it after the figure is laid out (constrained layout leaves figure texts alone).
    """
    characters_per_inch = 72 / (0.55 * SMALL_FONT_SIZE)
    width = max(40, int(figure.get_figwidth() * characters_per_inch))
    figure.text(
        0.01,
        -0.01,
        textwrap.fill(text, width),
        ha="left",
        va="top",
        fontsize=SMALL_FONT_SIZE,
        color="0.25",
    )


def jittered_points(
    axis, position: float, values: Sequence[float], width: float, colour="black", seed: int = 0
) -> None:
    """Every value as a point at ``position``, spread across ``width`` so equal values stay apart.

    The spread is random but seeded: the same values always give the same picture.
    """
    import numpy as np

    if not len(values):
        return
    offsets = np.random.default_rng(seed).uniform(-width / 2, width / 2, len(values))
    axis.scatter(
        position + offsets,
        values,
        s=16,
        color=colour,
        edgecolors="white",
        linewidths=0.5,
        zorder=3,
    )


def organ_colour(organ_id: int) -> tuple[float, float, float]:
    from amoseg.labels import ORGAN_BY_ID

    return tuple(channel / 255 for channel in ORGAN_BY_ID[organ_id].colour)
