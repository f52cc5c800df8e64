"""The figures' content read from the matplotlib objects: panels, labels, ticks, points, type size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amoseg.data.plots import CLIP_WINDOW_LABEL, plot_statistics, statistics_figures
from amoseg.data.statistics import CaseStatistics, OrganIntensity, StatisticsAccumulator
from amoseg.evaluation.records import ScoreRow
from amoseg.labels import ORGAN_BY_ID
from amoseg.plotting.figures import FEW_POINTS, SMALL_FONT_SIZE, pyplot
from amoseg.reporting.score_plots import modality_boxplot_figure
from amoseg.training.log import (
    CURVES_FILE,
    ORGAN_CURVES_FILE,
    curves_figure,
    epoch_record,
    organ_curves_figure,
    plot_curves,
    plot_organ_curves,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot().close("all")


def _history(epochs: int, iterations: list[int] | None = None) -> list[dict]:
    iterations = iterations or [50 * epoch for epoch in range(1, epochs + 1)]
    return [
        epoch_record(
            epoch=epoch,
            iteration=iterations[epoch - 1],
            lr=0.01 * (1 - (epoch - 1) / epochs) ** 0.9,
            train_loss=1.2 - 0.05 * epoch,
            val_loss=1.1 - 0.04 * epoch,
            dice=[math.nan] + [min(1.0, 0.05 * epoch + 0.02 * organ) for organ in range(1, 16)],
            ema_dice=0.04 * epoch,
            epoch_seconds=60.0 + epoch,
            elapsed_seconds=61.0 * epoch,
        )
        for epoch in range(1, epochs + 1)
    ]


def _drawn(figure):
    figure.canvas.draw()  # tick labels exist only once drawn
    return figure


def _small_texts(figure) -> list[tuple[str, float]]:
    """Visible, non-empty texts of a drawn figure (ticks, legends, labels, titles, captions) under the
    smallest allowed size."""
    from matplotlib.text import Text

    return [
        (text.get_text(), text.get_fontsize())
        for text in figure.findobj(Text)
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < SMALL_FONT_SIZE
    ]


def _panels(figure) -> list:
    """The figure's own panels, top to bottom: axes labelled on the left (twins are on the right)."""
    panels = [axes for axes in figure.axes if axes.yaxis.get_label_position() == "left"]
    return sorted(panels, key=lambda axes: -axes.get_position().y0)


def _visible_ticks(axes) -> list[float]:
    low, high = sorted(axes.get_xlim())
    return [tick for tick in axes.get_xticks() if low - 1e-9 <= tick <= high + 1e-9]


@pytest.mark.parametrize("epochs", [1, 3, 7, 40])
def test_curves_have_three_labelled_panels_over_integer_epochs(epochs):
    figure = _drawn(curves_figure(_history(epochs), title="fold_0"))
    panels = _panels(figure)
    assert [axes.get_ylabel() for axes in panels] == [
        "loss (soft Dice + cross-entropy)",
        "learning rate",
        "epoch time (s)",
    ]
    assert panels[-1].get_xlabel() == "epoch (50 training steps each)"
    twins = [axes for axes in figure.axes if axes not in panels]
    assert [axes.get_ylabel() for axes in twins] == ["pseudo-Dice (validation patches)"]
    assert twins[0].get_ylim() == (0, 1)
    # Equal steps per epoch: the time per step is a second scale of the time panel.
    assert [child.get_ylabel() for child in panels[-1].child_axes] == ["s per step"]
    for axes in panels:
        ticks = _visible_ticks(axes)
        assert ticks, "no epoch tick"
        assert all(float(tick).is_integer() for tick in ticks), ticks
    assert _small_texts(figure) == []


