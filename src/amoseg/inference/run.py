"""``amoseg predict``: a file, a folder of files, or a DICOM series folder, through a trained model.

Cases of a folder are pipelined: while the network works on one case, a thread reads and preprocesses
nothing heavier than the next input and writes the previous result, so reading and writing overlap
the network's work. Every output is written atomically.

A label map is written as NIfTI, or, from a DICOM series, as a DICOM Segmentation of that series
(``output_type`` "dicom-seg", ``amoseg.io.dicom_seg``) in its place.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.atomic import write_atomic, write_json
from amoseg.data.reference import QualityReference
from amoseg.errors import AmosegError, AmosegWarning, InputError
from amoseg.inference.predictor import Prediction, PredictOptions, predict_image
from amoseg.io.image import Image
from amoseg.labels import Modality, parse_modality
from amoseg.model.loading import Model

#: How a label map can be written: NIfTI (``.nii.gz``, or the image file named), or a DICOM
#: Segmentation of the source series (``.dcm``; DICOM series inputs only).
OUTPUT_TYPES = ("nifti", "dicom-seg")


@dataclass(frozen=True)
class Job:
    """One input and where its outputs go.

    ``modality`` is None when nothing but the image itself can tell (``decide_modality``);
    ``modality_reason`` says where a declared one came from when the user should hear it.
    ``output_type`` is one of ``OUTPUT_TYPES``.
    """

    case_id: str
    source: Path
    target: Path
    modality: Modality | None
    modality_reason: str = ""
    output_type: str = "nifti"


#: What ``write_outputs`` writes beside a label map, as ``<case id>_<name>``.
_EXTRA_NAMES = ("statistics", "probabilities", "preview")


@dataclass(frozen=True)
class Extras:
    """Optional outputs beside each label map."""

    statistics: bool = False
    preview: bool = False
    probabilities: bool = False


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
        jobs = [Job(case_id, source, output, forced or tag, reason, output_type)]
        if seg:
            from amoseg.io.dicom_seg import check_seg_source

            check_seg_source(source)
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


def predict_jobs(
    jobs: list[Job],
    model: Model,
    options: PredictOptions,
    extras: Extras = Extras(),
    progress: bool = True,
    label_folder: Path | None = None,
) -> list[dict]:
    """Run every job; returns one record per case (outputs and seconds per stage).

    ``label_folder``: an output folder that gets a ``dataset.json`` naming the labels.
    """
    from amoseg.io.sitk_io import read_image
    from amoseg.progress import track

    rank, world_size = _rank_and_world_size()
    # Under torchrun each rank takes every world_size-th case; no communication is needed.
    jobs = jobs[rank::world_size]
    if label_folder is not None:
        _refuse_foreign_dataset_json(Path(label_folder))
    _check_writable(jobs)
    # One reference for the run: the model's, or the AMOS card's where it has none.
    reference = model.quality_reference() if extras.statistics or extras.preview else None
    records = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        next_image: Future | None = pool.submit(read_image, jobs[0].source) if jobs else None
        writing: list[Future] = []
        for index in track(range(len(jobs)), total=len(jobs), description="predicting", enabled=progress):
            image = next_image.result()
            next_image = pool.submit(read_image, jobs[index + 1].source) if index + 1 < len(jobs) else None
            modality, line = decide_modality(jobs[index], image)
            if line and progress:
                print(line)
            job = dataclasses.replace(jobs[index], modality=modality)
            prediction = predict_image(image, model, modality, options)
            unlearned = [organ for organ in model.keep or () if organ not in prediction.organs]
            if unlearned and progress:
                warnings.warn(_not_written_line(job, unlearned, model), AmosegWarning, stacklevel=2)
            writing.append(pool.submit(write_outputs, job, image, prediction, model, extras, reference))
            records.append(
                {
                    "case_id": job.case_id,
                    "modality": job.modality,
                    "output": str(job.target),
                    "seconds": prediction.seconds,
                }
            )
        for future in writing:
            future.result()
    if label_folder is not None and rank == 0:
        write_json(Path(label_folder) / "dataset.json", _label_description(model, options))
    return records


def _not_written_line(job: Job, organs: list[int], model: Model) -> str:
    """The warning for organs asked for (``organs``) that this input's modality did not teach."""
    from amoseg.labels import organ_name

    sources = {
        organ: [modality for modality, learned in (model.learned or {}).items() if organ in learned]
        for organ in organs
    }
    named = ", ".join(
        f"{organ_name(organ)} (learned from {' and '.join(sources[organ])} only)" for organ in organs
    )
    return (
        f"{job.case_id}: {named} not written: the model did not learn it from {job.modality}; "
        "`cross_modality` writes it"
    )


