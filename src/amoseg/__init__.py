"""amoseg: abdominal multi-organ segmentation on CT and MR, built around AMOS 2022."""

__version__ = "0.1.0"
