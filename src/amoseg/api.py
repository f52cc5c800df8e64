"""Python API: one public function per stage. The CLI is a thin layer over these.

Every function takes explicit paths and keyword arguments, imports its stage lazily, and raises
``amoseg.errors.AmosegError`` (one line, naming the file and the problem) for bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from amoseg.labels import Modality

if TYPE_CHECKING:
    # Types only: each function imports its stage when it runs.
    from amoseg.data.check import CheckReport
    from amoseg.evaluation import Evaluation
    from amoseg.inference.predictor import Prediction, PredictOptions
    from amoseg.io.foreign import InMemoryImage
    from amoseg.model.loading import Model
    from amoseg.planning import Plan
    from amoseg.preprocessing import PreprocessReport
    from amoseg.training.trainer import TrainResult


def check(
    *, dataset: str | Path, output: str | Path = "check.json", workers: int | None = None, quiet: bool = False
) -> CheckReport:
    """Validate a dataset folder; print a table of problems and write the report to ``output`` (JSON).

    The dataset folder itself is never written to.

    Returns:
        the ``CheckReport``; ``report.ok`` is False when any error was found.
    """
    from amoseg.data.check import check_dataset, print_report, write_report
    from amoseg.data.layout import require_outside

    dataset = Path(dataset)
    require_outside(dataset, output, "the check report")
    report = check_dataset(dataset, workers=workers, progress=not quiet)
    write_report(report, Path(output))
    if not quiet:
        print_report(report)
    return report


def phantom(
    *,
    output: str | Path,
    n_ct: int = 8,
    n_mr: int = 4,
    seed: int = 0,
    test_fraction: float = 0.25,
    workers: int | None = None,
    annotated_labels: str | list[int] | tuple[int, ...] | None = None,
    quiet: bool = False,
) -> Path:
    """Write a synthetic AMOS-layout dataset of ``n_ct`` CT and ``n_mr`` MR abdomens; returns its folder.

    ``annotated_labels`` ("1,2,3,6", names, or ids) makes it partially labelled: the label maps keep
    only those organs and dataset.json declares them, as BTCV's and CHAOS's do.
    """
    from amoseg.data.phantom import write_phantom_dataset
    from amoseg.errors import AmosegError
    from amoseg.labels import parse_label_ids

    if isinstance(annotated_labels, str):
        try:
            annotated_labels = parse_label_ids(annotated_labels)
        except ValueError as error:
            raise AmosegError(f"annotated labels: {error}") from None
    return write_phantom_dataset(
        Path(output),
        n_ct=n_ct,
        n_mr=n_mr,
        seed=seed,
        test_fraction=test_fraction,
        workers=workers,
        progress=not quiet,
        annotated_labels=annotated_labels,
    )


def stats(
    *,
    dataset: str | Path | Sequence[str | Path],
    output: str | Path,
    strict: bool = False,
    plots: bool = True,
    workers: int | None = None,
    quiet: bool = False,
) -> dict:
    """Compute the dataset card (``stats.json``, ``stats.md``, CSVs, plots) and ``fingerprint.json``.

    ``dataset`` is a dataset folder, or several planned together for one model: one card and one
    fingerprint over all their cases.

    Returns:
        the content of ``stats.json``.
    """
    from amoseg.data.describe import describe_dataset

    card = describe_dataset(dataset, output, workers=workers, strict=strict, progress=not quiet, plots=plots)
    if not quiet:
        print(f"Dataset card for {card['meta']['cases']} cases written to {Path(output) / 'stats.md'}")
    return card


def evaluate(
    *,
    pred: str | Path,
    ref: str | Path,
    output: str | Path,
    labels: str | list[int] | tuple[int, ...] | None = None,
    ignore_mask: str | Path | None = None,
    tolerance_mm: float | None = None,
    tolerance_profile: str | None = None,
    allow_missing: bool = False,
    workers: int | None = None,
    quiet: bool = False,
) -> Evaluation:
    """Score predictions against references (DSC and NSD) and write the outputs into ``output``.

    Writes ``per_case.csv``, ``summary.json``, ``summary.md`` and ``boxplot.png``; on any error nothing
    is written. ``pred`` and ``ref`` are two folders (cases matched by id) or two files; ``labels`` defaults to the
    reference dataset.json's ``annotated_labels``; the NSD tolerance is 1 mm unless ``tolerance_mm`` or
    ``tolerance_profile`` ("flare22") says otherwise. Definitions: docs/metrics.md.

    Returns:
        the ``amoseg.evaluation.Evaluation`` (per-case scores and CT / MR / all summaries).
    """
    from amoseg.evaluation import evaluate_folder, write_outputs
    from amoseg.evaluation.outputs import check_output_folder, print_summary

    check_output_folder(Path(output))
    evaluation = evaluate_folder(
        pred,
        ref,
        labels=labels,
        tolerance_mm=tolerance_mm,
        tolerance_profile=tolerance_profile,
        ignore_mask=ignore_mask,
        allow_missing=allow_missing,
        workers=workers,
        progress=not quiet,
    )
    write_outputs(evaluation, output)
    if not quiet:
        print_summary(evaluation, Path(output))
    return evaluation


def plan(
    *,
    dataset: str | Path | Sequence[str | Path],
    preset: str = "fullres",
    output: str | Path = "plans.json",
    stats: str | Path | None = None,
    gpu_memory_gb: float | None = None,
    cpu_step_seconds: float | None = None,
    measure: bool = True,
    workers: int | None = None,
    quiet: bool = False,
) -> Plan:
    """Plan preprocessing and the network for a dataset and write ``plans.json`` to ``output``.

    ``dataset`` is a dataset folder, or several for one model (AMOS with BTCV, say: each keeps its own
    ``annotated_labels``, and case ids and dataset names must be unique across them); preprocess each
    into the same cache, then train on it (docs/datasets.md). The fingerprint is read from
    ``stats/fingerprint.json`` (``amoseg stats`` of the same datasets; default folder: ``stats``
    beside ``output``) and computed there when missing. The cpu preset is sized by training steps
    measured on this machine (a few seconds), unless ``measure`` is False: then by the compute model's
    reference speed, the same plan on every machine. Presets and budgets: docs/planning.md.

    Returns:
        the ``amoseg.planning.Plan``; its ``plan_id`` names the preprocessing cache folder.
    """
    from amoseg.planning.dataset import plan_dataset, plans_path

    measure_step = None
    if measure and preset == "cpu":
        from amoseg.training.calibrate import measure_training_step

        def measure_step(candidate: Plan):
            if not quiet:
                patch = " x ".join(str(value) for value in candidate.patch_size)
                print(f"Measuring a training step of patch {patch} on this machine")
            return measure_training_step(candidate)

    def compute_fingerprint(roots: list[Path], stats_folder: Path) -> None:
        from amoseg.data.describe import describe_dataset

        if not quiet:
            print(f"No usable fingerprint in {stats_folder}; computing it (amoseg stats) first")
        describe_dataset(roots, stats_folder, workers=workers, progress=not quiet, plots=False)

    result = plan_dataset(
        dataset,
        preset=preset,
        output=output,
        stats=stats,
        gpu_memory_gb=gpu_memory_gb,
        cpu_step_seconds=cpu_step_seconds,
        compute_fingerprint=compute_fingerprint,
        measure=measure_step,
    )
    if not quiet:
        if result.measured_step is not None:
            budget = result.measured_step.describe()
        elif result.device == "cpu":
            budget = f"about {result.estimated_step_s} s per step on the reference 2 CPU cores (not measured)"
        else:
            budget = f"about {result.estimated_memory_gb} of {result.memory_budget_gb} GB"
        spacing = " x ".join(f"{value:.3g}" for value in result.target_spacing_mm)
        patch = " x ".join(str(value) for value in result.patch_size)
        print(
            f"Plan {result.plan_id}: spacing {spacing} mm, patch {patch}, batch {result.batch_size}, "
            f"{result.network.num_stages} stages, {budget}; written to {plans_path(output)}"
        )
    return result


def preprocess(
    *,
    dataset: str | Path,
    plan: str | Path | Plan,
    output: str | Path,
    overwrite: bool = False,
    workers: int | None = None,
    quiet: bool = False,
) -> PreprocessReport:
    """Preprocess a dataset's labelled train and validation cases for a plan into ``output/<plan id>/``.

    ``plan`` is a plans.json path or an ``amoseg.planning.Plan``. Cases already there are skipped
    unless ``overwrite``. Every failing case is reported in one line; the others are finished first.

    Returns:
        the ``amoseg.preprocessing.PreprocessReport``.

    Raises:
        AmosegError: a case failed (after all others ran), or the input is unusable.
    """
    from amoseg.errors import AmosegError
    from amoseg.planning import Plan
    from amoseg.preprocessing import preprocess_dataset

    chosen = plan if isinstance(plan, Plan) else Plan.load(plan)
    report = preprocess_dataset(
        dataset, chosen, output, overwrite=overwrite, workers=workers, progress=not quiet
    )
    failed = report.with_status("failed")
    if failed:
        raise AmosegError(
            f"{len(failed)} of {len(report.outcomes)} cases failed (listed above); the others are in "
            f"{report.folder}, a rerun retries only what is missing"
        )
    if not quiet:
        done, skipped = len(report.with_status("done")), len(report.with_status("skipped"))
        print(f"Preprocessed {done} cases ({skipped} already there) into {report.folder}")
    return report


def train(
    *,
    preprocessed: str | Path,
    plan: str | Path | Plan,
    output: str | Path,
    fold: str | int = 0,
    epochs: int | None = None,
    time_budget: str | float | None = None,
    device: str = "auto",
    resume: bool = False,
    residual: bool = False,
    compile: bool = False,
    augment: bool | None = None,
    mirror_axes: str | tuple[int, ...] | None = None,
    amp: bool = True,
    seed: int = 0,
    iterations_per_epoch: int | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train one fold on a preprocessing cache; outputs go to ``output/fold_<fold>/``.

    ``plan`` is a plans.json path or an ``amoseg.planning.Plan``; its cache is ``preprocessed/<plan id>``.
    ``fold`` is 0..4 (five folds stratified by dataset and modality, ``output/splits.json``) or "all".
    ``time_budget`` ("10m", "90s", or seconds) stops training there and still writes the final
    checkpoint. ``augment`` switches nnU-Net's data augmentation on or off (None: on, except for the
    cpu preset). ``mirror_axes`` ("1,2", "0,1,2", "none" or a tuple; default none) are the axes the
    augmentation mirrors, and test-time augmentation with them. ``resume`` continues from
    ``checkpoint_latest.pt`` with the stored settings (only the epochs, time budget, device, compile
    and threads given here change). Under ``torchrun`` every rank
    calls this and rank 0 writes. Settings and outputs: docs/training.md.

    Returns:
        the ``amoseg.training.trainer.TrainResult`` (mean validation pseudo-Dice, epochs, time).
    """
    from amoseg.planning import Plan
    from amoseg.training.config import TrainConfig, parse_duration, parse_mirror_axes
    from amoseg.training.log import print_result
    from amoseg.training.run import RESUMABLE_CHANGES
    from amoseg.training.run import train as train_fold

    chosen = plan if isinstance(plan, Plan) else Plan.load(plan)
    settings = {
        "fold": str(fold),
        "seed": seed,
        "epochs": epochs,
        "time_budget_s": parse_duration(time_budget),
        "device": device,
        "residual": residual,
        "compile": compile,
        "augment": augment,
        "mirror_axes": parse_mirror_axes(mirror_axes),
        "amp": amp,
        "iterations_per_epoch": iterations_per_epoch,
        "batch_size": batch_size,
        "threads": threads,
    }
    config = TrainConfig.for_plan(chosen, **settings)
    result = train_fold(
        preprocessed,
        chosen,
        output,
        config,
        resume=resume,
        resume_changes={
            key: value for key, value in settings.items() if key in RESUMABLE_CHANGES and value is not None
        },
        progress=not quiet,
    )
    if not quiet:
        print_result(result, config.fold)
    return result


