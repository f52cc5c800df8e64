"""NSD tolerances: one value for every organ, or a named per-organ table."""

from __future__ import annotations

from collections.abc import Sequence

from amoseg.labels import ORGAN_BY_ID, ORGAN_BY_NAME

#: Default NSD tolerance in mm, for every organ.
DEFAULT_TOLERANCE_MM = 1.0
#: Largest tolerance accepted. Challenges use 1-5 mm; a band wider than the abdomen's organs (the
#: liver spans about 200 mm) scores every surface as matched, and its distance maps grow with it.
MAX_TOLERANCE_MM = 100.0

#: Per-organ tolerance tables in mm, by organ name. ``flare22``: the FLARE22 challenge's values, with
#: bladder and prostate/uterus (not FLARE organs) at 3 mm.
TOLERANCE_PROFILES: dict[str, dict[str, float]] = {
    "flare22": {
        "liver": 5.0,
        "pancreas": 5.0,
        "stomach": 5.0,
        "right_kidney": 3.0,
        "left_kidney": 3.0,
        "spleen": 3.0,
        "esophagus": 3.0,
        "duodenum": 3.0,
        "aorta": 2.0,
        "inferior_vena_cava": 2.0,
        "right_adrenal_gland": 2.0,
        "left_adrenal_gland": 2.0,
        "gallbladder": 2.0,
        "bladder": 3.0,
        "prostate_uterus": 3.0,
    },
}


def tolerances_for(
    labels: Sequence[int], tolerance_mm: float | None = None, profile: str | None = None
) -> dict[int, float]:
    """The NSD tolerance in mm for each label id.

    Args:
        labels: AMOS label ids.
        tolerance_mm: one tolerance for every organ (default ``DEFAULT_TOLERANCE_MM``); ignored when
            ``profile`` is given.
        profile: name of a table in ``TOLERANCE_PROFILES``.

    Raises:
        ValueError: unknown profile, or a tolerance outside (0, ``MAX_TOLERANCE_MM``] (NaN included).
    """
    if profile is not None:
        if profile not in TOLERANCE_PROFILES:
            raise ValueError(f"unknown tolerance profile {profile!r}; known: {', '.join(TOLERANCE_PROFILES)}")
        table = TOLERANCE_PROFILES[profile]
        return {int(label): table[ORGAN_BY_ID[label].name] for label in labels}
    value = DEFAULT_TOLERANCE_MM if tolerance_mm is None else float(tolerance_mm)
    if not 0 < value <= MAX_TOLERANCE_MM:
        raise ValueError(
            f"NSD tolerance must be more than 0 and at most {MAX_TOLERANCE_MM:g} mm, got {tolerance_mm:g} mm"
        )
    return {int(label): value for label in labels}


assert all(set(table) == set(ORGAN_BY_NAME) for table in TOLERANCE_PROFILES.values())
