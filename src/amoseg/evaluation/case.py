"""One case: read a prediction and its reference, check they share a grid, score every organ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amoseg.data.layout import resolve_modality
from amoseg.errors import InputError
from amoseg.evaluation.metrics import OrganScore, check_label_values, score_organs
from amoseg.evaluation.tolerance import tolerances_for
from amoseg.io.image import Geometry, LabelMap
from amoseg.labels import MAX_LABEL, ORGAN_IDS, Modality

PathOrLabels = str | Path | LabelMap
#: Voxels counted at a time by ``unscored_voxels``.
_CHUNK_VOXELS = 1 << 22


@dataclass(frozen=True)
class CaseResult:
    """Scores of one case.

    Attributes:
        case_id: e.g. ``amos_0507``.
        modality: CT or MR, for the CT / MR / all summaries; None when nothing declares it (then the
            case counts in "all" only).
        organs: one score per evaluated label, in label order.
        voxel_volume_mm3: volume of one reference voxel, to turn voxel counts into mL.
        prediction: the prediction file, or None for an in-memory or missing prediction.
        reference: the reference file, or None for an in-memory label map.
        prediction_missing: True when no prediction was given and it was scored as empty.
        unscored_voxels: organ id -> predicted voxels of each organ that is not scored (no reference
            annotates it), ignore mask left out: the part of the label map the scores do not see.
    """

    case_id: str
    modality: Modality | None
    organs: tuple[OrganScore, ...]
    voxel_volume_mm3: float
    prediction: Path | None
    reference: Path | None
    prediction_missing: bool = False
    unscored_voxels: dict[int, int] = field(default_factory=dict)

    def unscored_ml(self) -> dict[int, float]:
        """``unscored_voxels`` in millilitres."""
        return {
            label: count * self.voxel_volume_mm3 / 1000.0 for label, count in self.unscored_voxels.items()
        }


def evaluate_case(
    pred: PathOrLabels | None,
    ref: PathOrLabels,
    *,
    labels: Sequence[int] | None = None,
    tolerance_mm: float | None = None,
    tolerance_profile: str | None = None,
    ignore_mask: PathOrLabels | None = None,
    case_id: str | None = None,
    modality: Modality | None = None,
) -> CaseResult:
    """DSC and NSD of every organ of one case.

    Args:
        pred: predicted label map (file or ``LabelMap``); None scores an empty prediction (a missing
            prediction with ``allow_missing``).
        ref: reference label map (file or ``LabelMap``); its header gives the spacing.
        labels: organ ids to score (default: all 15); only organs annotated in the reference belong here.
        tolerance_mm: NSD tolerance in mm for every organ (default 1.0).
        tolerance_profile: per-organ tolerance table instead, e.g. ``"flare22"``.
        ignore_mask: optional image on the same grid; its nonzero voxels are left out of both maps.
        case_id: name for the outputs (default: the reference's file name without suffix).
        modality: CT or MR (default: AMOS's id rule for ``amos_NNNN`` names, else undeclared).

    Raises:
        InputError: a file is unreadable, the grids differ (the message says which property and by how
            much), or a label value is outside 0..15.
    """
    from amoseg.io.sitk_io import strip_image_suffix

    labels = tuple(ORGAN_IDS if labels is None else labels)
    tolerances = tolerances_for(labels, tolerance_mm, tolerance_profile)
    ref_map, ref_path = _load(ref)
    if pred is None:
        pred_map, pred_path = None, None
    else:
        pred_map, pred_path = _load(pred)
        require_same_grid(ref_map.geometry, pred_map.geometry, pred_path or "prediction", ref_path)
    ignore = None
    if ignore_mask is not None:
        ignore_map, ignore_path = _load(ignore_mask, integer=False)
        require_same_grid(ref_map.geometry, ignore_map.geometry, ignore_path or "ignore mask", ref_path)
        ignore = ignore_map.array
    _check_values(ref_map, ref_path, "reference")
    if pred_map is not None:
        _check_values(pred_map, pred_path, "prediction")
    pred_array = np.zeros_like(ref_map.array) if pred_map is None else pred_map.array
    organs = score_organs(pred_array, ref_map.array, ref_map.geometry.spacing, labels, tolerances, ignore)
    if case_id is None:
        case_id = strip_image_suffix(ref_path.name) if ref_path else "case"
    return CaseResult(
        case_id=case_id,
        modality=modality or resolve_modality(case_id, None),
        organs=tuple(organs),
        voxel_volume_mm3=ref_map.geometry.voxel_volume_mm3,
        prediction=pred_path,
        reference=ref_path,
        prediction_missing=pred is None,
        unscored_voxels=unscored_voxels(pred_array, labels, ignore),
    )


def unscored_voxels(
    prediction: np.ndarray, scored: Sequence[int], ignore: np.ndarray | None = None
) -> dict[int, int]:
    """Voxels per organ id that ``prediction`` gives to organs outside ``scored`` (background and
    ignored voxels excluded); organs with none are left out.

    Counted in chunks of the array's memory, so no integer copy of the whole volume is made.
    """
    # One traversal order for both arrays: the prediction's own memory order, so its ravel is a view.
    order = "F" if prediction.flags.f_contiguous and not prediction.flags.c_contiguous else "C"
    flat = np.ravel(prediction, order=order)
    ignored = None if ignore is None else np.ravel(ignore, order=order)
    counts = np.zeros(MAX_LABEL + 1, dtype=np.int64)
    for start in range(0, flat.size, _CHUNK_VOXELS):
        chunk = flat[start : start + _CHUNK_VOXELS]
        if ignored is not None:
            chunk = chunk[ignored[start : start + _CHUNK_VOXELS] == 0]
        counts += np.bincount(chunk, minlength=MAX_LABEL + 1)
    return {label: int(counts[label]) for label in ORGAN_IDS if label not in scored and counts[label]}


def _check_values(label_map: LabelMap, path: Path | None, name: str) -> None:
    try:
        check_label_values(label_map.array, name)
    except ValueError as error:
        raise InputError(path or name, str(error)) from None


def require_same_grid(
    reference: Geometry, other: Geometry, other_path: str | Path, reference_path: Path | None = None
) -> None:
    """Raise InputError naming ``other_path`` unless the grids match (shape, spacing, origin, direction).

    The message lists each property that differs and by how much, e.g.
    ``pred/amos_0002.nii.gz: not on the grid of reference ref/amos_0002.nii.gz: origin differs by 5.000 mm``.
    """
    problems = reference.differences(other)
    if problems:
        where = f"reference {reference_path}" if reference_path else "the reference"
        raise InputError(other_path, f"not on the grid of {where}: " + "; ".join(problems))


def _load(source: PathOrLabels, integer: bool = True) -> tuple[LabelMap, Path | None]:
    """A label map and its file; an image that is not a label map is read as a 0/1 mask."""
    if isinstance(source, LabelMap):
        return source, None
    from amoseg.io.sitk_io import read_image, read_label

    path = Path(source)
    if integer:
        return read_label(path), path
    image = read_image(path)
    return LabelMap((image.array != 0).view(np.uint8), image.geometry), path