def test_curves_time_per_step_from_iterations_when_steps_vary():
    history = _history(3, iterations=[50, 100, 120])
    figure = curves_figure(history)
    panels = _panels(figure)
    (step_axes,) = [axes for axes in figure.axes if axes.get_ylabel() == "s per step (dotted)"]
    assert step_axes.get_shared_x_axes().joined(step_axes, panels[-1])
    np.testing.assert_allclose(step_axes.get_lines()[0].get_ydata(), [61 / 50, 62 / 50, 63 / 20])
    np.testing.assert_allclose(panels[1].get_lines()[0].get_ydata(), [record["lr"] for record in history])
    assert panels[-1].get_xlabel() == "epoch"


def test_plot_curves_writes_png_and_skips_an_empty_history(tmp_path):
    plot_curves(tmp_path, _history(2), title="fold_0")
    assert (tmp_path / CURVES_FILE).read_bytes()[:4] == b"\x89PNG"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert curves_figure([]) is None
    plot_curves(empty, [])
    assert not (empty / CURVES_FILE).exists()


def test_each_organ_has_its_panel_of_pseudo_dice_over_the_iterations(tmp_path):
    history = _history(3, iterations=[50, 100, 120])
    history[1]["pseudo_dice"]["right_adrenal_gland"] = None  # absent from that epoch's patches
    figure = _drawn(organ_curves_figure(history, title="fold_all"))
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert len(panels) == 15
    titles = [axes.get_title() for axes in panels]
    assert titles[0] == "Spleen: 0.17" and titles[10] == "Right adrenal gland: 0.37"
    assert titles[14] == "Prostate/uterus: 0.45"
    line, floor = panels[10].get_lines()
    np.testing.assert_allclose(line.get_xdata(), [50, 100, 120])
    np.testing.assert_allclose(line.get_ydata(), [0.27, math.nan, 0.37])
    assert set(floor.get_ydata()) == {0.5}
    assert all(axes.get_ylim() == (0, 1) for axes in panels)
    assert _small_texts(figure) == []
    plot_organ_curves(tmp_path, history)
    assert (tmp_path / ORGAN_CURVES_FILE).read_bytes()[:4] == b"\x89PNG"
    assert organ_curves_figure([{"epoch": 1, "iteration": 5}]) is None


def _case(case_id: str, modality: str, spacing: float, organs: dict[int, np.ndarray]) -> CaseStatistics:
    voxels = [0] * 16
    intensity = {}
    for organ_id, values in organs.items():
        voxels[organ_id] = values.size
        if np.issubdtype(values.dtype, np.integer):
            distinct, counts = np.unique(values, return_counts=True)
            intensity[organ_id] = OrganIntensity(distinct, counts)
        else:
            intensity[organ_id] = OrganIntensity(values, None)
    return CaseStatistics(
        case_id=case_id,
        modality=modality,
        split="train",
        spacing_mm=(spacing, spacing, 2 * spacing),
        shape=(64, 64, 32),
        cropped_shape=(64, 64, 32),
        annotated_labels=tuple(organs),
        organ_voxels=tuple(voxels),
        intensity=intensity,
    )


@pytest.fixture
def accumulator() -> StatisticsAccumulator:
    """Two CT cases (integer HU, liver and spleen) and one MR case (float values, liver only)."""
    rng = np.random.default_rng(0)
    result = StatisticsAccumulator()
    for index in range(2):
        organs = {
            6: rng.normal(60, 15, 4000).round().astype(np.int64),
            1: rng.normal(45, 20, 900).round().astype(np.int64),
        }
        result.add(_case(f"amos_000{index + 1}", "CT", 0.8 + 0.1 * index, organs))
    result.add(_case("amos_0501", "MR", 1.2, {6: rng.normal(300, 40, 2000).astype(np.float32)}))
    return result