def predict(
    *,
    input: str | Path,
    output: str | Path,
    model: str | Path | Model,
    folds: str | None = None,
    tta: bool = True,
    step: float = 0.5,
    device: str = "cpu",
    modality: str | None = None,
    probabilities: bool = False,
    statistics: bool = False,
    preview: bool = False,
    bf16: bool = False,
    organs: str | None = None,
    postprocess: bool = True,
    cross_modality: bool = False,
    output_type: str = "nifti",
    quiet: bool = False,
) -> list[dict]:
    """Segment a file, a folder of files or a DICOM series folder, and write the label maps.

    As ``nnUNetv2_predict``: files in, files out; ``predict_image`` segments an image held in memory.
    Only organs the model learned are written (its ``learned`` organs per modality; the others'
    probabilities go to background): by default those learned from the input's own modality,
    with ``cross_modality`` also those learned from the other one only.

    Args:
        input: an image file, a folder of image files (one case each), or a DICOM series folder.
        output: a file (one input) or a folder; label maps keep the input's exact geometry.
        model: a trained run or fold folder, or an ``amoseg.model.loading.Model``.
        folds: "0,1,2", "all" or None (every trained fold) of a run folder; probabilities are averaged.
        tta: mirroring test-time augmentation, along the axes the model was trained to be mirrored along.
        step: window step as a fraction of the patch, in (0, 1].
        modality: "CT" or "MR" for every input; default: a dataset.json beside or above the inputs,
            AMOS's id rule, a DICOM Modality tag, else the intensities.
        probabilities, statistics, preview: also write the softmax (.npz), organ volumes and
            intensities (JSON), a PNG of three planes, beside each label map.
        bf16: run the network under bfloat16 autocast.
        organs: "liver,spleen" or ids: keep only these organs; the model must have learned every one.
        postprocess: apply the folds' ``postprocessing.json`` (keep the largest component of the organs
            chosen in validation); False writes the argmax as it is.
        output_type: "nifti" (label maps as ``.nii.gz``, and a ``dataset.json`` naming the labels
            beside them in an output folder), or "dicom-seg": a DICOM Segmentation of the input
            DICOM series (needs ``amoseg[dicom]``), one segment per organ the model can write for
            it, coded in SNOMED CT, written to ``output`` when that ends in ``.dcm``, else to
            ``output/<series folder name>.dcm``; no ``dataset.json``, as the SEG describes itself.
        quiet: no progress bar, no lines printed, no warnings.

    Returns:
        one record per case, in input order: ``case_id``, ``modality``, ``output`` (the label map's
        path) and ``seconds`` (per stage).

    Raises:
        AmosegError: "dicom-seg" without highdicom installed, or for an input that is not a DICOM
            series folder (an ``InputError`` naming it); and as ``inference.jobs.plan_jobs``.
    """
    from amoseg.errors import AmosegError
    from amoseg.inference.jobs import plan_jobs
    from amoseg.inference.run import Extras, predict_jobs
    from amoseg.io.sitk_io import has_image_suffix

    if not isinstance(input, str | Path):
        raise AmosegError("`input` is a path; for an image held in memory use amoseg.api.predict_image")

    loaded, options = _model_and_options(
        model,
        folds=folds,
        organs=organs,
        tta=tta,
        step=step,
        device=device,
        bf16=bf16,
        probabilities=probabilities,
        postprocess=postprocess,
        cross_modality=cross_modality,
    )
    jobs = plan_jobs(Path(input), Path(output), modality, output_type)
    writes_nifti_folder = output_type == "nifti" and not has_image_suffix(Path(output))
    label_folder = Path(output) if writes_nifti_folder else None
    extras = Extras(statistics=statistics, preview=preview, probabilities=probabilities)
    records = predict_jobs(jobs, loaded, options, extras, progress=not quiet, label_folder=label_folder)
    if not quiet:
        print(f"Predicted {len(records)} case(s) into {output}")
    return records


