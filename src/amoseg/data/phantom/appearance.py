"""Intensities: CT in HU and MR in arbitrary units, from the AMOS dataset card's per-organ tables.

Each tissue has a (mean, std, low, high) tone. A voxel's value is the partial-volume blurred mean map
plus per-voxel noise with the tissue's std, clipped so the value stays within [low, high] of its
tissue: for organs those are the card's 0.5 and 99.5 percentiles. The card's std describes real
organs, so it already holds scanner noise and texture; no second noise term is added on CT. MR gets a
smooth multiplicative bias field and Rician noise on top, as magnitude images have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amoseg.data.phantom import tissues
from amoseg.data.phantom.grid import Grid
from amoseg.labels import MAX_LABEL, ORGAN_BY_NAME, Modality


@dataclass(frozen=True)
class Tone:
    """Intensity of one tissue: mean and std, and the range (low, high) a voxel of it stays in."""

    mean: float
    std: float
    low: float
    high: float


def _organs(table: dict[str, tuple[float, float, float, float]]) -> dict[int, Tone]:
    return {ORGAN_BY_NAME[name].id: Tone(*values) for name, values in table.items()}


# Dataset card, "CT Intensity Information Statistics": mean, std, 0.5 % and 99.5 % percentiles (HU).
CT_ORGANS = _organs(
    {
        "liver": (47.95, 18.58, -21.97, 86.0),
        "right_kidney": (23.96, 16.0, -31.0, 62.02),
        "spleen": (26.94, 16.2, -33.02, 62.99),
        "pancreas": (19.79, 15.38, -31.0, 57.99),
        "aorta": (36.83, 19.98, -31.0, 80.45),
        "inferior_vena_cava": (56.87, 17.93, -12.02, 98.03),
        "right_adrenal_gland": (22.03, 39.45, -221.36, 75.99),
        "left_adrenal_gland": (39.93, 20.91, -38.02, 86.98),
        "gallbladder": (39.63, 21.98, -39.0, 91.98),
        "esophagus": (34.35, 20.47, -31.0, 81.97),
        "stomach": (16.91, 26.27, -54.38, 73.0),
        "duodenum": (23.15, 21.97, -43.03, 72.03),
        "left_kidney": (31.41, 28.92, -98.12, 81.97),
        "bladder": (12.52, 12.79, -33.02, 44.99),
        "prostate_uterus": (42.65, 25.47, -23.01, 112.98),
    }
)
# Dataset card, "MR Intensity Information Statistics". The card has no MR values for the bladder and
# prostate/uterus (NaN); the values below are chosen for AMOS's T1-like contrast (liver brighter than
# spleen): urine dark, prostate/uterus intermediate, a little brighter than muscle.
MR_ORGANS = _organs(
    {
        "liver": (170.95, 26.52, 86.0, 277.0),
        "right_kidney": (166.14, 38.39, 38.0, 272.0),
        "spleen": (155.34, 42.12, 14.0, 291.0),
        "pancreas": (245.64, 75.55, 72.98, 440.76),
        "aorta": (131.62, 48.39, 0.0, 224.55),
        "inferior_vena_cava": (216.82, 43.13, 92.0, 352.0),
        "right_adrenal_gland": (153.38, 62.73, 0.0, 277.0),
        "left_adrenal_gland": (227.39, 78.59, 83.0, 411.19),
        "gallbladder": (144.95, 34.98, 61.0, 270.0),
        "esophagus": (252.16, 46.85, 97.0, 365.0),
        "stomach": (169.28, 54.34, 19.43, 263.05),
        "duodenum": (189.41, 32.36, 94.8, 254.67),
        "left_kidney": (155.1, 64.18, 0.0, 285.0),
        "bladder": (60.0, 15.0, 20.0, 110.0),
        "prostate_uterus": (120.0, 25.0, 50.0, 200.0),
    }
)
# Tissues outside the card: textbook HU; MR by T1 contrast (fat bright, muscle and cortex dark).
CT_BODY = {
    tissues.AIR: Tone(-1000.0, 8.0, -1024.0, -970.0),
    tissues.SUBCUTANEOUS_FAT: Tone(-100.0, 15.0, -150.0, -50.0),
    tissues.VISCERAL_FAT: Tone(-95.0, 15.0, -150.0, -40.0),
    tissues.MUSCLE: Tone(50.0, 12.0, 10.0, 90.0),
    tissues.CORTICAL_BONE: Tone(900.0, 80.0, 650.0, 1150.0),
    tissues.CANCELLOUS_BONE: Tone(420.0, 60.0, 250.0, 600.0),
    tissues.LUNG: Tone(-850.0, 40.0, -950.0, -700.0),
    tissues.BOWEL: Tone(25.0, 20.0, -30.0, 80.0),
    tissues.GAS: Tone(-900.0, 40.0, -1000.0, -750.0),
    tissues.DISC: Tone(80.0, 15.0, 40.0, 120.0),
    tissues.CSF: Tone(15.0, 10.0, -10.0, 40.0),
    tissues.HEART: Tone(40.0, 15.0, 0.0, 80.0),
}
MR_BODY = {
    tissues.AIR: Tone(0.0, 0.0, 0.0, 0.0),
    tissues.SUBCUTANEOUS_FAT: Tone(280.0, 30.0, 200.0, 360.0),
    tissues.VISCERAL_FAT: Tone(270.0, 30.0, 190.0, 350.0),
    tissues.MUSCLE: Tone(95.0, 18.0, 50.0, 140.0),
    tissues.CORTICAL_BONE: Tone(25.0, 10.0, 0.0, 50.0),
    tissues.CANCELLOUS_BONE: Tone(210.0, 30.0, 130.0, 290.0),
    tissues.LUNG: Tone(15.0, 8.0, 0.0, 40.0),
    tissues.BOWEL: Tone(130.0, 35.0, 40.0, 220.0),
    tissues.GAS: Tone(5.0, 3.0, 0.0, 15.0),
    tissues.DISC: Tone(80.0, 15.0, 40.0, 120.0),
    tissues.CSF: Tone(40.0, 10.0, 10.0, 70.0),
    tissues.HEART: Tone(150.0, 30.0, 70.0, 230.0),
}

#: Partial-volume blur of the mean map, as a Gaussian sigma in voxels (x, y, z).
PARTIAL_VOLUME_SIGMA_VOXELS = (0.6, 0.6, 0.4)
CT_RANGE_HU = (-1024, 3071)


def render(tissue: np.ndarray, modality: Modality, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Render a tissue map (uint8, [x, y, z]) as a CT (int16 HU) or MR (int16, >= 0) image.

    Args:
        tissue: tissue codes from ``paint_tissues``.
        modality: "CT" or "MR".
        grid: the case's grid; MR uses it to lay the bias field out in the patient frame.
        rng: the case's appearance stream.
    """
    if modality not in ("CT", "MR"):
        raise ValueError(f"modality must be 'CT' or 'MR', got {modality!r}")
    tones = {**(CT_BODY if modality == "CT" else MR_BODY), **(CT_ORGANS if modality == "CT" else MR_ORGANS)}
    mean, std, low, high = (np.zeros(256, dtype=np.float32) for _ in range(4))
    for code, tone in tones.items():
        # Small per-case shifts stand in for differences in contrast phase and scanner calibration.
        shift = rng.uniform(-1.5, 1.5) if modality == "CT" else tone.mean * rng.uniform(-0.02, 0.02)
        mean[code], std[code] = tone.mean + shift, tone.std
        low[code], high[code] = tone.low - tone.mean, tone.high - tone.mean
    image = ndimage.gaussian_filter(mean[tissue], PARTIAL_VOLUME_SIGMA_VOXELS, mode="nearest", truncate=3.0)
    noise = rng.standard_normal(tissue.shape, dtype=np.float32)
    noise *= std[tissue]
    image += np.clip(noise, low[tissue], high[tissue])
    del noise
    if modality == "CT":
        return np.clip(np.rint(image), *CT_RANGE_HU).astype(np.int16)
    image *= _bias_field(tissue, grid, rng)
    sigma = np.float32(rng.uniform(3.0, 6.0))
    real = image + sigma * rng.standard_normal(tissue.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(tissue.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    return np.clip(np.rint(magnitude), 0, np.iinfo(np.int16).max).astype(np.int16)


def _bias_field(tissue: np.ndarray, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field, exp of a low-order polynomial of the patient position.

    It is scaled to average 1 over the organs, so the organ means stay those of the card on average
    while each organ is brighter or darker by a few percent depending on where it lies.
    """
    x, y, z = grid.patient_coordinates()
    linear = rng.uniform(-0.05, 0.05, size=3)
    quadratic = float(rng.uniform(-0.03, 0.03))
    x, y, z = x * np.float32(0.01), y * np.float32(0.01), z * np.float32(0.01)
    exponent = (
        float(linear[0]) * x + float(linear[1]) * y + float(linear[2]) * z + quadratic * (x * x + y * y)
    )
    field = np.broadcast_to(np.exp(exponent), tissue.shape)
    organs = (tissue >= 1) & (tissue <= MAX_LABEL)
    scale = float(field[organs].mean()) if organs.any() else float(field.mean())
    return field * np.float32(1.0 / scale)