def test_statistics_figures_text_is_readable(accumulator):
    figures = statistics_figures(accumulator)
    assert list(figures) == ["volumes", "intensity_ct", "intensity_mr", "spacing"]
    for name, figure in figures.items():
        assert _small_texts(_drawn(figure)) == [], name
    volumes = figures["volumes"].axes[0]
    assert volumes.get_ylabel() == "volume per case (mL, log scale)"
    assert figures["intensity_ct"].get_supxlabel() == "intensity (HU)"
    spacing = figures["spacing"].axes[0]
    assert (spacing.get_xlabel(), spacing.get_ylabel()) == (
        "in-plane spacing (mm, mean of x and y)",
        "slice spacing (mm, z)",
    )
    # Every figure carries a caption under it.
    assert all(figure.texts for figure in figures.values())


def test_ct_histograms_mark_the_foreground_clip_window(accumulator):
    foreground = accumulator.foreground_intensity("CT")
    figures = statistics_figures(accumulator)
    ct, mr = figures["intensity_ct"], figures["intensity_mr"]
    with_data = [axes for axes in ct.axes if axes.patches]
    assert {axes.get_title() for axes in with_data} == {ORGAN_BY_ID[6].title, ORGAN_BY_ID[1].title}
    for axes in with_data:
        lines = [line for line in axes.get_lines() if line.get_label() == CLIP_WINDOW_LABEL]
        assert sorted(line.get_xdata()[0] for line in lines) == [foreground["p0.5"], foreground["p99.5"]]
        assert all(line.get_linestyle() == "--" for line in lines)
    (legend,) = ct.legends
    assert [text.get_text() for text in legend.get_texts()] == [CLIP_WINDOW_LABEL]
    # One x range for all panels, around the window.
    limits = {axes.get_xlim() for axes in ct.axes}
    assert len(limits) == 1
    low, high = limits.pop()
    assert low < foreground["p0.5"] < foreground["p99.5"] < high
    assert not mr.legends
    assert not [
        line for axes in mr.axes for line in axes.get_lines() if line.get_label() == CLIP_WINDOW_LABEL
    ]


def test_volumes_draw_every_case_when_few(accumulator):
    axes = statistics_figures(accumulator)["volumes"].axes[0]
    # Liver in all 3 cases, spleen in the 2 CT cases.
    assert sorted(len(points.get_offsets()) for points in axes.collections) == [2, 3]


def test_plot_statistics_writes_the_pngs(accumulator, tmp_path):
    written = plot_statistics({}, accumulator, tmp_path)
    assert [path.name for path in written] == [
        "volumes.png",
        "intensity_ct.png",
        "intensity_mr.png",
        "spacing.png",
    ]
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in written)


def _rows(ct_cases: int, mr_cases: int, labels=(1, 2, 6)) -> list[ScoreRow]:
    rng = np.random.default_rng(1)
    rows = []
    for modality, cases, first in (("CT", ct_cases, 1), ("MR", mr_cases, 501)):
        for case in range(cases):
            for label in labels:
                dsc = float(rng.uniform(0.6, 0.95))
                rows.append(
                    ScoreRow(f"amos_{first + case:04d}", modality, ORGAN_BY_ID[label].name, label, dsc, dsc)
                )
    return rows


def test_boxplots_of_two_cases_show_both_points_per_box():
    figure = _drawn(modality_boxplot_figure(_rows(2, 2), title="4 test cases"))
    assert len(figure.axes) == 2
    for axes, name in zip(figure.axes, ("DSC", "NSD"), strict=True):
        assert axes.get_ylabel() == f"{name} per case (0-1)"
        # 3 organs x 2 modalities, one scatter of 2 cases each.
        assert [len(points.get_offsets()) for points in axes.collections] == [2] * 6
    assert figure.axes[-1].get_xlabel() == "organ"
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["CT (2 cases)", "MR (2 cases)"]
    assert _small_texts(figure) == []


def test_boxplots_of_many_cases_have_no_points():
    figure = _drawn(modality_boxplot_figure(_rows(FEW_POINTS, 0, labels=(1, 15))))
    for axes in figure.axes:
        assert len(axes.collections) == 0
    assert _small_texts(figure) == []
