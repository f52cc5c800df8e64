"""The 15 AMOS organs as deformed ellipsoids and tubes, in plausible anatomical relation.

Nominal positions are in the patient frame in mm (+x patient left, +y posterior, +z superior) for the
nominal body of ``body.NOMINAL_CAVITY_MM``; each case stretches them with its ``Placement``, moves
organ groups together (a kidney and its adrenal, the liver and gallbladder, the foregut) and gives each
organ its own size, tilt and smooth surface lobes. Sizes aim at the dataset card's median volumes
where those are plausible; docs/phantoms.md lists the values and the exceptions.
"""

from __future__ import annotations

import numpy as np

from amoseg.data.phantom.body import Placement
from amoseg.data.phantom.shapes import Ellipsoid, Harmonics, Tube, random_rotation, rotation, smooth_path
from amoseg.labels import ORGAN_BY_NAME

#: Painting order: a later organ wins where two overlap, so small organs and vessels come last and
#: carve their bed into larger neighbours (the gallbladder into the liver, the IVC through it).
PAINT_ORDER = (
    "liver",
    "spleen",
    "right_kidney",
    "left_kidney",
    "stomach",
    "pancreas",
    "duodenum",
    "gallbladder",
    "esophagus",
    "bladder",
    "prostate_uterus",
    "inferior_vena_cava",
    "aorta",
    "right_adrenal_gland",
    "left_adrenal_gland",
)

# Tubes: control points (x, y, z in mm) and radii (mm) along the path.
STOMACH = (
    [(45, 25, 92), (60, 5, 75), (62, -22, 55), (48, -48, 35), (18, -62, 24), (-8, -58, 22), (-22, -50, 24)],
    [22, 27, 27, 23, 16, 12, 9],
)
ESOPHAGUS = ([(-2, -12, 175), (2, -14, 130), (20, -14, 108), (34, 4, 94), (44, 16, 88)], [8, 8, 8, 8.5, 9])
DUODENUM = (
    [
        (-22, -50, 24),
        (-44, -40, 24),
        (-60, -24, 18),
        (-64, -14, 0),
        (-62, -12, -22),
        (-48, -20, -36),
        (-22, -28, -42),
        (4, -28, -42),
        (22, -24, -32),
        (28, -28, -14),
    ],
    [9, 10, 9.5, 9.5, 9.5, 9, 8.5, 8.5, 8.5, 8.5],
)
PANCREAS = (
    [(-42, -22, 0), (-26, -32, 5), (-5, -35, 8), (22, -30, 12), (50, -12, 18), (72, 12, 24), (84, 22, 30)],
    [16, 12.5, 11.5, 11.5, 10.5, 9, 8],
)
AORTA = ([(10, 10, 175), (13, 6, 110), (14, 2, 40), (13, 0, -20), (8, -2, -72)], [12.5, 12, 11.5, 10.5, 9.5])
IVC = (
    [(-8, 4, -72), (-20, 2, -40), (-24, 0, -5), (-26, -2, 40), (-22, -6, 90), (-16, -10, 125)],
    [9, 10, 10, 11, 11.5, 12],
)


