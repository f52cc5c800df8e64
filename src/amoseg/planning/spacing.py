"""Target spacing and the median case shape, from the fingerprint's per-case geometry.

Every vector is in the canonical orientation's axis order. The fingerprint stores spacing and shapes
in each file's own axis order with each case's ``axis_permutation`` (recorded by ``amoseg stats``);
they are permuted first, so a sagittal scan does not lend its slice spacing to the wrong axis.
"""

from __future__ import annotations

import numpy as np

from amoseg.data.fingerprint import Fingerprint
from amoseg.errors import AmosegError

#: Isotropic spacing of the ``fast`` preset (TotalSegmentator's ``--fast`` resolution).
FAST_SPACING_MM = 3.0
#: The ``cpu`` preset never goes finer than this on any axis.
CPU_MIN_SPACING_MM = 3.0
#: nnU-Net's anisotropy threshold: an axis is "low resolution" beyond 3 times the others' spacing.
ANISOTROPY_THRESHOLD = 3.0


def case_geometry(fingerprint: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """(spacings, shapes after crop), each (cases, 3), canonical axis order; labelled cases preferred.

    Raises:
        AmosegError: the fingerprint lists no case.
    """
    chosen = [case for case in fingerprint.cases if case.labelled] or list(fingerprint.cases)
    if not chosen:
        raise AmosegError("the fingerprint lists no case; run `amoseg stats` on a dataset with images")
    spacings = np.array([case.canonical_spacing_mm for case in chosen], dtype=float)
    shapes = np.array([case.canonical_planning_shape for case in chosen], dtype=float)
    return spacings, shapes


def fullres_target_spacing(
    spacings: np.ndarray, shapes: np.ndarray, threshold: float = ANISOTROPY_THRESHOLD
) -> tuple[float, float, float]:
    """nnU-Net's rule: the median spacing, except for strongly anisotropic data.

    When the coarsest axis of the median spacing is more than ``threshold`` times the others and also
    has more than ``threshold`` times fewer voxels, that axis gets the 10th percentile of its spacings
    instead (never finer than the other axes), so thin-slice cases are not thrown away.
    """
    target = np.percentile(spacings, 50, axis=0)
    median_shape = np.percentile(shapes, 50, axis=0)
    worst = int(np.argmax(target))
    others = [axis for axis in range(3) if axis != worst]
    anisotropic_spacing = target[worst] > threshold * max(target[others])
    anisotropic_voxels = median_shape[worst] * threshold < min(median_shape[others])
    if anisotropic_spacing and anisotropic_voxels:
        low_res = float(np.percentile(spacings[:, worst], 10))
        if low_res < max(target[others]):
            low_res = max(float(max(target[others])), low_res) + 1e-5
        target[worst] = low_res
    return tuple(float(value) for value in target)


def target_spacing(preset: str, spacings: np.ndarray, shapes: np.ndarray) -> tuple[float, float, float]:
    """Target spacing (x, y, z) in mm for a preset.

    - fullres: ``fullres_target_spacing``.
    - fast: 3 mm isotropic.
    - cpu: 3 mm, or the median spacing where the data are coarser than that (no upsampling).
    """
    if preset == "fullres":
        return fullres_target_spacing(spacings, shapes)
    if preset == "fast":
        return (FAST_SPACING_MM,) * 3
    if preset == "cpu":
        median = np.percentile(spacings, 50, axis=0)
        return tuple(float(max(CPU_MIN_SPACING_MM, value)) for value in median)
    raise AmosegError(f"unknown preset {preset!r}; use fullres, fast or cpu")


def median_resampled_shape(spacings: np.ndarray, shapes: np.ndarray, target: tuple) -> tuple[int, int, int]:
    """Median over cases of the shape after cropping and resampling to ``target`` (voxels)."""
    resampled = np.round(shapes * spacings / np.asarray(target, dtype=float)[None, :])
    return tuple(int(max(1, value)) for value in np.median(resampled, axis=0))


def total_resampled_voxels(spacings: np.ndarray, shapes: np.ndarray, target: tuple) -> float:
    """Voxels of all cases after cropping and resampling (for the batch-size cap)."""
    return float(
        np.prod(np.round(shapes * spacings / np.asarray(target, dtype=float)[None, :]), axis=1).sum()
    )
