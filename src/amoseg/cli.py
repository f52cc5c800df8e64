"""Command line: thin subcommands over ``amoseg.api``.

Only argparse and the standard library are imported here, so ``amoseg --help`` answers at once; each
subcommand imports its stage when it runs. An ``AmosegError``, or an ``OSError`` the file system raised
(a folder that is a file, no permission, a full disk), becomes one line on stderr and exit 1.

The library names an argument by its ``amoseg.api`` keyword in backquotes (``amoseg.errors``); errors and
warnings are printed here with the flag that sets it instead. Each option's ``dest`` is the keyword it
is passed as, so the parser itself says which flag that is; the negated switches (``--no-tta``,
``--no-postprocessing``, ``--no-amp``, ``--no-plots``) are the exception, so a message naming ``tta``,
``postprocess``, ``amp`` or ``plots`` keeps the keyword.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from amoseg import __version__

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from amoseg.errors import AmosegError

    try:
        with _warnings_with_flags(args.parsers, args.command):
            return args.handler(args)
    except AmosegError as error:
        print(
            f"amoseg {args.command}: error: {_with_flags(str(error), args.parsers, args.command)}",
            file=sys.stderr,
        )
        return 1
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"amoseg {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"amoseg {args.command}: interrupted; finished outputs are kept, nothing half-written",
            file=sys.stderr,
        )
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amoseg",
        description="Abdominal multi-organ segmentation on CT and MR (AMOS 2022).",
    )
    parser.add_argument("--version", action="version", version=f"amoseg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = _command(commands, "check", "validate a dataset folder (nnU-Net / AMOS raw layout)", _run_check)
    check.add_argument("dataset", type=Path, help="dataset folder holding dataset.json and imagesTr/labelsTr")
    check.add_argument(
        "-o", "--output", type=Path, default=Path("check.json"), help="report file (default: ./check.json)"
    )
    check.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")

    phantom = _command(
        commands, "phantom", "generate a synthetic AMOS-style dataset of CT and MR", _run_phantom
    )
    phantom.add_argument("output", type=Path, help="dataset folder to create")
    phantom.add_argument(
        "--ct", dest="n_ct", metavar="CT", type=int, default=8, help="number of CT cases (default 8)"
    )
    phantom.add_argument(
        "--mr", dest="n_mr", metavar="MR", type=int, default=4, help="number of MR cases (default 4)"
    )
    phantom.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data")
    phantom.add_argument(
        "--test-fraction", type=float, default=0.25, help="share of cases in imagesTs/labelsTs (default 0.25)"
    )
    phantom.add_argument(
        "--annotated",
        dest="annotated_labels",
        metavar="ORGANS",
        help="partially labelled, as BTCV or CHAOS: keep only these organs (ids or names, e.g. 1,2,3,6)",
    )
    phantom.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")

    stats = _command(
        commands, "stats", "compute the dataset card's tables and the planning fingerprint", _run_stats
    )
    stats.add_argument(
        "dataset", type=Path, nargs="+", help="dataset folder, or several planned together for one model"
    )
    stats.add_argument(
        "-o", "--output", type=Path, required=True, help="folder for stats.json, stats.md, CSVs, plots"
    )
    stats.add_argument("--strict", action="store_true", help="stop with exit 1 at the first unusable case")
    stats.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    stats.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")

    evaluate = _command(
        commands, "evaluate", "score predicted label maps against references (DSC and NSD)", _run_evaluate
    )
    evaluate.add_argument("pred", type=Path, help="folder of predicted label maps (or one file)")
    evaluate.add_argument(
        "ref", type=Path, help="folder of reference label maps (or one file); dataset.json here or above"
    )
    evaluate.add_argument(
        "-o", "--output", type=Path, required=True, help="folder for per_case.csv, summary.json/.md, plot"
    )
    evaluate.add_argument(
        "--labels", help="organs to score, ids or names, e.g. 1,2,6 (default: dataset.json annotated_labels)"
    )
    evaluate.add_argument(
        "--ignore-mask", type=Path, help="image (or folder by case id) whose nonzero voxels are not scored"
    )
    tolerance = evaluate.add_mutually_exclusive_group()
    tolerance.add_argument(
        "--tolerance",
        dest="tolerance_mm",
        type=float,
        metavar="MM",
        help="NSD tolerance in mm for every organ (default 1)",
    )
    tolerance.add_argument("--tolerance-profile", metavar="NAME", help="per-organ NSD tolerances: flare22")
    evaluate.add_argument(
        "--allow-missing", action="store_true", help="score a missing prediction as empty instead of failing"
    )
    evaluate.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")

    plan = _command(
        commands, "plan", "plan preprocessing and the network for a dataset (writes plans.json)", _run_plan
    )
    plan.add_argument(
        "dataset",
        type=Path,
        nargs="+",
        help="dataset folder, or several for one model (preprocess each into the same cache)",
    )
    plan.add_argument(
        "--preset",
        choices=("fullres", "fast", "cpu"),
        default="fullres",
        help="fullres: nnU-Net spacing rule; fast: 3 mm; cpu: 3 mm and a small network (default fullres)",
    )
    plan.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("plans.json"),
        help="plan file, or a folder to hold plans.json (default: ./plans.json)",
    )
    plan.add_argument(
        "--stats",
        type=Path,
        help="folder with fingerprint.json from `amoseg stats` (default: stats/ beside -o; computed if missing)",
    )
    plan.add_argument(
        "--gpu-memory",
        dest="gpu_memory_gb",
        type=float,
        metavar="GB",
        help="GPU memory budget, fullres/fast (default 8)",
    )
    plan.add_argument(
        "--cpu-step-seconds",
        type=float,
        metavar="S",
        help="seconds per training step (cpu; default 0.4)",
    )
    plan.add_argument(
        "--no-measure",
        dest="measure",
        action="store_false",
        help="cpu: size by the reference machine's speed instead of measuring this one (same plan anywhere)",
    )
    plan.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")

    preprocess = _command(
        commands, "preprocess", "reorient, crop, resample and normalize a dataset for a plan", _run_preprocess
    )
    preprocess.add_argument("dataset", type=Path, help="dataset folder")
    preprocess.add_argument("--plan", type=Path, required=True, help="plans.json from `amoseg plan`")
    preprocess.add_argument(
        "-o", "--output", type=Path, required=True, help="cache folder; cases go to OUTPUT/<plan id>/<case>/"
    )
    preprocess.add_argument("--overwrite", action="store_true", help="redo cases already preprocessed")
    preprocess.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPUs)")

    predict = _command(
        commands, "predict", "segment a file, a folder or a DICOM series with a trained model", _run_predict
    )
    predict.add_argument(
        "-i", "--input", type=Path, help="image file, folder of images, or DICOM series folder"
    )
    predict.add_argument("-o", "--output", type=Path, help="output file (one input) or folder")
    predict.add_argument(
        "--output-type",
        choices=["nifti", "dicom-seg"],
        default="nifti",
        help="nifti (default), or dicom-seg: a DICOM Segmentation of a DICOM series input, to OUTPUT "
        "when it ends in .dcm, else to OUTPUT/<series folder>.dcm (needs amoseg[dicom])",
    )
    predict.add_argument(
        "-m", "--model", type=Path, required=True, help="trained run folder (fold_*) or one fold folder"
    )
    predict.add_argument(
        "--folds", default=None, help="folds to average: 0,1,2 or all (default: every trained fold)"
    )
    predict.add_argument(
        "--no-tta",
        action="store_true",
        help="no mirroring test-time augmentation (only models trained with mirroring have any)",
    )
    predict.add_argument(
        "--step", type=float, default=0.5, help="window step as a fraction of the patch (default 0.5)"
    )
    predict.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    predict.add_argument("--modality", choices=["CT", "MR"], help="override the modality of every input")
    predict.add_argument(
        "--probabilities", action="store_true", help="also write the softmax (.npz, with geometry)"
    )
    predict.add_argument(
        "--statistics", action="store_true", help="also write organ volumes and intensities (JSON)"
    )
    predict.add_argument(
        "--preview", action="store_true", help="also write a PNG with three planes and the organs"
    )
    predict.add_argument(
        "--organs", help="write only these organs (names or ids); the model must have learned them"
    )
    predict.add_argument(
        "--cross-modality",
        action="store_true",
        help="also write organs the model learned from the other modality only (default: only those "
        "learned from the input's modality; organs it never learned are always background)",
    )
    predict.add_argument(
        "--model-info",
        action="store_true",
        help="print the model's folds, plan and the organs it learned per modality, then exit (no -i/-o)",
    )
    predict.add_argument("--bf16", action="store_true", help="run the network under bfloat16 autocast")
    predict.add_argument(
        "--no-postprocessing",
        action="store_true",
        help="ignore the model's postprocessing.json (keep every component of every organ)",
    )

    train = _command(
        commands,
        "train",
        "train a 3-D U-Net on a preprocessing cache (one fold; torchrun for DDP)",
        _run_train,
    )
    train.add_argument(
        "preprocessed", type=Path, help="cache root from `amoseg preprocess` (or its plan folder)"
    )
    train.add_argument("--plan", type=Path, required=True, help="plans.json the cache was made with")
    train.add_argument("--fold", default="0", help="cross-validation fold: 0, 1, 2, 3, 4 or all (default 0)")
    train.add_argument(
        "-o", "--output", type=Path, required=True, help="run folder; the fold goes to fold_<k>/"
    )
    train.add_argument(
        "--epochs", type=int, help="epochs (default 1000; iterations per epoch: 250, cpu preset 100)"
    )
    train.add_argument(
        "--time-budget", metavar="DURATION", help="stop after e.g. 10m, 90s or 1h30m of training"
    )
    train.add_argument(
        "--device", default="auto", help="auto, cpu, cuda or mps (default: cuda, else mps, else cpu)"
    )
    train.add_argument("--resume", action="store_true", help="continue the fold from checkpoint_latest.pt")
    train.add_argument("--residual", action="store_true", help="residual encoder blocks (ResEnc U-Net)")
    train.add_argument("--compile", action="store_true", help="torch.compile the network")
    train.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="nnU-Net's data augmentation (default: on, off for the cpu preset)",
    )
    train.add_argument(
        "--mirror-axes",
        metavar="AXES",
        help="axes the augmentation and test-time augmentation mirror, e.g. 1,2 or 0,1,2 (default: none)",
    )
    train.add_argument(
        "--no-amp", action="store_true", help="float32 instead of bf16/fp16 autocast (CUDA, CPUs with bf16)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed for weights, splits, patches, augmentation")
    train.add_argument("--iterations-per-epoch", type=int, help="training steps per epoch")
    train.add_argument("--batch-size", type=int, help="patches per step (default: the plan's)")
    train.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")

    report = _command(commands, "report", "write one self-contained HTML report of a study", _run_report)
    report.add_argument(
        "study", type=Path, metavar="STUDY_DIR", help="study folder the stages wrote into (e.g. demo_out)"
    )
    report.add_argument("-o", "--output", type=Path, help="report file (default: STUDY_DIR/report.html)")
    report.add_argument(
        "--dataset",
        type=Path,
        metavar="DATASET_DIR",
        help="dataset folder for the case images (default: STUDY_DIR/phantoms)",
    )

    demo = _command(commands, "demo", "run the main job end to end on generated phantoms", _run_demo)
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    demo.add_argument(
        "--minutes", type=float, default=10.0, help="budget of the whole demo; training gets the rest (10)"
    )
    demo.add_argument(
        "--ct",
        dest="n_ct",
        metavar="CT",
        type=int,
        default=48,
        help="CT phantoms, a quarter held out (default 48)",
    )
    demo.add_argument(
        "--mr",
        dest="n_mr",
        metavar="MR",
        type=int,
        default=16,
        help="MR phantoms, a quarter held out (default 16)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--cpu-step-seconds",
        type=float,
        metavar="S",
        help="the plan's seconds per training step on this machine (default: the demo's, docs/demo.md): "
        "larger, a larger patch",
    )
    return parser


def _command(commands, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    # ``choices`` is filled as commands are added: complete by the time arguments are parsed.
    sub.set_defaults(handler=handler, parsers=commands.choices)
    return sub


@contextlib.contextmanager
def _warnings_with_flags(parsers: Mapping[str, argparse.ArgumentParser], command: str) -> Iterator[None]:
    """The library's warnings become ``warning: ...`` lines on stdout, with flags; others show as usual."""
    import warnings

    from amoseg.errors import AmosegWarning

    with warnings.catch_warnings():
        # Every case's warning, even one a previous command in this process already gave.
        warnings.simplefilter("always", AmosegWarning)
        show_other = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, AmosegWarning):
                print(f"warning: {_with_flags(str(message), parsers, command)}")
            else:
                show_other(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _with_flags(message: str, parsers: Mapping[str, argparse.ArgumentParser], command: str) -> str:
    """``message`` with each API keyword it names replaced by the flag of ``command`` that sets it (its
    short form when it has one, as the usage line shows it) or the positional argument's name; a keyword
    of another stage's function (``preprocess.overwrite``) by that command and its flag."""
    from amoseg.errors import name_parameters

    def flag(reference: str) -> str | None:
        stage, _, keyword = reference.rpartition(".")
        parser = parsers.get(stage or command)
        # argparse has no public list of a parser's arguments.
        actions = parser._actions if parser is not None else []
        action = next((action for action in actions if action.dest == keyword), None)
        if action is None:
            return None
        name = action.option_strings[0] if action.option_strings else action.metavar or keyword.upper()
        return f"amoseg {stage} {name}" if stage and stage != command else name

    return name_parameters(message, flag)


def _run_check(args: argparse.Namespace) -> int:
    from amoseg import api

    report = api.check(dataset=args.dataset, output=args.output, workers=args.workers)
    return 0 if report.ok else 1


def _run_phantom(args: argparse.Namespace) -> int:
    from amoseg import api

    api.phantom(
        output=args.output,
        n_ct=args.n_ct,
        n_mr=args.n_mr,
        seed=args.seed,
        test_fraction=args.test_fraction,
        workers=args.workers,
        annotated_labels=args.annotated_labels,
    )
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    from amoseg import api

    api.stats(
        dataset=args.dataset,
        output=args.output,
        strict=args.strict,
        plots=not args.no_plots,
        workers=args.workers,
    )
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from amoseg import api

    api.evaluate(
        pred=args.pred,
        ref=args.ref,
        output=args.output,
        labels=args.labels,
        ignore_mask=args.ignore_mask,
        tolerance_mm=args.tolerance_mm,
        tolerance_profile=args.tolerance_profile,
        allow_missing=args.allow_missing,
        workers=args.workers,
    )
    return 0


def _run_plan(args: argparse.Namespace) -> int:
    from amoseg import api

    api.plan(
        dataset=args.dataset,
        preset=args.preset,
        output=args.output,
        stats=args.stats,
        gpu_memory_gb=args.gpu_memory_gb,
        cpu_step_seconds=args.cpu_step_seconds,
        measure=args.measure,
        workers=args.workers,
    )
    return 0


def _run_preprocess(args: argparse.Namespace) -> int:
    from amoseg import api

    api.preprocess(
        dataset=args.dataset,
        plan=args.plan,
        output=args.output,
        overwrite=args.overwrite,
        workers=args.workers,
    )
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    from amoseg import api
    from amoseg.errors import AmosegError

    if args.model_info:
        for line in api.model_info(model=args.model, folds=args.folds):
            print(line)
        return 0
    if args.input is None or args.output is None:
        raise AmosegError("-i/--input and -o/--output are required (or --model-info to describe the model)")
    api.predict(
        input=args.input,
        output=args.output,
        model=args.model,
        folds=args.folds,
        tta=not args.no_tta,
        step=args.step,
        device=args.device,
        modality=args.modality,
        probabilities=args.probabilities,
        statistics=args.statistics,
        preview=args.preview,
        bf16=args.bf16,
        organs=args.organs,
        postprocess=not args.no_postprocessing,
        cross_modality=args.cross_modality,
        output_type=args.output_type,
    )
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from amoseg import api

    api.train(
        preprocessed=args.preprocessed,
        plan=args.plan,
        output=args.output,
        fold=args.fold,
        epochs=args.epochs,
        time_budget=args.time_budget,
        device=args.device,
        resume=args.resume,
        residual=args.residual,
        augment=args.augment,
        compile=args.compile,
        mirror_axes=args.mirror_axes,
        amp=not args.no_amp,
        seed=args.seed,
        iterations_per_epoch=args.iterations_per_epoch,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from amoseg import api

    api.report(study=args.study, output=args.output, dataset=args.dataset)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from amoseg.demo import demo

    demo(
        out=args.out,
        minutes=args.minutes,
        n_ct=args.n_ct,
        n_mr=args.n_mr,
        seed=args.seed,
        # Left out when not given, so the demo's own step budget applies rather than the preset's.
        **({} if args.cpu_step_seconds is None else {"cpu_step_seconds": args.cpu_step_seconds}),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
