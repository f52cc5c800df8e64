"""What ``amoseg predict`` is asked to do: each input paired with where its label map goes, and its
modality (declared, or left to the image).

Inputs are a file, a folder of image files, or a DICOM series folder; an output that would overwrite
an input is refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from amoseg.errors import AmosegError, InputError
from amoseg.io.image import Image
from amoseg.labels import Modality, parse_modality

if TYPE_CHECKING:
    from amoseg.io.dicom_seg import SegSource

#: How a label map can be written: NIfTI (``.nii.gz``, or the image file named), or a DICOM
#: Segmentation of the source series (``.dcm``; DICOM series inputs only).
OUTPUT_TYPES = ("nifti", "dicom-seg")


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go.

    ``modality`` is None when nothing but the image itself can tell (``decide_modality``);
    ``modality_reason`` says where a declared one came from when the user should hear it.
    ``output_type`` is one of ``OUTPUT_TYPES``; for "dicom-seg", ``seg_source`` holds the series'
    slice headers, read and checked when the job was planned, so the writer reads them no second time.
    """

    case_id: str
    source: Path
    target: Path
    modality: Modality | None
    modality_reason: str = ""
    output_type: str = "nifti"
    seg_source: SegSource | None = None


def plan_jobs(
    source: Path, target: Path, modality: str | None = None, output_type: str = "nifti"
) -> list[Job]:
    """Pair inputs with outputs.

    A file goes to ``target`` when that names an image file, else into the ``target`` folder under its
    case id. A folder of image files goes into the ``target`` folder, one output per case, named by
    case id (``_0000`` channel suffixes dropped). A folder without image files is read as one DICOM
    series. The modality is, in order: ``modality``; the case's entry in a dataset.json beside or
    above the inputs; AMOS's id rule for ``amos_NNNN`` names; a DICOM series' Modality tag; else it
    is left to the image (None here).

    With ``output_type`` "dicom-seg" the input must be a DICOM series folder, and its SEG goes to
    ``target`` when that ends in ``.dcm``, else into the ``target`` folder as ``<case id>.dcm``.

    Raises:
        AmosegError: an unknown ``output_type``, or "dicom-seg" without highdicom installed.
        InputError: the input does not exist, a folder input with a file output, two inputs for one
            case id, or an output that would overwrite an input (paths and links resolved); for
            "dicom-seg", an input that is not a DICOM series a SEG can reference, or an image file
            name as the output.
    """
    from amoseg.data.naming import case_ids_in_folder
    from amoseg.io.sitk_io import has_image_suffix, strip_image_suffix

    if output_type not in OUTPUT_TYPES:
        raise AmosegError(
            f"`output_type`: unknown output type {output_type!r}; choose {' or '.join(OUTPUT_TYPES)}"
        )
    seg = output_type == "dicom-seg"
    if seg:  # first: the missing package is the one thing to fix whatever the input
        from amoseg.io.dicom_seg import require_highdicom

        require_highdicom()
    source, target = Path(source), Path(target)
    if not source.exists():
        raise InputError(source, "input not found")
    forced = _modality(modality)
    if seg and (source.is_file() or case_ids_in_folder(source)):
        kind = "an image file" if source.is_file() else "a folder of image files"
        raise InputError(
            source,
            f"is {kind}; `output_type` dicom-seg needs a DICOM series folder (a SEG references the "
            "series it segments)",
        )
    if source.is_file():
        case_id = _without_channel(strip_image_suffix(source.name))
        output = target if has_image_suffix(target) else target / f"{case_id}.nii.gz"
        jobs = [Job(case_id, source, output, forced or _declarations(source.parent)(case_id))]
    elif cases := case_ids_in_folder(source):
        if has_image_suffix(target):
            raise InputError(target, "a folder of inputs needs an output folder, not a file name")
        _refuse_duplicate_cases(source, cases)
        declared = (lambda _: forced) if forced else _declarations(source)
        jobs = [
            Job(case_id, files[0], target / f"{case_id}.nii.gz", declared(case_id))
            for case_id, files in cases.items()
        ]
    else:  # a DICOM series folder
        from amoseg.io.sitk_io import dicom_modality

        case_id = source.name
        if seg:
            output = _seg_output(target, case_id)
        else:
            output = target if has_image_suffix(target) else target / f"{case_id}.nii.gz"
        tag = None if forced else dicom_modality(source)
        reason = f"the DICOM Modality tag says {tag}" if tag else ""
        seg_source = None
        if seg:  # every slice checked before any work, not only when the SEG is written
            from amoseg.io.dicom_seg import read_seg_source

            seg_source = read_seg_source(source)
        jobs = [Job(case_id, source, output, forced or tag, reason, output_type, seg_source)]
    _refuse_overwriting_inputs(source, jobs)
    return jobs