def predict_image(
    *,
    image: InMemoryImage,
    model: str | Path | Model,
    modality: Modality,
    folds: str | None = None,
    tta: bool = True,
    step: float = 0.5,
    device: str = "cpu",
    probabilities: bool = False,
    bf16: bool = False,
    organs: str | None = None,
    postprocess: bool = True,
    cross_modality: bool = False,
) -> Prediction:
    """Segment one image held in memory; nothing is read or written but the model.

    As TotalSegmentator's in-memory input, for a pipeline that already holds its images: an
    ``amoseg.io.Image``, a ``SimpleITK.Image`` or a nibabel image (NIfTI-1, NIfTI-2, MGH...; needs
    ``amoseg[nibabel]`` only to make one). The arguments mean what they mean for ``predict``;
    ``modality`` ("CT" or "MR") is required, as an image in memory has no name, dataset.json or DICOM
    tag to tell it.

    Returns:
        the ``amoseg.inference.predictor.Prediction``. Its ``label`` is of the kind ``image`` is (an
        ``amoseg.io.LabelMap``, a uint8 ``SimpleITK.Image``, or a nibabel image of the input's class
        with its affine and a uint8 header), on exactly the input's grid; ``probabilities`` (when
        asked for) are numpy float16, classes first, then the voxel axes i, j, k (nibabel's order,
        not SimpleITK's array view [k, j, i]); the seconds per stage; the organs the label map can hold.

    Raises:
        AmosegError: an image of another kind, not 3-D, with sheared axes or NaN voxels.
    """
    from dataclasses import replace

    from amoseg.errors import AmosegError
    from amoseg.inference import predictor
    from amoseg.io.foreign import from_foreign, to_foreign

    try:
        converted = from_foreign(image)
    except AmosegError as error:
        raise AmosegError(f"`image`: {error}") from None

    loaded, options = _model_and_options(
        model,
        folds=folds,
        organs=organs,
        tta=tta,
        step=step,
        device=device,
        bf16=bf16,
        probabilities=probabilities,
        postprocess=postprocess,
        cross_modality=cross_modality,
    )
    prediction = predictor.predict_image(converted, loaded, modality, options)
    return replace(prediction, label=to_foreign(prediction.label, image))


