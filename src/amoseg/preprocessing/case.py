"""One case through preprocessing, and back: ``preprocess_case``, ``to_original_grid``, ``restore_label``.

Steps, in this order: reorient to the canonical orientation (axis permutation and flips, no
interpolation); crop to the body's bounding box; find the normalization numbers on the cropped image at
its own resolution (MR statistics come from its body voxels); resample the image (cubic in-plane,
linear along a low-resolution axis) and the labels (class by class); normalize; sample foreground
locations per class for patch sampling.

Back: whatever is resampled from plan space to the crop box's grid (a label map class by class in
``restore_label``, probabilities in ``amoseg.inference.export``) is put onto the original grid by
``to_original_grid``, the one inverse of the crop and the reorientation.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from amoseg.errors import AmosegError
from amoseg.io.boxes import label_boxes
from amoseg.io.image import Geometry, Image, LabelMap, make_geometry
from amoseg.io.orientation import canonical_reorientation, reorient_array, reorient_geometry
from amoseg.labels import Modality
from amoseg.planning.plan import Plan
from amoseg.preprocessing.crop import body_crop, cropped_geometry
from amoseg.preprocessing.normalize import apply_intensity_transform, normalization_parameters
from amoseg.preprocessing.properties import CaseProperties
from amoseg.preprocessing.resample import image_kernels, resample_image, resample_labels, resampled_shape

#: Foreground locations kept per class for patch sampling (a uniform random sample beyond this).
MAX_LOCATIONS_PER_CLASS = 10_000
#: Largest volume in plan space (2 GiB as float32). The largest AMOS CT at nnU-Net's full resolution
#: has about 1e8 voxels; only a plan edited to an absurd spacing (0.01 mm) reaches this.
MAX_RESAMPLED_VOXELS = 1 << 29


@dataclass(frozen=True, eq=False)
class PreprocessedCase:
    """A case in plan space.

    Attributes:
        image: float32 [x, y, z], normalized.
        label: uint8 [x, y, z], or None for an unlabelled case.
        class_locations: label id -> (n, 3) int32 voxel indices (x, y, z) of that class, n <= 10,000.
        properties: how to map back to the original grid.
    """

    image: np.ndarray
    label: np.ndarray | None
    class_locations: dict[int, np.ndarray]
    properties: CaseProperties


def _check_resampled_size(case_id: str, shape, spacing, target_spacing) -> None:
    """Refuse, before allocating, a resampled volume too large for any machine this runs on."""
    voxels = int(np.prod(shape, dtype=np.float64))
    if voxels > MAX_RESAMPLED_VOXELS:
        source = " x ".join(f"{value:.3g}" for value in spacing)
        target = " x ".join(f"{value:.3g}" for value in target_spacing)
        raise AmosegError(
            f"{case_id}: resampling from {source} mm to the plan's {target} mm would make "
            f"{' x '.join(str(int(v)) for v in shape)} = {voxels:.3g} voxels ({voxels * 4 / 2**30:.0f} GiB), "
            f"more than the limit of {MAX_RESAMPLED_VOXELS:.3g}; check the plan's target spacing"
        )


def preprocess_case(
    image: Image,
    label: LabelMap | None,
    modality: Modality,
    plan: Plan,
    *,
    case_id: str = "case",
    split: str = "",
    annotated_labels: tuple[int, ...] = (),
    absent_labels: tuple[int, ...] = (),
    dataset: str = "",
    max_locations: int = MAX_LOCATIONS_PER_CLASS,
) -> PreprocessedCase:
    """Bring one case into plan space (module docstring). Uses torch's current thread setting.

    Raises:
        AmosegError: label and image grids differ, or the plan has no scheme for ``modality``.
    """
    scheme = plan.normalization_for(modality)
    if label is not None:
        differences = image.geometry.differences(label.geometry)
        if differences:
            raise AmosegError(f"{case_id}: label and image grids differ: " + "; ".join(differences))
    reorientation = canonical_reorientation(image.geometry.direction)
    canonical_geometry = reorient_geometry(image.geometry, reorientation)
    array = reorient_array(image.array, reorientation)
    labels = reorient_array(label.array, reorientation) if label is not None else None

    box, body_mask = body_crop(array, modality, labels)
    array = array[box.slices]
    labels = labels[box.slices] if labels is not None else None
    transform = normalization_parameters(
        array, modality, scheme, body_mask[box.slices] if body_mask is not None else None
    )
    del body_mask
    geometry = cropped_geometry(canonical_geometry, box)
    shape = resampled_shape(box.shape, geometry.spacing, plan.target_spacing_mm)
    _check_resampled_size(case_id, shape, geometry.spacing, plan.target_spacing_mm)
    kernels = image_kernels(
        geometry.spacing,
        plan.target_spacing_mm,
        plan.resampling.anisotropy_threshold,
        plan.resampling.low_resolution_kernel,
        plan.resampling.image_kernel,
    )
    # The cache and the network read plan space in C order (a copy only when resampling left another).
    image_out = np.ascontiguousarray(
        apply_intensity_transform(resample_image(array, shape, kernels), transform)
    )
    del array
    label_kernel = plan.resampling.label_kernel
    label_out = resample_labels(labels, shape, kernel=label_kernel) if labels is not None else None
    locations = (
        class_locations(label_out, max_locations, seed=zlib.crc32(case_id.encode()))
        if label_out is not None
        else {}
    )
    counts = np.bincount(label_out.ravel(), minlength=1) if label_out is not None else np.zeros(0)
    properties = CaseProperties(
        case_id=case_id,
        modality=modality,
        plan_id=plan.plan_id,
        split=split,
        original_geometry=image.geometry,
        reorientation=reorientation,
        crop_box=box,
        cropped_geometry=geometry,
        geometry=resampled_geometry(geometry, shape),
        image_kernels=kernels,
        label_kernel=label_kernel,
        intensity=transform,
        labelled=label_out is not None,
        annotated_labels=tuple(int(v) for v in annotated_labels),
        absent_labels=tuple(int(v) for v in absent_labels),
        class_voxels=tuple((int(k), int(counts[k])) for k in np.flatnonzero(counts)),
        dataset=dataset,
    )
    return PreprocessedCase(image_out, label_out, locations, properties)


def resampled_geometry(geometry: Geometry, shape: tuple[int, int, int]) -> Geometry:
    """The grid of ``shape`` voxels covering the same extent as ``geometry`` (voxel-centre convention)."""
    ratio = np.asarray(geometry.shape, dtype=float) / np.asarray(shape, dtype=float)
    spacing = np.asarray(geometry.spacing) * ratio
    shift = geometry.direction_matrix @ (np.asarray(geometry.spacing) * (0.5 * ratio - 0.5))
    return make_geometry(
        shape, tuple(spacing), tuple(np.asarray(geometry.origin) + shift), geometry.direction
    )


def to_original_grid(array: np.ndarray, properties: CaseProperties, fill: int | float = 0) -> np.ndarray:
    """Put an array on the crop box's grid back onto the case's original grid.

    Undoes the crop (everything outside the body box becomes ``fill``) and the reorientation (flips
    and axis permutation). Resampling from plan space to the crop box's shape comes first and is the
    caller's: a label map and probabilities are resampled differently.

    Args:
        array: values indexed [x, y, z] in the canonical orientation, shape
            ``properties.crop_box.shape``; any dtype and strides.
        properties: the case's record from preprocessing.
        fill: the value outside the crop box (0: background).

    Returns:
        a new array of ``array``'s dtype with ``properties.original_geometry``'s shape, indexed [x, y, z]
        in the original file's axis order, in Fortran order (the I/O convention of ``amoseg.io.image``,
        so it is written without a copy).

    Raises:
        ValueError: ``array`` does not have the crop box's shape.
    """
    box = properties.crop_box
    if tuple(array.shape) != box.shape:
        raise ValueError(
            f"array shape {tuple(array.shape)} does not match the crop box {box.shape} of case {properties.case_id}"
        )
    result = np.full(properties.original_geometry.shape, fill, dtype=array.dtype, order="F")
    # The canonical view of the result is writable: one pass places the crop, no full-size temporary.
    reorient_array(result, properties.reorientation)[box.slices] = array
    return result


def restore_label(label: np.ndarray, properties: CaseProperties) -> LabelMap:
    """Map a label map from plan space back onto the case's original grid.

    Resamples class by class (``properties.label_kernel``) to the crop box's shape, then
    ``to_original_grid``. The result carries ``properties.original_geometry`` exactly.

    Args:
        label: integer array [x, y, z] with the shape of ``properties.geometry``.
        properties: the case's record from preprocessing.

    Raises:
        ValueError: ``label`` does not have the plan-space shape.
    """
    if tuple(label.shape) != tuple(properties.geometry.shape):
        raise ValueError(
            f"label shape {tuple(label.shape)} is not the plan-space shape {properties.geometry.shape} "
            f"of case {properties.case_id}"
        )
    cropped = resample_labels(label, properties.crop_box.shape, kernel=properties.label_kernel)
    return LabelMap(to_original_grid(cropped, properties), properties.original_geometry)


def class_locations(label: np.ndarray, max_per_class: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Voxel indices (x, y, z) of each label id > 0, a uniform sample of at most ``max_per_class``."""
    rng = np.random.default_rng(seed)
    locations = {}
    for class_id, box in enumerate(label_boxes(label), start=1):
        if box is None:
            continue
        flat = np.flatnonzero(label[box] == class_id)
        if flat.size > max_per_class:
            flat = np.sort(rng.choice(flat, max_per_class, replace=False))
        block_shape = tuple(axis.stop - axis.start for axis in box)
        starts = np.array([axis.start for axis in box])
        locations[class_id] = (np.stack(np.unravel_index(flat, block_shape), axis=1) + starts).astype(
            np.int32
        )
    return locations