def _seg_output(target: Path, case_id: str) -> Path:
    """Where a series' SEG goes: ``target`` itself when it names a ``.dcm`` file, else into it."""
    from amoseg.io.dicom_seg import SEG_SUFFIX
    from amoseg.io.sitk_io import has_image_suffix

    if target.name.lower().endswith(SEG_SUFFIX):
        return target
    if has_image_suffix(target):
        raise InputError(
            target, f"a DICOM SEG is written to a {SEG_SUFFIX} file or into a folder, not to an image file"
        )
    return target / f"{case_id}{SEG_SUFFIX}"


def _refuse_duplicate_cases(folder: Path, cases: dict[str, list[Path]]) -> None:
    """One case id, one input: ``amos_0001.nii`` beside ``amos_0001.nii.gz`` would give one output, and
    a second channel (``_0001``) would be ignored, as AMOS tasks take one modality per input."""
    from amoseg.data.naming import describe_same_name, same_name_files

    for name, paths in same_name_files(folder).items():
        raise InputError(folder, describe_same_name(name, paths))
    for case_id, files in cases.items():
        if len(files) > 1:
            names = ", ".join(path.name for path in files)
            raise InputError(
                folder, f"case {case_id} has {len(files)} channels ({names}); amoseg takes one image per case"
            )


def _refuse_overwriting_inputs(source: Path, jobs: list[Job]) -> None:
    """Inputs are never modified: no output may be an input, nor lie inside an input folder."""
    inputs = {job.source.resolve() for job in jobs}
    folder = source.resolve() if source.is_dir() else None
    for job in jobs:
        written = job.target.resolve()
        if written in inputs:
            raise InputError(
                job.target, f"output would overwrite the input {job.source}; choose another output"
            )
        if folder is not None and written.is_relative_to(folder):
            raise InputError(
                job.target, f"output would be written inside the input folder {source}; choose another output"
            )


def _without_channel(case_id: str) -> str:
    from amoseg.data.naming import split_channels

    return split_channels([case_id])[case_id][0]


def _modality(modality: str | None) -> Modality | None:
    if modality is None:
        return None
    try:
        return parse_modality(modality)
    except ValueError as error:
        raise AmosegError(f"`modality`: {error}") from None


def _declarations(folder: Path) -> Callable[[str], Modality | None]:
    """Case id -> the modality a dataset.json beside or above the inputs declares for it, else AMOS's
    id rule, else None. The dataset.json is read once for all the cases of a run."""
    from amoseg.data.layout import discover, find_dataset_json, resolve_modality

    found = find_dataset_json(folder)
    try:
        dataset = discover(found.parent) if found is not None else None
    except InputError:
        # An unreadable dataset.json only loses its declarations: the id rule and the image decide.
        dataset = None
    if dataset is None:
        return lambda case_id: resolve_modality(case_id, None)
    listed = {case.case_id: case.modality for case in dataset.cases}
    return lambda case_id: listed.get(case_id) or resolve_modality(case_id, dataset.modality)


def decide_modality(job: Job, image: Image) -> tuple[Modality, str]:
    """The job's modality, from the image when nothing declared it; and the line to tell the user
    (empty when the modality was given or declared by a dataset or an AMOS name).

    Raises:
        InputError: nothing declares the modality and the intensities do not decide it.
    """
    from amoseg.data.modality import modality_from_intensities

    if job.modality is not None:
        line = f"{job.case_id}: {job.modality}, because {job.modality_reason}" if job.modality_reason else ""
        return job.modality, line
    decision = modality_from_intensities(image.array)
    if decision.modality is None:
        raise InputError(
            job.source,
            f"cannot tell CT from MR: the name is not an AMOS id, no dataset.json declares it, and the "
            f"{decision.reason}; pass `modality` CT or MR",
        )
    return decision.modality, f"{job.case_id}: {decision.modality}, because its {decision.reason}"
