"""Case figures and predict previews: panels, letters, legends, the slice choice, and PNG output."""

from __future__ import annotations

import numpy as np
import pytest

from amoseg.data.phantom import generate_case
from amoseg.io.image import LabelMap, make_geometry
from amoseg.labels import ORGAN_BY_ID, ORGANS
from amoseg.plotting.display import DisplayFrame, labelled_centre
from amoseg.plotting.figures import figure_png, pyplot
from amoseg.plotting.preview import (
    CT_WINDOW,
    ERROR_TITLES,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    case_figure,
    display_window,
    planes_figure,
    save_preview,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LIVER, BLADDER = 6, 14
RAS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module", params=["LPS", "RAS"])
def case(request):
    direction = np.eye(3) if request.param == "LPS" else RAS
    return generate_case(1, "CT", seed=0, shape=(64, 64, 32), direction=direction)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    pyplot().close("all")


def _shifted(label: LabelMap, voxels: int) -> LabelMap:
    return LabelMap(np.roll(label.array, voxels, axis=0), label.geometry)


def _image_axes(figure) -> list:
    return [axis for axis in figure.axes if axis.get_images()]


def _letters(axis) -> dict[str, tuple[float, float]]:
    """Single-letter texts of an axes and their positions in axes coordinates."""
    return {text.get_text(): text.get_position() for text in axis.texts if len(text.get_text()) == 1}


def _mask_of(axis, organ: int) -> np.ndarray:
    """Where an overlay image of the axes shows the organ's colour."""
    overlay = np.asarray(axis.get_images()[-1].get_array())
    colour = np.array(ORGAN_BY_ID[organ].colour) / 255
    return np.all(np.isclose(overlay[..., :3], colour, atol=1e-3), axis=-1) & (overlay[..., 3] > 0)


def test_case_figure_with_a_reference_has_four_panels_and_a_png(case):
    image, label = case
    figure = case_figure(image, _shifted(label, 2), "CT", reference=label, title="amos_0001")
    axes = _image_axes(figure)
    assert [axis.get_title() for axis in axes] == ["image", "reference", "prediction", "errors"]
    legend_texts = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
    assert ERROR_TITLES[FALSE_POSITIVE] in legend_texts and ERROR_TITLES[FALSE_NEGATIVE] in legend_texts
    assert figure_png(figure).startswith(PNG_SIGNATURE)


def test_case_figure_without_a_reference_has_image_and_prediction(case):
    image, label = case
    figure = case_figure(image, label, "CT")
    assert [axis.get_title() for axis in _image_axes(figure)] == ["image", "prediction"]
    assert figure_png(figure).startswith(PNG_SIGNATURE)


def test_the_liver_is_drawn_on_the_left_of_the_axial_panel(case):
    """From the drawn overlay data: the test that failed when planes were cut from the stored array."""
    image, label = case
    figure = case_figure(image, label, "CT", reference=label, organ=LIVER)
    reference_axis = _image_axes(figure)[1]
    columns = np.nonzero(_mask_of(reference_axis, LIVER))[1]
    assert columns.size > 0
    assert columns.mean() < _mask_of(reference_axis, LIVER).shape[1] / 2


def test_every_panel_has_its_orientation_letters(case):
    image, label = case
    for axis in _image_axes(case_figure(image, label, "CT", reference=label)):
        letters = _letters(axis)
        assert letters["R"][0] < 0.5 < letters["L"][0]
        assert letters["A"][1] > 0.5 > letters["P"][1]
    coronal, sagittal = _image_axes(planes_figure(image, label, "CT"))[1:]
    assert _letters(coronal)["S"][1] > 0.5 > _letters(coronal)["I"][1]
    assert _letters(coronal)["R"][0] < 0.5
    assert _letters(sagittal)["A"][0] < 0.5 < _letters(sagittal)["P"][0]


def test_captions_give_the_slice_position_in_mm(case):
    image, label = case
    frame = DisplayFrame.of(image.geometry)
    centre = labelled_centre(frame.to_display(label.array), BLADDER)
    figure = case_figure(image, label, "CT", reference=label, organ=BLADDER)
    z_mm = frame.world_mm(centre)[2]
    for axis in _image_axes(figure):
        assert axis.get_xlabel() == f"slice {centre[2] + 1}/32, z = {z_mm:.1f} mm"
    assert "bladder in the reference" in figure.get_suptitle()
    assert _mask_of(_image_axes(figure)[1], BLADDER).any(), "the slice shows the organ asked for"


def test_an_organ_missing_from_the_reference_is_found_in_the_prediction(case):
    image, label = case
    reference = LabelMap(
        np.where(label.array == BLADDER, 0, label.array).astype(label.array.dtype), label.geometry
    )
    figure = case_figure(image, label, "CT", reference=reference, organ=BLADDER)
    assert "bladder in the prediction" in figure.get_suptitle()
    assert _mask_of(_image_axes(figure)[2], BLADDER).any()
    assert _image_axes(figure)[3].get_title() == "errors: bladder"


def test_one_legend_of_all_organs_in_readable_type(case):
    image, label = case
    only_liver = LabelMap(np.where(label.array == LIVER, LIVER, 0).astype(label.array.dtype), label.geometry)
    for figure in (case_figure(image, only_liver, "CT"), planes_figure(image, only_liver, "CT")):
        organ_legend = figure.legends[0]
        assert [text.get_text() for text in organ_legend.get_texts()] == [organ.title for organ in ORGANS]
        texts = [text for legend in figure.legends for text in legend.get_texts()]
        texts += [text for axis in figure.axes for text in (*axis.texts, axis.title, axis.xaxis.label)]
        assert min(text.get_fontsize() for text in texts) >= 9


def test_save_preview_writes_a_png_of_three_planes(case, tmp_path):
    image, label = case
    path = save_preview(image, label, "CT", tmp_path / "amos_0001_preview.png", title="amos_0001")
    assert path == tmp_path / "amos_0001_preview.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    figure = planes_figure(image, label, "CT", title="amos_0001")
    assert [axis.get_title() for axis in _image_axes(figure)] == ["axial", "coronal", "sagittal"]


def test_windows():
    assert display_window(np.zeros((2, 2, 2)), "CT") == CT_WINDOW
    mr = np.arange(101, dtype=np.int16).reshape(101, 1, 1)
    assert display_window(mr, "MR") == pytest.approx((1.0, 99.0))
    assert display_window(np.full((2, 2, 2), 7), "MR") == (7.0, 8.0)


def test_refusals(case):
    image, label = case
    elsewhere = LabelMap(np.zeros((4, 4, 4), dtype=np.uint8), make_geometry((4, 4, 4)))
    with pytest.raises(ValueError, match=r"\(4, 4, 4\)"):
        case_figure(image, elsewhere, "CT")
    with pytest.raises(ValueError, match="AMOS id"):
        case_figure(image, label, "CT", organ=16)
    with pytest.raises(ValueError, match="plane must be one of"):
        case_figure(image, label, "CT", plane="oblique")


def test_quality_flags_follow_their_organs_in_the_preview_legend_in_dark_red(case, tmp_path):
    from matplotlib.colors import to_rgba

    from amoseg.plotting.preview import FLAGGED_TEXT_COLOUR, legend_label

    image, label = case
    flags = {LIVER: ["volume high (2512 mL)", "in 2 pieces"], BLADDER: ["missing"], 3: []}
    figure = planes_figure(image, label, "CT", flags=flags)
    (legend,) = figure.legends
    texts = {text.get_text(): text for text in legend.get_texts()}
    expected = [organ.title for organ in ORGANS]
    expected[LIVER - 1] = "Liver: volume high (2512 mL); in 2 pieces"
    expected[BLADDER - 1] = "Bladder: missing"
    assert [text.get_text() for text in legend.get_texts()] == expected  # an empty list flags nothing
    red, plain = to_rgba(FLAGGED_TEXT_COLOUR), to_rgba(texts["Spleen"].get_color())
    assert to_rgba(texts[expected[LIVER - 1]].get_color()) == red
    assert to_rgba(texts["Bladder: missing"].get_color()) == red and plain != red
    assert legend_label(LIVER) == "Liver" and legend_label(BLADDER, ["missing"]) == "Bladder: missing"
    path = save_preview(image, label, "CT", tmp_path / "preview.png", title="amos_0001", flags=flags)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