def _written_organs(model: Model, options: PredictOptions) -> dict[str, list[int]]:
    """The organs the outputs can hold, per input modality ("any" where the modality does not matter)."""
    wanted = set(model.keep) if model.keep is not None else set(model.labels)
    if model.learned is None or options.cross_modality:
        return {"any": [organ for organ in model.learned_anywhere() if organ in wanted]}
    return {
        modality: [organ for organ in organs if organ in wanted] for modality, organs in model.learned.items()
    }


def _rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes, from torchrun's environment (1 process otherwise)."""
    return int(os.environ.get("RANK", 0)), max(int(os.environ.get("WORLD_SIZE", 1)), 1)


def _check_writable(jobs: list[Job]) -> None:
    """Every output folder can be written to; temporaries a killed run left there are removed."""
    from amoseg.atomic import remove_stale_temporaries

    for folder in sorted({job.target.parent for job in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".amoseg-write-test{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            problem = (
                "exists and is not a folder" if folder.is_file() else f"cannot be written ({error.strerror})"
            )
            raise InputError(folder, f"output folder {problem}") from None
        # The folder may hold the user's own files: only this run's outputs' temporaries go.
        outputs = [
            name
            for job in jobs
            if job.target.parent == folder
            for name in (job.target.name, *(f"{job.case_id}_{extra}" for extra in _EXTRA_NAMES))
        ]
        remove_stale_temporaries(folder, [*outputs, "dataset"])


def _refuse_foreign_dataset_json(folder: Path) -> None:
    """The label description written beside the outputs must not replace a dataset's own dataset.json
    (a description of predictions names the plan that made them)."""
    from amoseg.data.layout import DATASET_JSON, read_dataset_json

    if (folder / DATASET_JSON).is_file() and "plan_id" not in read_dataset_json(folder):
        raise InputError(
            folder / DATASET_JSON,
            "belongs to a dataset, and predicting into this folder would replace it; choose another output",
        )


def write_outputs(
    job: Job,
    image: Image,
    prediction: Prediction,
    model: Model,
    extras: Extras,
    reference: QualityReference | None = None,
) -> None:
    """The label map (NIfTI, or a DICOM SEG of the source series), and beside it the extras asked for,
    each written atomically. ``reference``: what the statistics' and the preview's quality flags
    compare with (``Model.quality_reference``); needed when either is asked for."""
    if job.output_type == "dicom-seg":
        from amoseg.io.dicom_seg import write_dicom_seg

        write_dicom_seg(
            prediction.label,
            job.source,
            job.target,
            prediction.organs,
            model_id=model.plan.plan_id,
            parameters={
                "plan_id": model.plan.plan_id,
                "folds": ",".join(model.folds),
                "modality": str(job.modality),
            },
        )
    else:
        from amoseg.io.sitk_io import write_image

        write_image(prediction.label, job.target)
    stem = job.target.parent / job.case_id
    labels = {organ: model.labels[organ] for organ in prediction.organs}
    report = None
    if extras.statistics or extras.preview:
        from amoseg.inference.quality import organ_report

        report = organ_report(
            image, prediction.label, job.modality, labels, reference or model.quality_reference()
        )
    if extras.statistics:
        write_json(stem.with_name(f"{job.case_id}_statistics.json"), report)
    if extras.probabilities and prediction.probabilities is not None:
        write_atomic(
            stem.with_name(f"{job.case_id}_probabilities.npz"),
            lambda temporary: _save_probabilities(temporary, prediction),
        )
    if extras.preview:
        from amoseg.inference.quality import legend_flags
        from amoseg.plotting.preview import save_preview

        save_preview(
            image,
            prediction.label,
            job.modality,
            stem.with_name(f"{job.case_id}_preview.png"),
            title=job.case_id,
            flags=legend_flags(report, labels),
        )


def _save_probabilities(path: Path, prediction: Prediction) -> None:
    geometry = prediction.label.geometry
    with path.open("wb") as stream:
        np.savez_compressed(
            stream,
            probabilities=prediction.probabilities,
            spacing=np.array(geometry.spacing),
            origin=np.array(geometry.origin),
            direction=np.array(geometry.direction),
            axis_order=np.array("classes, x, y, z"),
        )


def _label_description(model: Model, options: PredictOptions) -> dict:
    return {
        "labels": {"background": 0, **{name: class_id for class_id, name in sorted(model.labels.items())}},
        "plan_id": model.plan.plan_id,
        "folds": list(model.folds),
        "written_organs": _written_organs(model, options),
        # Which organs were cut to their largest component, so the outputs say how they were made.
        "largest_component": [
            organ
            for organ in (model.largest_component if options.postprocess else ())
            if model.keep is None or organ in model.keep
        ],
        "file_ending": ".nii.gz",
    }
