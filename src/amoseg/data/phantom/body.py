"""The unlabelled body around the organs: skin and fat, muscle, skeleton, lungs, heart and bowel.

Nominal positions are in the patient frame in mm (+x patient left, +y posterior, +z superior) for an
average abdomen; ``Placement`` stretches them to the case's body size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amoseg.data.phantom import tissues
from amoseg.data.phantom.shapes import Box, Column, Ellipsoid, Harmonics, Tube, random_rotation, smooth_path

#: Nominal inner abdominal cavity (inside the muscle wall): half-width, anterior and posterior half-depth.
NOMINAL_CAVITY_MM = (122.0, 95.0, 90.0)

Painted = tuple[object, int]


@dataclass(frozen=True)
class Placement:
    """Per-case stretch of the nominal anatomy: scales in x, anterior y, posterior y and z."""

    scale_x: float
    scale_anterior: float
    scale_posterior: float
    scale_z: float

    def point(self, point) -> np.ndarray:
        x, y, z = (float(value) for value in point)
        return np.array(
            [x * self.scale_x, y * (self.scale_anterior if y < 0 else self.scale_posterior), z * self.scale_z]
        )

    def points(self, points) -> np.ndarray:
        return np.array([self.point(point) for point in points])


@dataclass(frozen=True)
class Body:
    """The drawn body: its cavity (for lungs and organs), placement and painted structures in order."""

    cavity: Column
    placement: Placement
    structures: tuple[Painted, ...]


@dataclass(frozen=True)
class Lungs:
    """Both lung bases: the cavity above two diaphragm domes, minus the mediastinum."""

    cavity: Column
    dome_centres: tuple[tuple[float, float], tuple[float, float]]
    dome_peaks_mm: tuple[float, float]
    dome_depth_mm: float = 55.0
    dome_radius_mm: float = 90.0
    mediastinum_half_mm: float = 35.0
    mediastinum_back_mm: float = 30.0

    def bounds(self) -> Box:
        low, high = self.cavity.bounds()
        low[2] = min(self.dome_peaks_mm) - self.dome_depth_mm
        high[2] = 1e4
        return low, high

    def evaluate(self, x, y, z):
        right = x < 0
        cx = np.where(right, np.float32(self.dome_centres[0][0]), np.float32(self.dome_centres[1][0]))
        cy = np.where(right, np.float32(self.dome_centres[0][1]), np.float32(self.dome_centres[1][1]))
        peak = np.where(right, np.float32(self.dome_peaks_mm[0]), np.float32(self.dome_peaks_mm[1]))
        reach = np.minimum(((x - cx) ** 2 + (y - cy) ** 2) * (1.0 / self.dome_radius_mm**2), 1.0)
        dome = peak - self.dome_depth_mm * reach
        value = np.maximum(self.cavity.evaluate(x, y, z) * 50.0, dome - z)
        # The mediastinum (heart, great vessels, oesophagus) lies between the lungs, in front of the spine.
        mediastinum = np.minimum(self.mediastinum_half_mm - np.abs(x), self.mediastinum_back_mm - y)
        return np.maximum(value, mediastinum)


@dataclass(frozen=True)
class Ribs:
    """The lower ribs: bands just inside the muscle wall at regular levels, open at the front and spine."""

    cavity: Column
    lowest_mm: float
    period_mm: float
    count: int
    half_thickness_mm: float = 4.5
    ring: tuple[float, float] = (0.90, 0.985)
    medial_gap_mm: float = 40.0
    anterior_limit_mm: float = -40.0

    def bounds(self) -> Box:
        low, high = self.cavity.bounds()
        low[2] = self.lowest_mm - self.half_thickness_mm
        high[2] = self.lowest_mm + (self.count - 1) * self.period_mm + self.half_thickness_mm
        return low, high

    def evaluate(self, x, y, z):
        radius = np.sqrt(self.cavity.normalised_radius2(x, y))
        middle, half = 0.5 * (self.ring[0] + self.ring[1]), 0.5 * (self.ring[1] - self.ring[0])
        value = (np.abs(radius - middle) - half) * (1.0 / half)
        offset = np.mod(z - self.lowest_mm + 0.5 * self.period_mm, self.period_mm) - 0.5 * self.period_mm
        value = np.maximum(value, (np.abs(offset) - self.half_thickness_mm) * (1.0 / self.half_thickness_mm))
        top = self.lowest_mm + (self.count - 1) * self.period_mm
        value = np.maximum(value, np.maximum(self.lowest_mm - z, z - top) - self.half_thickness_mm)
        value = np.maximum(value, self.medial_gap_mm - np.abs(x))
        return np.maximum(value, self.anterior_limit_mm - y)


def draw_body(rng: np.random.Generator) -> Body:
    """Draw the body wall, skeleton, lungs, heart and bowel of one case."""
    cavity_x, cavity_anterior, cavity_posterior = (
        rng.uniform(112, 130),
        rng.uniform(85, 102),
        rng.uniform(84, 94),
    )
    placement = Placement(
        scale_x=cavity_x / NOMINAL_CAVITY_MM[0],
        scale_anterior=cavity_anterior / NOMINAL_CAVITY_MM[1],
        scale_posterior=cavity_posterior / NOMINAL_CAVITY_MM[2],
        scale_z=rng.uniform(0.96, 1.04),
    )
    wall = rng.uniform(8, 13)
    fat = rng.uniform(10, 28)
    cavity = Column((0.0, 0.0), cavity_x, cavity_anterior, cavity_posterior)
    structures: list[Painted] = [
        (
            Column(
                (0.0, 0.0),
                cavity_x + wall + 1.4 * fat,
                cavity_anterior + wall + 1.2 * fat,
                cavity_posterior + wall + 0.8 * fat,
            ),
            tissues.SUBCUTANEOUS_FAT,
        ),
        (
            Column((0.0, 0.0), cavity_x + wall, cavity_anterior + wall, cavity_posterior + wall),
            tissues.MUSCLE,
        ),
        (cavity, tissues.VISCERAL_FAT),
    ]
    structures += _bowel(rng, placement)
    # Lungs before muscles and skeleton: the paraspinal muscles and ribs lie outside the pleura.
    peak_right = rng.uniform(105, 120) * placement.scale_z
    structures.append(
        (
            Lungs(
                cavity,
                dome_centres=((-60.0 * placement.scale_x, 15.0), (60.0 * placement.scale_x, 15.0)),
                dome_peaks_mm=(peak_right, peak_right - rng.uniform(5, 15)),
            ),
            tissues.LUNG,
        )
    )
    structures += _muscles(placement)
    heart_centre = placement.point((-5.0, -55.0, 152.0))
    structures.append((Ellipsoid(tuple(heart_centre), (55.0, 38.0, 42.0)), tissues.HEART))
    structures.append(
        (
            Ribs(cavity, lowest_mm=rng.uniform(5, 15) * placement.scale_z, period_mm=25.0, count=5),
            tissues.CORTICAL_BONE,
        )
    )
    structures += _spine(rng, placement)
    structures += _pelvis(placement)
    return Body(cavity=cavity, placement=placement, structures=tuple(structures))


def _muscles(placement: Placement) -> list[Painted]:
    painted: list[Painted] = []
    for side in (-1.0, 1.0):
        centre = placement.point((33.0 * side, 72.0, 0.0))
        painted.append((Column((float(centre[0]), float(centre[1])), 26.0, 20.0, 20.0), tissues.MUSCLE))
        control = placement.points(
            [(22 * side, 28, 14), (30 * side, 24, -20), (42 * side, 16, -70), (50 * side, 8, -112)]
        )
        points, radii = smooth_path(control, [4.0, 11.0, 17.0, 19.0])
        painted.append((Tube(points, radii), tissues.MUSCLE))
    return painted


def _spine(rng: np.random.Generator, placement: Placement) -> list[Painted]:
    """Vertebral bodies with discs, neural arches around the canal, spinous and transverse processes."""
    body_x, body_y = (float(value) for value in placement.point((0.0, 30.0, 0.0))[:2])
    arch_y = body_y + 26.0
    period = 31.0 * placement.scale_z
    disc_phase = rng.uniform(0, period)
    gaps = {"gap_period_mm": period, "gap_phase_mm": disc_phase}
    return [
        (Column((body_x, body_y), 19.0, 17.0, 17.0), tissues.DISC),
        (Column((body_x, body_y), 19.0, 17.0, 17.0, gap_half_mm=3.0, **gaps), tissues.CORTICAL_BONE),
        (Column((body_x, body_y), 16.0, 14.0, 14.0, gap_half_mm=4.5, **gaps), tissues.CANCELLOUS_BONE),
        (Column((body_x, arch_y - 4.0), 42.0, 5.0, 5.0, gap_half_mm=10.0, **gaps), tissues.CORTICAL_BONE),
        (Column((body_x, arch_y), 15.0, 12.0, 12.0, gap_half_mm=5.0, **gaps), tissues.CORTICAL_BONE),
        (Column((body_x, arch_y + 22.0), 4.0, 12.0, 12.0, gap_half_mm=8.0, **gaps), tissues.CORTICAL_BONE),
        (Column((body_x, arch_y), 8.0, 7.0, 7.0), tissues.CSF),
    ]


def _pelvis(placement: Placement) -> list[Painted]:
    painted: list[Painted] = []
    for side in (-1.0, 1.0):
        # A wing of the ilium: a thin curved plate, approximated by half of an ellipsoid shell.
        wing = tuple(placement.point((95.0 * side, 35.0, -100.0)))
        painted.append((Ellipsoid(wing, (16.0, 45.0, 34.0)), tissues.MUSCLE))
        painted.append((Ellipsoid(wing, (16.0, 45.0, 34.0), shell=0.82), tissues.CORTICAL_BONE))
        head = tuple(placement.point((85.0 * side, -5.0, -152.0)))
        painted.append((Ellipsoid(head, (22.0, 22.0, 22.0)), tissues.CORTICAL_BONE))
        painted.append((Ellipsoid(head, (18.0, 18.0, 18.0)), tissues.CANCELLOUS_BONE))
    return painted


def _bowel(rng: np.random.Generator, placement: Placement) -> list[Painted]:
    """Colon with gas along its core, and small-bowel loops, some holding gas: unlabelled clutter."""
    control = [
        (-82, 5, -80),
        (-95, -5, -30),
        (-92, -35, 10),
        (-50, -78, 5),
        (0, -82, 0),
        (50, -75, 8),
        (92, -35, 30),
        (98, 0, -5),
        (88, 0, -60),
        (55, 10, -95),
        (15, 40, -100),
        (0, 55, -120),
        (0, 55, -150),
    ]
    jitter = rng.uniform(-5, 5, size=(len(control), 3))
    radii = np.array([18, 20, 20, 18, 17, 17, 18, 16, 16, 15, 15, 16, 14]) * rng.uniform(0.85, 1.15)
    points, tube_radii = smooth_path(placement.points(control) + jitter, radii, step_mm=20.0)
    harmonics = Harmonics.draw(rng, amplitude=(0.05, 0.12))
    painted: list[Painted] = [
        (Tube(points, tube_radii, harmonics, harmonic_scale_mm=25.0), tissues.BOWEL),
        (Tube(points, tuple(0.5 * radius for radius in tube_radii), harmonics), tissues.GAS),
    ]
    for _ in range(7):
        centre = placement.point((rng.uniform(-70, 70), rng.uniform(-80, 0), rng.uniform(-80, -5)))
        semi = tuple(float(value) for value in rng.uniform(18, 30, size=3))
        axes = tuple(tuple(float(value) for value in row) for row in random_rotation(rng, 90.0))
        loop = Ellipsoid(tuple(centre), semi, axes, harmonics=Harmonics.draw(rng, amplitude=(0.05, 0.12)))
        painted.append((loop, tissues.BOWEL))
        if rng.uniform() < 0.4:
            painted.append(
                (Ellipsoid(tuple(centre), tuple(0.4 * value for value in semi), axes), tissues.GAS)
            )
    return painted