def draw_organs(rng: np.random.Generator, placement: Placement, sex: str) -> tuple[tuple[object, int], ...]:
    """Draw the 15 organs of one case, in ``PAINT_ORDER``, as (shape, label id) pairs.

    Args:
        rng: the case's anatomy stream.
        placement: the case's body stretch.
        sex: "male" (prostate) or "female" (uterus).
    """

    def shift(sd_mm: float) -> np.ndarray:
        return np.clip(rng.normal(0, sd_mm, size=3), -2 * sd_mm, 2 * sd_mm)

    def ellipsoid(centre, semi, axes, offset, scale=(0.9, 1.1), tilt=6.0, **shape) -> Ellipsoid:
        return Ellipsoid(
            centre=tuple(placement.point(centre) + offset),
            semi_axes=tuple(np.array(semi) * rng.uniform(*scale, size=3)),
            axes=random_rotation(rng, tilt) @ axes,
            harmonics=Harmonics.draw(rng),
            **shape,
        )

    def tube(path, offset, radius_scale=(0.9, 1.1), jitter_mm=2.0, harmonic=(0.04, 0.09)) -> Tube:
        control, radii = path
        points = (
            placement.points(control) + offset + rng.uniform(-jitter_mm, jitter_mm, size=(len(control), 3))
        )
        radii = np.array(radii) * rng.uniform(*radius_scale) * rng.uniform(0.94, 1.06, size=len(radii))
        dense_points, dense_radii = smooth_path(points, radii)
        return Tube(dense_points, dense_radii, Harmonics.draw(rng, amplitude=harmonic))

    liver_group, foregut, pelvis = shift(4.0), shift(4.0), shift(4.0)
    kidney_shift = {"right": shift(4.0), "left": shift(4.0)}
    shapes = {
        # Wedge: thick right lobe, thin left lobe reaching across the midline in front of the stomach.
        "liver": ellipsoid(
            (-40, -5, 50),
            (88, 88, 70),
            np.eye(3),
            liver_group,
            scale=(0.92, 1.08),
            taper=0.45,
            shear=(-0.25, 0.2),
            power=2.6,
        ),
        # Crescent along the left posterolateral wall, hollow side facing the stomach.
        "spleen": ellipsoid(
            (84, 36, 68), (24, 40, 50), rotation(degrees_z=43), shift(4.0), bend=-0.2, bend_axis=1, power=2.2
        ),
        "stomach": tube(STOMACH, foregut, radius_scale=(0.85, 1.1)),
        "pancreas": tube(PANCREAS, foregut, radius_scale=(0.85, 1.1)),
        "duodenum": tube(DUODENUM, foregut),
        "gallbladder": ellipsoid(
            (-58, -58, 12), (14, 14, 30), rotation(degrees_x=-37), liver_group, scale=(0.8, 1.15)
        ),
        "esophagus": tube(ESOPHAGUS, foregut * np.array([1.0, 1.0, 0.5]), jitter_mm=1.5),
        "bladder": ellipsoid((0, -45, -95), (32, 27, 23), np.eye(3), pelvis, scale=(0.85, 1.15)),
        "inferior_vena_cava": tube(IVC, shift(1.5), jitter_mm=1.0),
        "aorta": tube(AORTA, shift(1.5), jitter_mm=1.0),
    }
    for side, sign in (("right", -1.0), ("left", 1.0)):
        # Long axis tilted so the upper pole lies medial and posterior; bean-shaped with the hilum medial.
        shapes[f"{side}_kidney"] = ellipsoid(
            (72 * sign, 45, -20 if side == "right" else -5),
            (27, 23, 55),
            rotation(degrees_x=-10, degrees_y=-12 * sign, degrees_z=25 * sign),
            kidney_shift[side],
            bend=0.25 * -sign,
            bend_axis=2,
        )
        # A thin plate capping the upper pole, medial; the right one behind the IVC.
        shapes[f"{side}_adrenal_gland"] = ellipsoid(
            (48 * sign, 40 if side == "right" else 36, 40),
            (4.5, 12, 14),
            rotation(degrees_z=30 * sign),
            kidney_shift[side],
            scale=(0.85, 1.15),
            tilt=8.0,
        )
    if sex == "male":
        shapes["prostate_uterus"] = ellipsoid((0, -30, -126), (22, 17, 18), np.eye(3), pelvis)
    else:
        # Anteverted: the fundus leans forward over the bladder.
        shapes["prostate_uterus"] = ellipsoid(
            (0, -8, -74), (21, 16, 30), rotation(degrees_x=40), pelvis, scale=(0.85, 1.15)
        )
    return tuple((shapes[name], ORGAN_BY_NAME[name].id) for name in PAINT_ORDER)
