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

    dataset = Path(dataset)
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
    quiet: bool = False,
) -> Path:
    """Write a synthetic AMOS-layout dataset of ``n_ct`` CT and ``n_mr`` MR abdomens; returns its folder."""
    from amoseg.data.phantom import write_phantom_dataset

    return write_phantom_dataset(
        Path(output),
        n_ct=n_ct,
        n_mr=n_mr,
        seed=seed,
        test_fraction=test_fraction,
        workers=workers,
        progress=not quiet,
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


def demo(*, out: str | Path = "demo_out", seed: int = 0) -> int:
    """The main job on the embedded default: generate phantoms, then check them. Returns an exit code."""
    from rich.console import Console

    console = Console()
    out = Path(out)
    console.rule("amoseg demo: phantom dataset")
    dataset = phantom(output=out / "phantoms", n_ct=8, n_mr=4, seed=seed)
    console.rule("amoseg demo: check")
    report = check(dataset=dataset, output=out / "check.json")
    console.print(f"Dataset at {dataset}; validation report at {out / 'check.json'}")
    return 0 if report.ok else 1


__all__ = ["Modality", "check", "demo", "phantom", "stats"]