def _model_and_options(
    model: str | Path | Model,
    *,
    folds: str | None,
    organs: str | None,
    tta: bool,
    step: float,
    device: str,
    bf16: bool,
    probabilities: bool,
    postprocess: bool,
    cross_modality: bool,
) -> tuple[Model, PredictOptions]:
    """The model (loaded, cut down to ``organs``) and the options ``predict`` and ``predict_image`` share."""
    from amoseg.inference.predictor import PredictOptions
    from amoseg.inference.windows import WindowSettings
    from amoseg.model.loading import Model, load_model, restrict_organs

    loaded = model if isinstance(model, Model) else load_model(model, folds=folds, device=device)
    if organs is not None:
        loaded = restrict_organs(loaded, organs)
    options = PredictOptions(
        windows=WindowSettings(step=step, mirror=tta, autocast_dtype="bfloat16" if bf16 else None),
        device=device,
        keep_probabilities=probabilities,
        postprocess=postprocess,
        cross_modality=cross_modality,
    )
    return loaded, options


def model_info(*, model: str | Path | Model, folds: str | None = None) -> list[str]:
    """What a trained model is: its folds and plan, and the organs it learned per modality (the only
    ones ``predict`` writes). ``model`` is a run or fold folder, or an ``amoseg.model.loading.Model``.

    Returns:
        one line per fact, for people.
    """
    from amoseg.model.loading import Model, load_model

    loaded = model if isinstance(model, Model) else load_model(model, folds=folds)
    return loaded.describe()


def report(
    *,
    study: str | Path,
    output: str | Path | None = None,
    dataset: str | Path | None = None,
    quiet: bool = False,
) -> Path:
    """Write one self-contained HTML report of a study folder (default ``study/report.html``) and return
    its path. Built only from the stages' artifacts (docs/report.md); a missing one is named in its
    section. Case images come from ``dataset`` (default ``study/phantoms``).

    Raises:
        AmosegError: the study folder does not exist or holds none of the artifacts.
    """
    from amoseg.reporting.report import write_report

    path = write_report(study, output=output, dataset=dataset)
    if not quiet:
        print(f"Report written to {path}")
    return path


__all__ = [
    "Modality",
    "check",
    "evaluate",
    "model_info",
    "phantom",
    "plan",
    "predict",
    "predict_image",
    "preprocess",
    "report",
    "stats",
    "train",
]
