"""Implicit shapes in the patient frame: ellipsoids, tubes and columns with smooth random perturbations.

Every shape is a function ``f(x, y, z)`` of patient-frame coordinates in mm (LPS axes: +x patient left,
+y posterior, +z superior), negative inside and positive outside, plus an axis-aligned bounding box
that contains every point where ``f < 0``. Coordinates may be broadcastable arrays of different shapes
(an axial grid gives ``x`` as ``(n, 1, 1)``), which keeps work on axis-aligned grids two-dimensional
for as long as possible. All arithmetic is float32; parameters are stored as Python floats because a
numpy float64 scalar would promote the arrays to float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

Box = tuple[np.ndarray, np.ndarray]


def _floats(values) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


def _set(instance, **values) -> None:
    """Normalise fields of a frozen dataclass to Python floats (see the module docstring)."""
    for name, value in values.items():
        object.__setattr__(instance, name, value)


def rotation(degrees_x: float = 0.0, degrees_y: float = 0.0, degrees_z: float = 0.0) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` (angles in degrees, right-handed about the patient axes)."""
    ax, ay, az = (math.radians(value) for value in (degrees_x, degrees_y, degrees_z))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    """A rotation by up to ``max_degrees`` about a uniformly random axis (Rodrigues' formula)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(-max_degrees, max_degrees))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


@dataclass(frozen=True)
class Harmonics:
    """A sum of a few sine waves ``sum_j a_j sin(k_j . u + phase_j)`` added to an implicit function.

    Low wave numbers (1.5 to 3.5 radians per unit of ``u``) bend a surface into a few smooth lobes, so
    two cases of the same organ differ in shape, not only in size.
    """

    amplitudes: tuple[float, ...] = ()
    wave_vectors: tuple[tuple[float, float, float], ...] = ()
    phases: tuple[float, ...] = ()

    @classmethod
    def draw(
        cls, rng: np.random.Generator, terms: int = 3, amplitude: tuple[float, float] = (0.03, 0.08)
    ) -> Harmonics:
        vectors = []
        for _ in range(terms):
            direction = rng.normal(size=3)
            direction *= rng.uniform(1.5, 3.5) / np.linalg.norm(direction)
            vectors.append(tuple(float(value) for value in direction))
        return cls(
            amplitudes=tuple(float(value) for value in rng.uniform(*amplitude, size=terms)),
            wave_vectors=tuple(vectors),
            phases=tuple(float(value) for value in rng.uniform(0, 2 * math.pi, size=terms)),
        )

    @property
    def bound(self) -> float:
        return float(sum(abs(value) for value in self.amplitudes))

    def __call__(self, u0: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> np.ndarray | float:
        total: np.ndarray | float = 0.0
        for amplitude, (k0, k1, k2), phase in zip(
            self.amplitudes, self.wave_vectors, self.phases, strict=True
        ):
            total = total + amplitude * np.sin(k0 * u0 + k1 * u1 + k2 * u2 + phase)
        return total


@dataclass(frozen=True)
class Warp:
    """A smooth displacement field ``p + sum_j a_j sin(k_j . p + phase_j)`` (mm) shared by all organs.

    Moving every organ with the same field bends the whole abdomen a little from case to case while
    keeping neighbours in contact, which independent per-organ jitter cannot do.
    """

    amplitudes_mm: tuple[tuple[float, float, float], ...] = ()
    wave_vectors: tuple[tuple[float, float, float], ...] = ()
    phases: tuple[float, ...] = ()

    @classmethod
    def draw(cls, rng: np.random.Generator, terms: int = 2, max_mm: float = 3.0) -> Warp:
        amplitudes, vectors = [], []
        for _ in range(terms):
            amplitudes.append(tuple(float(value) for value in rng.uniform(-max_mm, max_mm, size=3)))
            direction = rng.normal(size=3)
            direction *= 2 * math.pi / rng.uniform(150.0, 300.0) / np.linalg.norm(direction)
            vectors.append(tuple(float(value) for value in direction))
        phases = tuple(float(value) for value in rng.uniform(0, 2 * math.pi, size=terms))
        return cls(tuple(amplitudes), tuple(vectors), phases)

    @property
    def bound_mm(self) -> float:
        return float(sum(max(abs(value) for value in amplitude) for amplitude in self.amplitudes_mm))

    def __call__(self, x, y, z):
        out_x, out_y, out_z = x, y, z
        for (a0, a1, a2), (k0, k1, k2), phase in zip(
            self.amplitudes_mm, self.wave_vectors, self.phases, strict=True
        ):
            wave = np.sin(k0 * x + k1 * y + k2 * z + phase)
            out_x, out_y, out_z = out_x + a0 * wave, out_y + a1 * wave, out_z + a2 * wave
        return out_x, out_y, out_z


@dataclass(frozen=True)
class Ellipsoid:
    """A deformed ellipsoid.

    Attributes:
        centre: patient-frame centre, mm.
        semi_axes: semi-axes along the local axes, mm.
        axes: 3x3 matrix whose columns are the local axes in the patient frame.
        taper: thins the local y/z cross-section towards local +x (0 = none, 0.6 = 40 % left at the end).
        shear: moves the cross-section centre along local y and z in proportion to local x (units of
            the semi-axes), e.g. the liver's left lobe lying more anterior than its right lobe.
        bend: moves the local-x centre by ``bend * v**2`` where v is the local coordinate along
            ``bend_axis`` (1 or 2): a kidney's bean or the spleen's crescent.
        shell: when > 0 only the layer between ``shell`` and 1 (normalised radius) is inside.
        power: exponent of the norm; above 2 a superellipsoid, boxier, as a liver filling its corner.
        harmonics: smooth random lobes on the surface.
    """

    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    taper: float = 0.0
    shear: tuple[float, float] = (0.0, 0.0)
    bend: float = 0.0
    bend_axis: int = 2
    shell: float = 0.0
    power: float = 2.0
    harmonics: Harmonics = field(default_factory=Harmonics)

    def __post_init__(self) -> None:
        _set(
            self,
            centre=_floats(self.centre),
            semi_axes=_floats(self.semi_axes),
            axes=tuple(_floats(row) for row in np.asarray(self.axes, dtype=float)),
            taper=float(self.taper),
            shear=_floats(self.shear),
            bend=float(self.bend),
            shell=float(self.shell),
            power=float(self.power),
        )

    def bounds(self) -> Box:
        grow = 1.05 + self.harmonics.bound + abs(self.bend) + max(abs(value) for value in self.shear)
        axes = np.abs(np.array(self.axes, dtype=float))
        half = axes @ (np.array(self.semi_axes) * grow)
        centre = np.array(self.centre)
        return centre - half, centre + half

    def evaluate(self, x, y, z):
        dx, dy, dz = x - self.centre[0], y - self.centre[1], z - self.centre[2]
        (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = self.axes
        s0, s1, s2 = self.semi_axes
        u0 = (r00 * dx + r10 * dy + r20 * dz) * (1.0 / s0)
        u1 = (r01 * dx + r11 * dy + r21 * dz) * (1.0 / s1)
        u2 = (r02 * dx + r12 * dy + r22 * dz) * (1.0 / s2)
        if self.shear != (0.0, 0.0):
            u1 = u1 - self.shear[0] * u0
            u2 = u2 - self.shear[1] * u0
        if self.taper:
            thickness = 1.0 - self.taper * 0.5 * (np.clip(u0, -1.0, 1.0) + 1.0)
            u1, u2 = u1 / thickness, u2 / thickness
        if self.bend:
            u0 = u0 - self.bend * (u1 if self.bend_axis == 1 else u2) ** 2
        if self.power == 2.0:
            radius = np.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
        else:
            power = self.power
            radius = (np.abs(u0) ** power + np.abs(u1) ** power + np.abs(u2) ** power) ** (1.0 / power)
        value = radius - 1.0 if not self.shell else np.maximum(radius - 1.0, self.shell - radius)
        return value + self.harmonics(u0, u1, u2)


@dataclass(frozen=True)
class Tube:
    """A tube of varying radius around a polyline: vessels, gut, the pancreas.

    Attributes:
        points: polyline vertices in the patient frame, mm, shape (n, 3).
        radii: radius at each vertex, mm; linear along each segment.
        harmonics: smooth bulges, evaluated on coordinates in units of ``harmonic_scale_mm``.
    """

    points: tuple[tuple[float, float, float], ...]
    radii: tuple[float, ...]
    harmonics: Harmonics = field(default_factory=Harmonics)
    harmonic_scale_mm: float = 40.0

    def __post_init__(self) -> None:
        _set(
            self,
            points=tuple(_floats(point) for point in self.points),
            radii=_floats(self.radii),
            harmonic_scale_mm=float(self.harmonic_scale_mm),
        )

    def bounds(self) -> Box:
        points = np.array(self.points)
        reach = max(self.radii) * (1.05 + self.harmonics.bound)
        return points.min(axis=0) - reach, points.max(axis=0) + reach

    def parts(self, segments: int = 2) -> list[Tube]:
        """Short pieces of this tube whose union is the tube, each with a small bounding box.

        Painting a long tube piece by piece evaluates each segment only near itself instead of over
        the whole tube's box: the colon's box covers most of the abdomen.
        """
        count = len(self.points) - 1
        return [
            Tube(
                self.points[start : start + segments + 1],
                self.radii[start : start + segments + 1],
                self.harmonics,
                self.harmonic_scale_mm,
            )
            for start in range(0, count, segments)
        ]

    def evaluate(self, x, y, z):
        best = None
        for (p0, r0), (p1, r1) in zip(
            zip(self.points[:-1], self.radii[:-1], strict=True),
            zip(self.points[1:], self.radii[1:], strict=True),
            strict=True,
        ):
            d0, d1, d2 = (p1[i] - p0[i] for i in range(3))
            length2 = d0 * d0 + d1 * d1 + d2 * d2
            q0, q1, q2 = x - p0[0], y - p0[1], z - p0[2]
            t = np.clip((q0 * d0 + q1 * d1 + q2 * d2) * (1.0 / length2), 0.0, 1.0)
            e0, e1, e2 = q0 - t * d0, q1 - t * d1, q2 - t * d2
            radius = r0 + (r1 - r0) * t
            ratio = (e0 * e0 + e1 * e1 + e2 * e2) / (radius * radius)
            best = ratio if best is None else np.minimum(best, ratio)
        scale = 1.0 / self.harmonic_scale_mm
        return np.sqrt(best) - 1.0 + self.harmonics(x * scale, y * scale, z * scale)


@dataclass(frozen=True)
class Column:
    """An elliptic cylinder along patient z, optionally cut into segments (vertebrae between discs).

    Attributes:
        centre_xy: axis position, mm.
        semi_x: half-width, mm.
        semi_anterior, semi_posterior: half-depths towards -y and +y, mm (a body is flatter at the back).
        z_range: (bottom, top) in mm, or None for unbounded.
        gap_period_mm, gap_half_mm, gap_phase_mm: gaps of ``2 * gap_half_mm`` every ``gap_period_mm``,
            centred at ``gap_phase_mm + k * gap_period_mm``; 0 period means no gaps.
    """

    centre_xy: tuple[float, float]
    semi_x: float
    semi_anterior: float
    semi_posterior: float
    z_range: tuple[float, float] | None = None
    gap_period_mm: float = 0.0
    gap_half_mm: float = 0.0
    gap_phase_mm: float = 0.0

    def __post_init__(self) -> None:
        _set(
            self,
            centre_xy=_floats(self.centre_xy),
            semi_x=float(self.semi_x),
            semi_anterior=float(self.semi_anterior),
            semi_posterior=float(self.semi_posterior),
            z_range=None if self.z_range is None else _floats(self.z_range),
            gap_period_mm=float(self.gap_period_mm),
            gap_half_mm=float(self.gap_half_mm),
            gap_phase_mm=float(self.gap_phase_mm),
        )

    def bounds(self) -> Box:
        low_z, high_z = self.z_range or (-1e4, 1e4)
        cx, cy = self.centre_xy
        return (
            np.array([cx - self.semi_x, cy - self.semi_anterior, low_z]),
            np.array([cx + self.semi_x, cy + self.semi_posterior, high_z]),
        )

    def normalised_radius2(self, x, y):
        """Squared elliptic radius in the axial plane: 1 on the surface."""
        u0 = (x - self.centre_xy[0]) * (1.0 / self.semi_x)
        dy = y - self.centre_xy[1]
        u1 = dy * np.where(
            dy < 0, np.float32(1.0 / self.semi_anterior), np.float32(1.0 / self.semi_posterior)
        )
        return u0 * u0 + u1 * u1

    def evaluate(self, x, y, z):
        # Only the sign matters to a column's users, so the squared radius saves a square root.
        value = self.normalised_radius2(x, y) - 1.0
        if self.z_range is not None:
            middle, half = (
                0.5 * (self.z_range[0] + self.z_range[1]),
                0.5 * (self.z_range[1] - self.z_range[0]),
            )
            value = np.maximum(value, (np.abs(z - middle) - half) * (1.0 / half))
        if self.gap_period_mm:
            period = self.gap_period_mm
            offset = np.mod(z - self.gap_phase_mm + 0.5 * period, period) - 0.5 * period
            value = np.maximum(value, (self.gap_half_mm - np.abs(offset)) * (1.0 / self.gap_half_mm))
        return value


def smooth_path(
    points: np.ndarray, radii: np.ndarray, step_mm: float = 12.0
) -> tuple[tuple[tuple[float, float, float], ...], tuple[float, ...]]:
    """Densify control points into a Catmull-Rom polyline (about ``step_mm`` per segment), as floats.

    A polyline through a handful of control points has kinks; the spline rounds them at the cost of a
    few more segments per tube.
    """
    points = np.asarray(points, dtype=float)
    radii = np.asarray(radii, dtype=float)
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out_points, out_radii = [points[0]], [radii[0]]
    for index in range(len(points) - 1):
        p0, p1, p2, p3 = padded[index : index + 4]
        pieces = max(1, math.ceil(np.linalg.norm(p2 - p1) / step_mm))
        for piece in range(1, pieces + 1):
            t = piece / pieces
            point = 0.5 * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
            out_points.append(point)
            out_radii.append(radii[index] + (radii[index + 1] - radii[index]) * t)
    return (
        tuple(tuple(float(value) for value in point) for point in out_points),
        tuple(float(value) for value in out_radii),
    )
