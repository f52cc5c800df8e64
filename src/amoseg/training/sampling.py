"""Patch sampling from the memory-mapped cache (numpy only): where each patch goes, then its voxels.

A patch is either random (its start drawn uniformly over the positions that keep it inside the image,
or that keep the image inside it where the image is smaller) or centred on a foreground voxel. For a
foreground patch the class is drawn uniformly among the annotated classes present in the case, then a
voxel among that class's stored locations, so an adrenal gland of 60 voxels is the centre of as many
patches as a liver of 25,000 (nnU-Net draws the class the same way). Where a patch leaves the image
the image is padded with the case's air value and the label with background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from amoseg.training.dataset import CacheCase, case_arrays, class_locations

Int3 = tuple[int, int, int]


@dataclass(frozen=True)
class PatchRequest:
    """One patch: case index (into the case list) and start voxel (x, y, z); negative means padding."""

    case: int
    start: Int3


@dataclass(frozen=True, eq=False)
class PatchBatch:
    """A batch of patches as numpy arrays.

    Attributes:
        image: float32 (B, 1, x, y, z).
        label: uint8 (B, 1, x, y, z).
        annotated: bool (B, C): background and the organs each case annotates.
        pad_value: float32 (B,): each case's air value (augmentation fills with it).
    """

    image: np.ndarray
    label: np.ndarray
    annotated: np.ndarray
    pad_value: np.ndarray


def start_range(size: int, patch: int) -> tuple[int, int]:
    """Lowest and highest start along an axis: inside the image, or the image inside the patch."""
    return (0, size - patch) if size >= patch else (size - patch, 0)


def random_start(shape: Sequence[int], patch: Sequence[int], rng: np.random.Generator) -> Int3:
    """A uniformly drawn start (x, y, z)."""
    bounds = [start_range(size, edge) for size, edge in zip(shape, patch, strict=True)]
    return tuple(int(rng.integers(low, high + 1)) for low, high in bounds)


def centred_start(shape: Sequence[int], patch: Sequence[int], centre: Sequence[int]) -> Int3:
    """The start that puts ``centre`` in the patch's middle, moved the least to stay within the range."""
    starts = []
    for size, edge, point in zip(shape, patch, centre, strict=True):
        low, high = start_range(size, edge)
        starts.append(int(np.clip(int(point) - edge // 2, low, high)))
    return tuple(starts)


def draw_request(
    cases: Sequence[CacheCase],
    case_index: int,
    patch: Sequence[int],
    rng: np.random.Generator,
    foreground: bool,
) -> PatchRequest:
    """Where one patch of a case goes; a foreground patch centres on a class drawn uniformly."""
    case = cases[case_index]
    if foreground and case.present:
        locations = class_locations(case.folder)
        candidates = [label for label in case.present if len(locations.get(label, ())) > 0]
        if candidates:
            label = candidates[int(rng.integers(len(candidates)))]
            voxels = locations[label]
            centre = voxels[int(rng.integers(len(voxels)))]
            return PatchRequest(case_index, centred_start(case.shape, patch, centre))
    return PatchRequest(case_index, random_start(case.shape, patch, rng))


def draw_requests(
    cases: Sequence[CacheCase],
    batch_size: int,
    patch: Sequence[int],
    rng: np.random.Generator,
    foreground_fraction: float,
) -> list[PatchRequest]:
    """A batch of requests: cases drawn uniformly with replacement, each patch foreground-centred with
    probability ``foreground_fraction``."""
    requests = []
    for _ in range(batch_size):
        case_index = int(rng.integers(len(cases)))
        foreground = bool(rng.random() < foreground_fraction)
        requests.append(draw_request(cases, case_index, patch, rng, foreground))
    return requests


def extract(array: np.ndarray, start: Sequence[int], patch: Sequence[int], fill: float) -> np.ndarray:
    """The patch of ``array`` at ``start``, filled with ``fill`` where it leaves the array (a copy)."""
    result = np.full(tuple(patch), fill, dtype=array.dtype)
    source, target = [], []
    for begin, edge, size in zip(start, patch, array.shape, strict=True):
        low, high = max(begin, 0), min(begin + edge, size)
        source.append(slice(low, max(high, low)))
        target.append(slice(low - begin, low - begin + max(high - low, 0)))
    result[tuple(target)] = array[tuple(source)]
    return result


def load_batch(
    cases: Sequence[CacheCase], requests: Sequence[PatchRequest], patch: Sequence[int], num_classes: int
) -> PatchBatch:
    """Read the requested patches from the memory-mapped cache."""
    size = len(requests)
    image = np.empty((size, 1, *patch), dtype=np.float32)
    label = np.empty((size, 1, *patch), dtype=np.uint8)
    annotated = np.zeros((size, num_classes), dtype=bool)
    pad_value = np.empty(size, dtype=np.float32)
    for index, request in enumerate(requests):
        case = cases[request.case]
        arrays = case_arrays(case.folder)
        image[index, 0] = extract(arrays.image, request.start, patch, case.pad_value)
        label[index, 0] = extract(arrays.label, request.start, patch, 0)
        annotated[index] = case.annotated_mask(num_classes)
        pad_value[index] = case.pad_value
    return PatchBatch(image, label, annotated, pad_value)
