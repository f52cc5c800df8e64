"""Patch sampling from the memory-mapped cache (numpy only): where each patch goes, then its voxels.

A patch is either random (its case drawn uniformly, its start uniformly over the positions that keep it
inside the image, or that keep the image inside it where the image is smaller) or centred on a
foreground voxel. A training foreground patch draws an (organ, modality) pair uniformly among those the
training cases annotate and hold, then a case of that modality holding the organ, then a voxel among
the organ's stored locations. So an adrenal gland of 60 voxels is the centre of as many patches as a
liver of 25,000 (nnU-Net draws the class uniformly too, within the case), and each modality's organs
are learned at the same rate however few cases it has: one model for CT and MR (AMOS task 2) would
otherwise learn MR from a sixth of its patches, and a partially labelled set would spend its patches
on the few organs of the best-represented modality. Where a patch leaves the image the image is
padded with the case's air value and the label with background.
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
    """Where one patch of a given case goes; a foreground patch centres on a class drawn uniformly among
    those the case holds (validation's patches: fixed cases)."""
    case = cases[case_index]
    if foreground and case.present:
        locations = class_locations(case.folder)
        candidates = [label for label in case.present if len(locations.get(label, ())) > 0]
        if candidates:
            label = candidates[int(rng.integers(len(candidates)))]
            return centred_on(cases, case_index, label, patch, rng)
    return PatchRequest(case_index, random_start(case.shape, patch, rng))


def centred_on(
    cases: Sequence[CacheCase], case_index: int, label: int, patch: Sequence[int], rng: np.random.Generator
) -> PatchRequest:
    """A patch centred on a voxel of ``label`` drawn among its stored locations (random without any)."""
    case = cases[case_index]
    voxels = class_locations(case.folder).get(label, ())
    if len(voxels) == 0:
        return PatchRequest(case_index, random_start(case.shape, patch, rng))
    centre = voxels[int(rng.integers(len(voxels)))]
    return PatchRequest(case_index, centred_start(case.shape, patch, centre))


def organ_pairs(cases: Sequence[CacheCase]) -> dict[tuple[int, str], list[int]]:
    """(organ, modality) -> indices of the cases of that modality that annotate and hold the organ."""
    pairs: dict[tuple[int, str], list[int]] = {}
    for index, case in enumerate(cases):
        for label in case.present:
            pairs.setdefault((label, case.modality), []).append(index)
    return dict(sorted(pairs.items()))


def draw_requests(
    cases: Sequence[CacheCase],
    batch_size: int,
    patch: Sequence[int],
    rng: np.random.Generator,
    foreground_fraction: float,
) -> list[PatchRequest]:
    """A batch of training requests: with probability ``foreground_fraction`` a patch centred on an
    (organ, modality) pair drawn uniformly (module docstring), else a random patch of a case drawn
    uniformly."""
    pairs = organ_pairs(cases)
    keys = list(pairs)
    requests = []
    for _ in range(batch_size):
        if keys and rng.random() < foreground_fraction:
            label, modality = keys[int(rng.integers(len(keys)))]
            holders = pairs[(label, modality)]
            requests.append(centred_on(cases, holders[int(rng.integers(len(holders)))], label, patch, rng))
        else:
            case_index = int(rng.integers(len(cases)))
            requests.append(PatchRequest(case_index, random_start(cases[case_index].shape, patch, rng)))
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
