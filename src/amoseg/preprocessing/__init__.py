"""Preprocessing: reorient, crop to the body, resample, normalize per modality, and cache per plan.

Importing this package does not load torch; resampling does, when called.
"""

from amoseg.preprocessing.cache import PlanCache, load_case, write_case
from amoseg.preprocessing.case import PreprocessedCase, preprocess_case, restore_label, to_original_grid
from amoseg.preprocessing.normalize import IntensityTransform, normalize
from amoseg.preprocessing.properties import CaseProperties
from amoseg.preprocessing.resample import resample_image, resample_labels
from amoseg.preprocessing.run import PreprocessReport, preprocess_dataset

__all__ = [
    "CaseProperties",
    "IntensityTransform",
    "PlanCache",
    "PreprocessReport",
    "PreprocessedCase",
    "load_case",
    "normalize",
    "preprocess_case",
    "preprocess_dataset",
    "resample_image",
    "resample_labels",
    "restore_label",
    "to_original_grid",
    "write_case",
]
