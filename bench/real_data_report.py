"""Printing, Markdown and the curves figure of ``bench/real_data.py`` (see its docstring)."""

from __future__ import annotations

import math
from pathlib import Path

SETS = ("btcv-ct", "chaos-mr")
TARGET_MEAN_DSC = 0.80
CURVE_POINTS = 8


# -- printing and files ------------------------------------------------------------------------------

MODEL_TITLES = {"joint": "joint model", "ct_only": "CT-only model"}


def score_columns(results: dict) -> list[tuple[str, str]]:
    """(set, model) for every score there is, in set order."""
    return [
        (name, model)
        for name in SETS
        for model in results["models"]
        if name in results["models"][model]["scores"]
    ]


def score_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows (per organ, then the means) of DSC / NSD for each set and model."""
    from amoseg.labels import ORGAN_BY_ID

    columns = score_columns(results)
    header = ["organ"] + [
        f"{results['sets'][name]['modality']}, {MODEL_TITLES[model]}: DSC / NSD" for name, model in columns
    ]
    labels = sorted({label for name in SETS for label in results["sets"][name]["labels"]})
    rows = []
    for label in labels:
        organ = ORGAN_BY_ID[label]
        cells = []
        for name, model in columns:
            scores = results["models"][model]["scores"][name]["organs"].get(organ.name)
            cells.append("-" if scores is None else f"{_text(scores['dsc'])} / {_text(scores['nsd'])}")
        rows.append([organ.title, *cells])
    means = [results["models"][model]["scores"][name] for name, model in columns]
    rows.append(["mean", *(f"{_text(s['mean_dsc'])} / {_text(s['mean_nsd'])}" for s in means)])
    rows.append(
        [f"target DSC {TARGET_MEAN_DSC:.2f}", *("met" if s["target_met"] else "not met" for s in means)]
    )
    return header, rows


DECODING_TITLES = {
    "learned": "organs learned from its modality (default)",
    "cross_modality": "also organs learned from the other modality",
    "all_classes": "every output channel (before)",
}


def label_map_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Per set, model and decoding: mean DSC, and what the label maps give to organs the set does not
    annotate (mL per case), with the organs the model did not learn for that modality marked."""
    from amoseg.labels import ORGAN_BY_NAME

    header = ["set, model", "decoding", "mean DSC", "unscored organs, mL per case", "in organs not learned"]
    rows = []
    for name, model in score_columns(results):
        scores = results["models"][model]["scores"][name]
        learned = set(scores.get("learned_labels", {}).get(results["sets"][name]["modality"], ()))
        for decoding, figures in scores.get("decodings", {}).items():
            unscored = figures["unscored_ml"]
            outside = sum(ml for organ, ml in unscored.items() if ORGAN_BY_NAME[organ].id not in learned)
            listed = ", ".join(f"{organ} {ml:.1f}" for organ, ml in unscored.items()) or "none"
            rows.append(
                [f"{name}, {MODEL_TITLES[model]}", DECODING_TITLES[decoding], _text(figures["mean_dsc"]), listed,
                 f"{outside:.1f} mL"]
            )  # fmt: skip
    return header, rows


def training_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    header = ["model", "fold", "training cases", "minutes", "iterations", "epochs", "final pseudo-Dice"]
    rows = []
    for model, record in results["models"].items():
        run = record["training"]
        numbers = (run["training_cases"], f"{run['minutes']:.1f}", run["iterations"], run["epochs"])
        rows.append([MODEL_TITLES[model], run["fold"], *map(str, numbers), _text(run["final_pseudo_dice"])])
    return header, rows


def curve_lines(results: dict) -> list[str]:
    """The pseudo-Dice curve of each model in a few points: what more time would give."""
    return [
        f"{MODEL_TITLES[model]} pseudo-Dice by minute: "
        + ", ".join(
            f"{p['minutes']:.1f}: {_text(p['mean_pseudo_dice'])}" for p in few(record["training"]["curve"])
        )
        for model, record in results["models"].items()
    ]


def few(curve: list[dict], count: int = CURVE_POINTS) -> list[dict]:
    """At most ``count`` points, evenly spread, the first and the last included."""
    if len(curve) <= count:
        return curve
    return [curve[round(index * (len(curve) - 1) / (count - 1))] for index in range(count)]


def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def summary_line(results: dict) -> str:
    sets = results["sets"]
    held = ", ".join(f"{len(sets[n]['held_out'])} of {sets[n]['cases']} {sets[n]['modality']}" for n in SETS)
    organs = "; ".join(f"{sets[n]['modality']} {', '.join(map(str, sets[n]['labels']))}" for n in SETS)
    machine = results["machine"]
    device = machine.get("gpu", f"{machine['cpu_cores']} CPU cores")
    plan = results["plan"]
    return (
        f"{results['date']}, `{results['command']}`: {results['minutes_per_model']:g} min per model on {device} "
        f"(torch {machine['torch']}), preset {results['preset']} (plan {plan['plan_id']}, patch "
        f"{'x'.join(map(str, plan['patch_size']))}), test-time mirroring only along the axes trained with. Held out (fold 0, "
        f"stratified by dataset and modality): {held} cases; scored on the organs each set annotates ({organs})."
    )


def print_results(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for title, (header, rows) in (
        ("Held-out DSC / NSD per organ", score_rows(results)),
        ("Training (pseudo-Dice on validation patches)", training_rows(results)),
        ("Whole label maps, per decoding", label_map_rows(results)),
    ):
        table = Table(title=title)
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in [*curve_lines(results), summary_line(results)]:
        console.print(line, markup=False, highlight=False)


def markdown(results: dict) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])

    return (
        f"### Real data: BTCV CT + CHAOS MR\n\n{summary_line(results)}\n\n"
        f"{table(*score_rows(results))}\n\n{table(*training_rows(results))}\n\n"
        f"{table(*label_map_rows(results))}\n\n"
        + "".join(f"- {line}\n" for line in curve_lines(results))
        + "\nPseudo-Dice: mean over organs on fixed validation patches during training; the CT-only model "
        "(fold all) validates on some of its own training cases, so its curve is optimistic.\n"
    )


def plot_curves(results: dict, path: Path) -> None:
    from amoseg.plotting.figures import pyplot, save_png

    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for model, record in results["models"].items():
        curve = record["training"]["curve"]
        values = [math.nan if p["mean_pseudo_dice"] is None else p["mean_pseudo_dice"] for p in curve]
        axes.plot([p["minutes"] for p in curve], values, marker=".", label=MODEL_TITLES[model])
    axes.set_xlabel("training minutes")
    axes.set_ylabel("mean pseudo-Dice (validation patches)")
    axes.set_xlim(left=0)
    axes.set_ylim(0, 1)
    axes.set_title("Real data: joint CT+MR model against CT-only", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    save_png(figure, path)
