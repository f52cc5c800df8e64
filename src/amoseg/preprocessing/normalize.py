"""Intensity normalization, chosen per case from its modality (one plan covers CT and MR).

- CT: HU mean the same thing in every scanner, so every CT is treated alike: clip to the 0.5 and 99.5
  percentiles of the CT foreground (labelled voxels of the whole dataset), then subtract that
  foreground's mean and divide by its standard deviation (nnU-Net's CTNormalization).
- MR: intensities have no absolute scale, so each image is z-scored over its own body region (see
  ``amoseg.preprocessing.crop.mr_body_mask``), after clipping it to its own 0.5 and 99.5 percentiles
  within the body, so a few extreme voxels (vessels, artefacts) do not set the scale.

Both are "clip to [low, high], then (x - mean) / std"; ``normalization_parameters`` finds the four
numbers for one image and ``apply_intensity_transform`` applies them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from amoseg.errors import AmosegError
from amoseg.labels import Modality
from amoseg.planning.plan import NormalizationScheme

#: MR statistics use at most this many body voxels, taken at a regular stride (exact below it).
MAX_STATISTICS_VOXELS = 8_000_000
#: Standard deviations below this are raised to it, so a constant image does not divide by zero.
MIN_STD = 1e-8


@dataclass(frozen=True)
class IntensityTransform:
    """Clip to [clip_low, clip_high], then subtract ``mean`` and divide by ``std`` (image units)."""

    clip_low: float
    clip_high: float
    mean: float
    std: float

    @property
    def normalized_floor(self) -> float:
        """The normalized value of ``clip_low``: the lowest value the transform produces (air in CT), and
        what fills a patch or window where it leaves the image."""
        return (self.clip_low - self.mean) / self.std

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> IntensityTransform:
        return cls(**{key: float(data[key]) for key in ("clip_low", "clip_high", "mean", "std")})


def normalization_parameters(
    image: np.ndarray, modality: Modality, scheme: NormalizationScheme, body_mask: np.ndarray | None = None
) -> IntensityTransform:
    """The four numbers that normalize ``image``.

    Args:
        image: intensities [x, y, z] (HU for CT).
        modality: the case's modality; must match ``scheme.modality``.
        scheme: the plan's scheme for that modality.
        body_mask: MR body region on the same grid (computed when None); unused for CT.

    Raises:
        AmosegError: the scheme is for another modality.
    """
    if scheme.modality != modality:
        raise AmosegError(f"normalization scheme is for {scheme.modality}, but the case is {modality}")
    if scheme.method == "dataset_foreground":
        return IntensityTransform(scheme.clip_low, scheme.clip_high, scheme.mean, max(scheme.std, MIN_STD))
    if body_mask is None:
        from amoseg.preprocessing.crop import mr_body_mask

        body_mask = mr_body_mask(image)
    values = image[body_mask] if body_mask.any() else np.asarray(image).ravel()
    values = values[:: max(1, values.size // MAX_STATISTICS_VOXELS)].astype(np.float64)
    low, high = np.percentile(values, [scheme.percentile_low, scheme.percentile_high])
    clipped = np.clip(values, low, high)
    return IntensityTransform(
        float(low), float(high), float(clipped.mean()), max(float(clipped.std()), MIN_STD)
    )


def apply_intensity_transform(values, transform: IntensityTransform):
    """Clip and z-score a float32 numpy array or torch tensor in place; returns it."""
    if isinstance(values, np.ndarray):
        np.clip(values, transform.clip_low, transform.clip_high, out=values)
        values -= np.float32(transform.mean)
        values /= np.float32(transform.std)
        return values
    values.clamp_(transform.clip_low, transform.clip_high).sub_(transform.mean).div_(transform.std)
    return values


def normalize(
    image: np.ndarray, modality: Modality, scheme: NormalizationScheme, body_mask: np.ndarray | None = None
) -> np.ndarray:
    """Normalized float32 copy of ``image``; see the module docstring for what each modality gets."""
    transform = normalization_parameters(image, modality, scheme, body_mask)
    return apply_intensity_transform(np.array(image, dtype=np.float32), transform)
