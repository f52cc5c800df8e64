"""ITK pixel types as numpy types, and their size in bytes: what a volume will take once decoded."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

_NUMPY_TYPES = {
    "UInt8": np.uint8,
    "Int8": np.int8,
    "UInt16": np.uint16,
    "Int16": np.int16,
    "UInt32": np.uint32,
    "Int32": np.int32,
    "UInt64": np.uint64,
    "Int64": np.int64,
    "Float32": np.float32,
    "Float64": np.float64,
}
_DTYPE_BY_PIXEL_ID = {getattr(sitk, f"sitk{name}"): np.dtype(kind) for name, kind in _NUMPY_TYPES.items()}
_COMPONENT_BYTES = {
    **{getattr(sitk, f"sitkVector{name}"): np.dtype(kind).itemsize for name, kind in _NUMPY_TYPES.items()},
    **{pixel_id: dtype.itemsize for pixel_id, dtype in _DTYPE_BY_PIXEL_ID.items()},
    sitk.sitkComplexFloat32: 8,
    sitk.sitkComplexFloat64: 16,
}


def numpy_dtype(pixel_id: int) -> np.dtype | None:
    """The numpy type of a scalar ITK pixel type (native byte order); None for other types."""
    return _DTYPE_BY_PIXEL_ID.get(pixel_id)


def voxel_bytes(pixel_id: int, components: int) -> int:
    """Bytes per voxel of an ITK pixel type; 8 per component for types not listed (an upper bound)."""
    return _COMPONENT_BYTES.get(pixel_id, 8) * max(components, 1)
