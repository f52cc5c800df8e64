"""Synthetic abdominal phantoms: CT and MR cases with the 15 AMOS organs, and AMOS-layout datasets.

``generate_case`` builds one case in memory (an ``Image`` and a ``LabelMap`` on the same grid);
``write_phantom_dataset`` writes a whole dataset. The anatomy is built in a patient frame aligned with
world LPS and sampled through each case's geometry, so oblique and flipped grids keep every organ in
its true place in the world. See docs/phantoms.md.

Modules: ``shapes`` (implicit shapes), ``body`` and ``organs`` (the anatomy), ``anatomy`` (painting it
on a grid), ``grid`` (case geometry), ``appearance`` (CT and MR intensities), ``case`` and ``writer``.
"""

from amoseg.data.phantom.case import generate_case
from amoseg.data.phantom.writer import write_phantom_dataset

__all__ = ["generate_case", "write_phantom_dataset"]
