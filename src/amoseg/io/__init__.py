"""Image I/O: in-memory types and the SimpleITK boundary.

The types (``Image``, ``LabelMap``, ``Geometry``) import only numpy; the readers and writers import
SimpleITK on first use, so ``import amoseg.io`` stays cheap.
"""

from amoseg.io.image import Geometry, Image, LabelMap, make_geometry

__all__ = [
    "Geometry",
    "Image",
    "LabelMap",
    "make_geometry",
    "read_header",
    "read_image",
    "read_label",
    "write_image",
]


def __getattr__(name: str):
    if name in {"read_header", "read_image", "read_label", "write_image"}:
        from amoseg.io import sitk_io

        return getattr(sitk_io, name)
    raise AttributeError(name)
