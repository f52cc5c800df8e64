"""Shared matplotlib set-up: a headless backend, atomic PNG output and PNG bytes for embedding."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(figure, path: Path, dpi: int = 110) -> None:
    """Save a figure atomically and close it."""
    from amoseg.atomic import write_atomic

    write_atomic(
        path, lambda temporary: figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format="png")
    )
    pyplot().close(figure)


def figure_png(figure, dpi: int = 90) -> bytes:
    """A figure as PNG bytes, for embedding in a page; the figure is closed."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, bbox_inches="tight", format="png")
    pyplot().close(figure)
    return buffer.getvalue()


def organ_colour(organ_id: int) -> tuple[float, float, float]:
    from amoseg.labels import ORGAN_BY_ID

    return tuple(channel / 255 for channel in ORGAN_BY_ID[organ_id].colour)
