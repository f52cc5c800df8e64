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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amoseg.atomic import write_atomic, write_json
from amoseg.data.reference import QualityReference
from amoseg.errors import AmosegWarning, InputError
from amoseg.inference.jobs import Job, decide_modality
from amoseg.inference.predictor import Prediction, PredictOptions, predict_image
from amoseg.io.image import Image
from amoseg.model.loading import Model

#: What ``write_outputs`` writes beside a label map, as ``<case id>_<name>``.
_EXTRA_NAMES = ("statistics", "probabilities", "preview")


@dataclass(frozen=True)
class Extras:
    """Optional outputs beside each label map."""

    statistics: bool = False
    preview: bool = False
    probabilities: bool = False


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
    compare with (``Model.quality_reference``); required when either is asked for."""
    if job.output_type == "dicom-seg":
        from amoseg.io.dicom_seg import write_dicom_seg

        write_dicom_seg(
            prediction.label,
            job.seg_source or job.source,
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

        if reference is None:
            raise ValueError("statistics and previews need the model's quality reference")
        report = organ_report(image, prediction.label, job.modality, labels, reference)
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
