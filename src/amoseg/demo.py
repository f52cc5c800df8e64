"""``amoseg demo``: the whole life of an AMOS-style study on generated phantoms, within a time budget.

phantoms -> check -> stats -> plan (cpu preset) -> preprocess -> train one model on CT and MR together
(fold "all", the time left after the other steps) -> predict the held-out test cases -> evaluate DSC and
NSD -> report. Each step runs through ``amoseg.api`` as the CLI would, is timed, and is recorded in
``steps.json`` with the command that reproduces it, so the report can show how every artifact was made.

A demo killed at any moment picks up where it stopped when run again: the phantoms and the cache are
reused, training resumes from its latest checkpoint, and the later steps are redone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amoseg.data.layout import DATASET_JSON
from amoseg.data.phantom.writer import test_count
from amoseg.errors import AmosegError

#: The demo's target: mean DSC over the 15 organs on the phantom test cases, for CT and for MR.
TARGET_DSC = 0.90
#: Share of each modality's phantoms held out for testing.
TEST_FRACTION = 0.25
#: Seconds kept for prediction, evaluation and the report after training: fixed, and per test case in
#: the plan's training steps per sliding window of a median case, as the windows set the cost of
#: predicting a phantom whatever the machine (2026-12-04, 2 cores, AVX2-capped float32, the whole
#: `predict` step over 16 cases: 0.053-0.058 steps a window at patches of 64 x 64 x 24 and 56 x 64 x 24,
#: 0.068 at 56 x 56 x 20 and 48 x 48 x 20, 64-125 windows a case); 0.085 leaves a margin. Without a
#: step time in the plan, a fixed 6.5 s a case.
SECONDS_AFTER_TRAINING = 15.0
STEPS_AFTER_TRAINING_PER_WINDOW = 0.085
#: The demo's step budget. Its 64 phantoms are small (about 130 x 130 x 55 voxels), so more steps on
#: smaller patches learn a little more than at the preset's 0.4 s (AVX2-capped float32, 10 minutes, three
#: runs each: mean DSC CT 0.843-0.854 and MR 0.811-0.821 at 0.3 s, 0.839-0.847 and 0.807-0.815 at 0.4 s).
#: The preset keeps 0.4 s: real scans were not measured at 0.3 s.
DEMO_STEP_SECONDS = 0.3
SECONDS_AFTER_TRAINING_PER_CASE = 6.5


@dataclass(frozen=True)
class DemoSettings:
    """What the demo does.

    Attributes:
        out: the study folder (created; reused by a second run).
        minutes: wall-clock budget of the whole demo; training gets what the other steps leave.
        n_ct, n_mr: phantom cases; a quarter of them (at least one per modality) are held out for testing.
        seed: phantoms, splits, weights and patches.
        workers: processes for the data steps (None: the CPU count).
        cpu_step_seconds: the cpu plan's step budget on this machine (``DEMO_STEP_SECONDS``; None:
            the preset's); a larger one trades training steps for a larger patch.
    """

    out: Path
    minutes: float = 10.0
    n_ct: int = 48
    n_mr: int = 16
    seed: int = 0
    workers: int | None = None
    cpu_step_seconds: float | None = DEMO_STEP_SECONDS

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise AmosegError(f"`minutes` must be positive, not {self.minutes}")
        if self.n_ct < 2 or self.n_mr < 2:
            raise AmosegError("the demo needs at least 2 CT and 2 MR phantoms (one of each is held out)")


@dataclass(frozen=True)
class DemoResult:
    """How the demo ended: mean DSC and NSD per modality on the test cases, and where the report is."""

    mean_dsc: dict[str, float]
    mean_nsd: dict[str, float]
    report: Path
    seconds: float

    @property
    def target_met(self) -> bool:
        return all(not math.isnan(value) and value >= TARGET_DSC for value in self.mean_dsc.values())


def demo(*, out: str | Path = "demo_out", minutes: float = 10.0, **options: float | None) -> DemoResult:
    """The main job on the embedded default within ``minutes`` (docs/demo.md); ``options`` are
    ``DemoSettings``' others (n_ct, n_mr, seed, workers, cpu_step_seconds). It runs every stage through ``amoseg.api``,
    so it sits above it: the API has one function per stage, the demo composes them.

    Returns:
        the ``DemoResult`` (mean DSC and NSD for CT and MR, the report's path).
    """
    return run_demo(DemoSettings(out=Path(out), minutes=minutes, **options))


def run_demo(settings: DemoSettings, console=None) -> DemoResult:
    """Run every step into ``settings.out``; returns the achieved figures.

    Raises:
        AmosegError: a step failed (the message names the step's input); or the dataset check failed.
    """
    from rich.console import Console

    from amoseg import api
    from amoseg.model.checkpoint import checkpoint_path
    from amoseg.planning.plan import Plan
    from amoseg.reporting.steps import Step, record_step
    from amoseg.reporting.study import StudyPaths

    console = console or Console()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    budget_s = settings.minutes * 60.0
    paths = StudyPaths(out)
    n_test = test_count(settings.n_ct, TEST_FRACTION) + test_count(settings.n_mr, TEST_FRACTION)

    def step(name: str, command: str, outputs: tuple[Path, ...], action: Callable[[], Any]) -> Any:
        console.rule(f"amoseg demo: {name}")
        begin, when = time.perf_counter(), datetime.now(UTC).isoformat(timespec="seconds")
        value = action()
        seconds = time.perf_counter() - begin
        record_step(out, Step(name, command, round(seconds, 2), tuple(str(p) for p in outputs), when))
        return value

    seed, workers = settings.seed, settings.workers
    if not (paths.dataset / DATASET_JSON).is_file():
        step(
            "phantoms",
            f"amoseg phantom {paths.dataset} --ct {settings.n_ct} --mr {settings.n_mr} --seed {seed}",
            (paths.dataset,),
            lambda: api.phantom(
                output=paths.dataset,
                n_ct=settings.n_ct,
                n_mr=settings.n_mr,
                seed=seed,
                test_fraction=TEST_FRACTION,
                workers=workers,
            ),
        )
    report = step(
        "check",
        f"amoseg check {paths.dataset} -o {paths.check}",
        (paths.check,),
        lambda: api.check(dataset=paths.dataset, output=paths.check, workers=workers),
    )
    if not report.ok:
        raise AmosegError(f"{paths.dataset}: the generated dataset failed its check (see {paths.check})")
    step(
        "stats",
        f"amoseg stats {paths.dataset} -o {paths.stats}",
        (paths.stats,),
        lambda: api.stats(dataset=paths.dataset, output=paths.stats, workers=workers),
    )
    resume = checkpoint_path(paths.runs / "fold_all", "latest").is_file()
    if resume and paths.plan.is_file():
        # The cpu plan is sized by a measurement, which varies from run to run: planning again could
        # change the patch, and with it the plan a cut-off training has to continue with.
        plan = Plan.load(paths.plan)
        console.print(f"Keeping {paths.plan} (plan {plan.plan_id}): the training it started continues")
    else:
        plan = step(
            "plan",
            f"amoseg plan {paths.dataset} --preset cpu --stats {paths.stats} -o {paths.plan}"
            + (f" --cpu-step-seconds {settings.cpu_step_seconds}" if settings.cpu_step_seconds else ""),
            (paths.plan,),
            lambda: api.plan(
                dataset=paths.dataset,
                preset="cpu",
                output=paths.plan,
                stats=paths.stats,
                cpu_step_seconds=settings.cpu_step_seconds,
                workers=workers,
            ),
        )
    step(
        "preprocess",
        f"amoseg preprocess {paths.dataset} --plan {paths.plan} -o {paths.preprocessed}",
        (paths.preprocessed / plan.plan_id,),
        lambda: api.preprocess(dataset=paths.dataset, plan=plan, output=paths.preprocessed, workers=workers),
    )
    reserve = SECONDS_AFTER_TRAINING + seconds_after_training_per_case(plan) * n_test
    training_s = max(30.0, budget_s - (time.perf_counter() - started) - reserve)
    step(
        "train",
        f"amoseg train {paths.preprocessed} --plan {paths.plan} --fold all -o {paths.runs} "
        f"--time-budget {training_s:.0f}s --seed {seed}" + (" --resume" if resume else ""),
        (paths.runs / "fold_all",),
        lambda: api.train(
            preprocessed=paths.preprocessed,
            plan=plan,
            output=paths.runs,
            fold="all",
            time_budget=training_s,
            resume=resume,
            seed=seed,
            device="cpu",
        ),
    )
    step(
        "predict",
        f"amoseg predict -i {paths.dataset / 'imagesTs'} -o {paths.predictions} -m {paths.runs}",
        (paths.predictions,),
        lambda: api.predict(
            input=paths.dataset / "imagesTs",
            output=paths.predictions,
            model=paths.runs,
            device="cpu",
        ),
    )
    evaluation = step(
        "evaluate",
        f"amoseg evaluate {paths.predictions} {paths.dataset / 'labelsTs'} -o {paths.evaluation}",
        (paths.evaluation,),
        lambda: _evaluate_fresh(paths, workers),
    )
    report_path = step(
        "report",
        f"amoseg report {out}",
        (out / "report.html",),
        lambda: api.report(study=out),
    )
    result = DemoResult(
        mean_dsc={name: evaluation.groups[name].mean_dsc for name in ("CT", "MR")},
        mean_nsd={name: evaluation.groups[name].mean_nsd for name in ("CT", "MR")},
        report=Path(report_path),
        seconds=time.perf_counter() - started,
    )
    _print_ending(console, evaluation, result, settings)
    for line in closing_lines(paths.runs / "fold_all", evaluation):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return result


def seconds_after_training_per_case(plan) -> float:
    """Time to keep after training for each test case: in the plan's steps per window of its median
    case when it has a step time (prediction's default window step, half a patch)."""
    from amoseg.inference.sliding_window import padded_shape, window_starts
    from amoseg.inference.windows import WindowSettings

    step_s = plan.planned_step_s
    if not step_s:
        return SECONDS_AFTER_TRAINING_PER_CASE
    windows = len(
        window_starts(
            padded_shape(plan.median_shape, plan.patch_size), plan.patch_size, WindowSettings().step
        )
    )
    return STEPS_AFTER_TRAINING_PER_WINDOW * windows * step_s


def _evaluate_fresh(paths, workers: int | None):
    """Evaluate into a new folder, then swap it in: a rerun replaces the previous evaluation, and a
    failed one leaves it as it was."""
    import shutil

    from amoseg import api
    from amoseg.evaluation.outputs import print_summary

    fresh = paths.evaluation.with_name(f".{paths.evaluation.name}.new")
    shutil.rmtree(fresh, ignore_errors=True)
    evaluation = api.evaluate(
        pred=paths.predictions, ref=paths.dataset / "labelsTs", output=fresh, workers=workers, quiet=True
    )
    old = paths.evaluation.with_name(f".{paths.evaluation.name}.old")
    if paths.evaluation.exists():
        paths.evaluation.replace(old)
    fresh.replace(paths.evaluation)
    shutil.rmtree(old, ignore_errors=True)
    print_summary(evaluation, paths.evaluation)
    return evaluation


def _print_ending(console, evaluation, result: DemoResult, settings: DemoSettings) -> None:
    """The per-organ table (means over the test cases), the achieved means, the verdict, the report."""
    from rich.table import Table

    from amoseg.evaluation.outputs import unscored_text
    from amoseg.labels import ORGAN_BY_ID

    console.rule("amoseg demo: result on the held-out test cases")
    groups = [evaluation.groups[name] for name in ("CT", "MR")]
    table = Table(title=f"DSC and NSD per organ ({' + '.join(f'{g.cases} {g.group}' for g in groups)} cases)")
    table.add_column("organ")
    for group in groups:
        table.add_column(f"{group.group} DSC", justify="right")
        table.add_column(f"{group.group} NSD", justify="right")
    for position, label in enumerate(evaluation.labels):
        row = [ORGAN_BY_ID[label].title]
        for group in groups:
            organ = group.organs[position]
            row += [_number(organ.dsc_mean), _number(organ.nsd_mean)]
        table.add_row(*row)
    table.add_row(
        "mean", *[_number(value) for g in groups for value in (g.mean_dsc, g.mean_nsd)], style="bold"
    )
    console.print(table)
    achieved = ", ".join(
        f"{name} mean DSC {result.mean_dsc[name]:.3f} (NSD {result.mean_nsd[name]:.3f})"
        for name in ("CT", "MR")
    )
    verdict = (
        f"target met (mean DSC >= {TARGET_DSC} for CT and for MR)"
        if result.target_met
        else f"TARGET MISSED: the demo aims at mean DSC >= {TARGET_DSC} for CT and for MR"
    )
    console.print(f"{achieved}; {verdict}.")
    # The scores look at the annotated organs only; the rest of each label map is accounted for here.
    console.print(f"Whole label maps: organs no reference annotates got {unscored_text(evaluation)}.")
    console.print(
        f"Whole demo: {result.seconds / 60:.1f} min (budget {settings.minutes:g} min). Report: {result.report}"
    )


def closing_lines(fold: Path, evaluation) -> list[str]:
    """What the result depended on: training achieved against planned, the step time measured and the
    precision, and the organs not found (no voxel in any test case that has them) or found poorly."""
    return [*_training_lines(fold), *_organ_lines(evaluation)]


def _training_lines(fold: Path) -> list[str]:
    from amoseg.planning.plan import PLANS_FILE, Plan
    from amoseg.reporting.training_facts import fold_facts, readable
    from amoseg.training.log import LOG_FILE, read_log

    facts = fold_facts(fold, read_log(fold)) if (fold / LOG_FILE).is_file() else None
    plan = readable(Plan.load, fold / PLANS_FILE)
    if facts is None or plan is None:
        return [f"Training: no record in {fold}."]
    planned = plan.planned_step_s
    expected = (
        f" against about {facts.budget_s / planned:.0f} planned ({facts.budget_s:.0f} s at the plan's "
        f"{planned:.2f} s per step)"
        if facts.budget_s and planned
        else ""
    )
    measured = f"{facts.measured_step_s:.2f} s" if facts.measured_step_s else "n/a"
    source = (
        plan.measured_step.describe() if plan.measured_step else "the plan's step was estimated, not measured"
    )
    lines = [
        f"Training: {facts.iterations} iterations in {facts.elapsed_s:.0f} s{expected}; measured here "
        f"{measured} per step, in {_precision(plan)} ({source})."
    ]
    if facts.slow:
        lines.append(
            "This machine ran the steps more slowly than the plan assumed, so the budget held fewer: plan "
            "again on it (`amoseg plan ... --preset cpu`) or give the demo more minutes (`--minutes`)."
        )
    return lines


def _precision(plan) -> str:
    if plan.measured_step is not None:
        return plan.measured_step.precision
    import torch

    from amoseg.training.optim import autocast_dtype

    return "bfloat16" if autocast_dtype(torch.device("cpu"), amp=True) == torch.bfloat16 else "float32"


def _organ_lines(evaluation) -> list[str]:
    from amoseg.labels import ORGAN_BY_ID
    from amoseg.training.log import WEAK_ORGAN_DSC

    missing, weak = [], []
    for name in ("CT", "MR"):
        group = evaluation.groups[name]
        for position, label in enumerate(evaluation.labels):
            scores = [case.organs[position] for case in evaluation.cases if case.modality == name]
            present = [score for score in scores if score.ref_voxels > 0]
            organ = f"{name} {ORGAN_BY_ID[label].title}"
            if present and all(score.pred_voxels == 0 for score in present):
                missing.append(organ)
            elif (
                not math.isnan(group.organs[position].dsc_mean)
                and group.organs[position].dsc_mean < WEAK_ORGAN_DSC
            ):
                weak.append(f"{organ} {group.organs[position].dsc_mean:.2f}")
    lines = [
        f"Not found in any test case that has them: {', '.join(missing)}."
        if missing
        else "Every organ was found in the test cases of each modality."
    ]
    if weak:
        lines.append(f"Mean DSC below {WEAK_ORGAN_DSC}: {', '.join(weak)}.")
    return lines


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"
