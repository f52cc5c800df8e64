"""What preprocessing records about a case, so that every step can be undone exactly (``properties.json``)."""

from __future__ import annotations

from dataclasses import dataclass

from amoseg.io.image import Geometry
from amoseg.io.orientation import Reorientation
from amoseg.labels import Modality
from amoseg.preprocessing.crop import CropBox
from amoseg.preprocessing.normalize import IntensityTransform

PROPERTIES_VERSION = 1


@dataclass(frozen=True)
class CaseProperties:
    """One preprocessed case's record.

    Attributes:
        case_id: the dataset's case id.
        split: the dataset split the case came from (train or validation).
        modality: CT or MR; chose the normalization.
        plan_id: the plan that produced the arrays.
        original_geometry: the input grid, exactly as read (file axis order).
        reorientation: permutation and flips to the canonical orientation.
        crop_box: body box in the canonical grid (voxels [start, stop) per axis).
        cropped_geometry: the canonical, cropped grid before resampling.
        geometry: the stored arrays' grid (plan space): spacing ``target_spacing_mm`` up to rounding of
            the shape, same physical extent as the crop box, direction with any residual obliqueness.
        image_kernels: resampling kernel per axis used for the image.
        label_kernel: kernel each class's one-hot mask was resampled with.
        intensity: the clip and z-score applied to the image.
        labelled: whether ``label.npy`` exists.
        annotated_labels: organ ids the label map annotates (others are unknown, not background).
        absent_labels: annotated organs this case does not contain.
        class_voxels: voxels per label id in plan space (only ids present).
        dataset: the name of the dataset the case came from ("" in caches written before it was
            recorded): one cache may hold several datasets, and their case ids must not collide.
    """

    case_id: str
    modality: Modality
    plan_id: str
    split: str
    original_geometry: Geometry
    reorientation: Reorientation
    crop_box: CropBox
    cropped_geometry: Geometry
    geometry: Geometry
    image_kernels: tuple[str, str, str]
    label_kernel: str
    intensity: IntensityTransform
    labelled: bool
    annotated_labels: tuple[int, ...] = ()
    absent_labels: tuple[int, ...] = ()
    class_voxels: tuple[tuple[int, int], ...] = ()
    dataset: str = ""

    @property
    def reoriented_shape(self) -> tuple[int, int, int]:
        """Shape of the whole (uncropped) canonical grid."""
        return tuple(self.original_geometry.shape[axis] for axis in self.reorientation.permutation)

    @property
    def pad_value(self) -> float:
        """The normalized air value (``IntensityTransform.normalized_floor``) a patch is padded with."""
        return self.intensity.normalized_floor

    def to_dict(self) -> dict:
        return {
            "properties_version": PROPERTIES_VERSION,
            "case_id": self.case_id,
            "split": self.split,
            "modality": self.modality,
            "plan_id": self.plan_id,
            "original_geometry": geometry_to_dict(self.original_geometry),
            "reorientation": self.reorientation.to_dict(),
            "crop_box": self.crop_box.to_dict(),
            "cropped_geometry": geometry_to_dict(self.cropped_geometry),
            "geometry": geometry_to_dict(self.geometry),
            "image_kernels": list(self.image_kernels),
            "label_kernel": self.label_kernel,
            "intensity": self.intensity.to_dict(),
            "labelled": self.labelled,
            "annotated_labels": list(self.annotated_labels),
            "absent_labels": list(self.absent_labels),
            "class_voxels": {str(label): count for label, count in self.class_voxels},
            "dataset": self.dataset,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CaseProperties:
        return cls(
            case_id=str(data["case_id"]),
            split=str(data.get("split", "")),
            modality=data["modality"],
            plan_id=str(data["plan_id"]),
            original_geometry=geometry_from_dict(data["original_geometry"]),
            reorientation=Reorientation.from_dict(data["reorientation"]),
            crop_box=CropBox.from_dict(data["crop_box"]),
            cropped_geometry=geometry_from_dict(data["cropped_geometry"]),
            geometry=geometry_from_dict(data["geometry"]),
            image_kernels=tuple(data["image_kernels"]),
            label_kernel=str(data["label_kernel"]),
            intensity=IntensityTransform.from_dict(data["intensity"]),
            labelled=bool(data["labelled"]),
            annotated_labels=tuple(int(v) for v in data.get("annotated_labels", ())),
            absent_labels=tuple(int(v) for v in data.get("absent_labels", ())),
            class_voxels=tuple((int(k), int(v)) for k, v in data.get("class_voxels", {}).items()),
            dataset=str(data.get("dataset", "")),
        )


def geometry_to_dict(geometry: Geometry) -> dict:
    """JSON form of a Geometry; floats are written with full precision, so it reads back identical."""
    return {
        "shape": list(geometry.shape),
        "spacing": list(geometry.spacing),
        "origin": list(geometry.origin),
        "direction": [list(row) for row in geometry.direction],
    }


def geometry_from_dict(data: dict) -> Geometry:
    return Geometry(
        shape=tuple(int(v) for v in data["shape"]),
        spacing=tuple(float(v) for v in data["spacing"]),
        origin=tuple(float(v) for v in data["origin"]),
        direction=tuple(tuple(float(v) for v in row) for row in data["direction"]),
    )
