"""One image through the model: preprocess, predict in plan space, export to the input's grid.

``predict_image`` takes and returns in-memory images, so the Python API works without files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from amoseg.inference.export import probabilities_on_original_grid, probabilities_to_label
from amoseg.inference.postprocess import keep_largest
from amoseg.inference.windows import WindowSettings, predict_probabilities
from amoseg.io.image import Image, LabelMap
from amoseg.labels import Modality
from amoseg.model.loading import Model
from amoseg.model.organs import fold_into_background, output_organs

if TYPE_CHECKING:
    from amoseg.io.foreign import InMemoryImage


@dataclass(frozen=True)
class PredictOptions:
    """Choices for prediction.

    Attributes:
        windows: window step, mirroring test-time augmentation (along the axes the model was trained
            to be mirrored along), windows per forward pass and autocast.
        device: torch device ("cpu", "cuda", "mps").
        keep_probabilities: also return the softmax on the input grid (float16).
        postprocess: keep only the largest component of the organs the model's postprocessing chose
            (``Model.largest_component``); False writes the argmax as it is.
        cross_modality: also write organs the model learned from the other modality only
            (``amoseg.model.organs``); organs it never learned are background whatever this says.
    """

    windows: WindowSettings = field(default_factory=WindowSettings)
    device: str = "cpu"
    keep_probabilities: bool = False
    postprocess: bool = True
    cross_modality: bool = False


@dataclass(frozen=True, eq=False)
class Prediction:
    """A predicted label map on the input's grid, optional probabilities, where the time went, and the
    organ ids it could hold (learned for its modality, and asked for).

    ``label`` is an ``amoseg.io.LabelMap`` here; ``amoseg.api.predict_image`` hands it back as the
    kind of image it was given (SimpleITK, nibabel).
    """

    label: LabelMap | InMemoryImage
    probabilities: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    organs: tuple[int, ...] = ()


def predict_image(
    image: Image, model: Model, modality: Modality, options: PredictOptions = PredictOptions()
) -> Prediction:
    """Segment one image with a model (all its folds averaged).

    Args:
        image: the input, any orientation and spacing.
        model: loaded networks and their plan.
        modality: CT or MR; chooses the normalization.
        options: tiling, augmentation and device.

    Returns:
        the label map with exactly ``image.geometry``.
    """
    from amoseg.preprocessing import preprocess_case

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    case = preprocess_case(image, None, modality, model.plan)
    seconds["preprocess"] = time.perf_counter() - start
    start = time.perf_counter()
    probabilities = predict_probabilities(
        model.networks,
        case.image,
        model.plan.num_classes,
        model.plan.patch_size,
        options.windows,
        options.device,
        mirror_axes=model.mirror_axes,
    )
    seconds["network"] = time.perf_counter() - start
    start = time.perf_counter()
    learned = output_organs(model.labels, model.learned, modality, options.cross_modality)
    probabilities = fold_into_background(probabilities, learned)
    label = probabilities_to_label(probabilities, case.properties)
    largest = [organ for organ in model.largest_component if organ in learned]
    if options.postprocess and largest:
        # On the output grid, so the components are those of the label map that is written.
        label = LabelMap(keep_largest(label.array, largest), label.geometry)
    organs = learned if model.keep is None else tuple(organ for organ in learned if organ in model.keep)
    if model.keep is not None:
        # After the argmax: an organ left out does not hand its voxels to a neighbour that is kept.
        label = LabelMap(
            np.where(np.isin(label.array, organs), label.array, 0).astype(np.uint8), label.geometry
        )
    on_grid = (
        probabilities_on_original_grid(probabilities, case.properties) if options.keep_probabilities else None
    )
    seconds["export"] = time.perf_counter() - start
    return Prediction(label=label, probabilities=on_grid, seconds=seconds, organs=organs)
