"""Python API: one public function per stage. The CLI is a thin layer over these.

Every function takes explicit paths and keyword arguments, imports its stage lazily, and raises
``amoseg.errors.AmosegError`` (one line, naming the file and the problem) for bad input.
"""

from __future__ import annotations

from pathlib import Path

from amoseg.labels import Modality


def check(
    *, dataset: str | Path, output: str | Path = "check.json", workers: int | None = None, quiet: bool = False
):
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
    dataset: str | Path,
    output: str | Path,
    strict: bool = False,
    plots: bool = True,
    workers: int | None = None,
    quiet: bool = False,
) -> dict:
    """Compute the dataset card (``stats.json``, ``stats.md``, CSVs, plots) and ``fingerprint.json``.

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
):
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
    dataset: str | Path,
    preset: str = "fullres",
    output: str | Path = "plans.json",
    stats: str | Path | None = None,
    gpu_memory_gb: float | None = None,
    cpu_step_seconds: float | None = None,
    workers: int | None = None,
    quiet: bool = False,
):
    """Plan preprocessing and the network for a dataset and write ``plans.json`` to ``output``.

    The fingerprint is read from ``stats/fingerprint.json`` (``amoseg stats``; default folder: ``stats``
    beside ``output``) and computed there when missing. Presets and budgets: docs/planning.md.

    Returns:
        the ``amoseg.planning.Plan``; its ``plan_id`` names the preprocessing cache folder.
    """
    from amoseg.planning.dataset import plan_dataset, plans_path

    result = plan_dataset(
        dataset,
        preset=preset,
        output=output,
        stats=stats,
        gpu_memory_gb=gpu_memory_gb,
        cpu_step_seconds=cpu_step_seconds,
        workers=workers,
        progress=not quiet,
    )
    if not quiet:
        budget = (
            f"about {result.estimated_step_s} s per step on 2 CPU cores"
            if result.device == "cpu"
            else f"about {result.estimated_memory_gb} of {result.memory_budget_gb} GB"
        )
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
    plan,
    output: str | Path,
    overwrite: bool = False,
    workers: int | None = None,
    quiet: bool = False,
):
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
    plan,
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
):
    """Train one fold on a preprocessing cache; outputs go to ``output/fold_<fold>/``.

    ``plan`` is a plans.json path or an ``amoseg.planning.Plan``; its cache is ``preprocessed/<plan id>``.
    ``fold`` is 0..4 (five folds stratified by modality, ``output/splits.json``) or "all".
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
    from amoseg.training.run import train as train_fold

    chosen = plan if isinstance(plan, Plan) else Plan.load(plan)
    budget = parse_duration(time_budget)
    config = TrainConfig.for_plan(
        chosen,
        fold=str(fold),
        seed=seed,
        epochs=epochs,
        time_budget_s=budget,
        device=device,
        residual=residual,
        compile=compile,
        augment=augment,
        mirror_axes=parse_mirror_axes(mirror_axes),
        amp=amp,
        iterations_per_epoch=iterations_per_epoch,
        batch_size=batch_size,
        threads=threads,
    )
    changes = {
        "device": device,
        "compile": compile,
        "epochs": epochs,
        "time_budget_s": budget,
        "threads": threads,
    }
    result = train_fold(
        preprocessed,
        chosen,
        output,
        config,
        resume=resume,
        resume_changes={key: value for key, value in changes.items() if value is not None},
        progress=not quiet,
    )
    if not quiet:
        print_result(result, config.fold)
    return result


def predict(
    *,
    input,
    output: str | Path | None = None,
    model,
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
    quiet: bool = False,
):
    """Segment a file, a folder of files, a DICOM series folder, or an in-memory ``Image``.

    Only organs the model learned are written (its ``learned`` organs per modality; the others'
    probabilities go to background): by default those learned from the input's own modality,
    with ``cross_modality`` also those learned from the other one only.

    Args:
        input: a path, or an ``amoseg.io.Image`` (then ``modality`` is required and nothing is written).
        output: a file or folder for path inputs; label maps keep the input's exact geometry.
        model: a trained run or fold folder, or an ``amoseg.inference.model.Model``.
        folds: "0,1,2", "all" or None (every trained fold) of a run folder; probabilities are averaged.
        organs: "liver,spleen" or ids: keep only these organs; the model must have learned every one.
        postprocess: apply the folds' ``postprocessing.json`` (keep the largest component of the organs
            chosen in validation); False writes the argmax as it is.

    Returns:
        for an ``Image``: the ``Prediction`` (label map, optional probabilities, seconds per stage);
        for paths: one record per case (output path, modality, seconds per stage).
    """
    from amoseg.inference.case import PredictOptions, predict_image
    from amoseg.inference.model import Model, load_model
    from amoseg.io.image import Image

    loaded = model if isinstance(model, Model) else load_model(model, folds=folds, device=device)
    if organs is not None:
        from amoseg.inference.model import restrict_organs

        loaded = restrict_organs(loaded, organs)
    options = PredictOptions(
        step=step,
        mirror=tta,
        device=device,
        autocast_dtype="bfloat16" if bf16 else None,
        keep_probabilities=probabilities,
        postprocess=postprocess,
        cross_modality=cross_modality,
    )
    if isinstance(input, Image):
        if modality is None:
            raise ValueError("an in-memory image needs modality='CT' or 'MR'")
        return predict_image(input, loaded, modality, options)
    from amoseg.inference.run import Extras, plan_jobs, predict_jobs
    from amoseg.io.sitk_io import has_image_suffix

    if output is None:
        raise ValueError("output is required for path inputs")
    jobs = plan_jobs(Path(input), Path(output), modality)
    label_folder = None if has_image_suffix(Path(output)) else Path(output)
    extras = Extras(statistics=statistics, preview=preview, probabilities=probabilities)
    records = predict_jobs(jobs, loaded, options, extras, progress=not quiet, label_folder=label_folder)
    if not quiet:
        print(f"Predicted {len(records)} case(s) into {output}")
    return records


def model_info(*, model, folds: str | None = None) -> list[str]:
    """What a trained model is: its folds and plan, and the organs it learned per modality (the only
    ones ``predict`` writes). ``model`` is a run or fold folder, or an ``amoseg.inference.model.Model``.

    Returns:
        one line per fact, for people.
    """
    from amoseg.inference.model import Model, load_model

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


def demo(*, out: str | Path = "demo_out", minutes: float = 10.0, **options):
    """The main job on the embedded default within ``minutes`` (docs/demo.md); ``options`` are
    ``amoseg.demo.DemoSettings``' others (n_ct, n_mr, seed, workers).

    Returns:
        the ``amoseg.demo.DemoResult`` (mean DSC and NSD for CT and MR, the report's path).
    """
    from amoseg.demo import DemoSettings, run_demo

    return run_demo(DemoSettings(out=Path(out), minutes=minutes, **options))


__all__ = [
    "Modality",
    "check",
    "demo",
    "evaluate",
    "model_info",
    "phantom",
    "plan",
    "predict",
    "preprocess",
    "report",
    "stats",
    "train",
]
