"""Evaluation outputs: ``per_case.csv``, ``summary.json``, ``summary.md`` and ``boxplot.png``.

All four are written into a hidden staging folder beside OUT and moved into OUT only once complete, so
an error or Ctrl-C leaves OUT as it was: never a partial set of outputs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from pathlib import Path

from amoseg.atomic import remove_stale_temporaries, temporary_sibling, write_json, write_text
from amoseg.errors import InputError
from amoseg.evaluation.aggregate import GROUPS, Evaluation, GroupSummary
from amoseg.labels import ORGAN_BY_ID

OUTPUT_FILES = ("per_case.csv", "summary.json", "summary.md", "boxplot.png")

CSV_COLUMNS = (
    "case",
    "modality",
    "organ",
    "label",
    "dsc",
    "nsd",
    "tolerance_mm",
    "ref_volume_ml",
    "pred_volume_ml",
    "true_positive",
    "false_positive",
    "false_negative",
    "true_negative",
    "note",
)

DEFINITIONS = {
    "dsc": "2|P∩G| / (|P| + |G|) per case and organ, from voxel counts",
    "nsd": (
        "normalized surface Dice at the organ's tolerance: (area of G's surface within tau of P's + area "
        "of P's surface within tau of G's) / (area of both surfaces); surface elements and exact "
        "Euclidean corner distances in mm as in DeepMind's surface-distance"
    ),
    "empty": (
        "organ absent from reference and prediction: not a number, left out of every mean and counted; "
        "absent from one of them: 0 for both metrics"
    ),
    "aggregation": (
        "per organ: mean and population std over cases; mDSC and mNSD: mean over organs of the organ "
        "means; for CT, MR and all cases"
    ),
}


def check_output_folder(output: Path) -> None:
    """Refuse an OUT that exists and is not a folder, before any work is done."""
    if output.exists() and not output.is_dir():
        raise InputError(output, "output exists and is not a folder")


def write_outputs(evaluation: Evaluation, output: str | Path, plot: bool = True) -> list[Path]:
    """Write the outputs into ``output`` (created if needed); returns the files written."""
    output = Path(output)
    check_output_folder(output)
    # A staging folder (and temporaries inside OUT) that a killed run left behind go first.
    remove_stale_temporaries(output.parent, [output.name])
    remove_stale_temporaries(output)
    staging = temporary_sibling(output)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write_text(staging / "per_case.csv", per_case_csv(evaluation))
        write_json(staging / "summary.json", summary_dict(evaluation))
        write_text(staging / "summary.md", summary_markdown(evaluation))
        names = ["per_case.csv", "summary.json", "summary.md"]
        if plot:
            from amoseg.evaluation.plots import write_boxplot

            write_boxplot(evaluation, staging / "boxplot.png")
            names.append("boxplot.png")
        output.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staging / name, output / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [output / name for name in names]


def per_case_csv(evaluation: Evaluation) -> str:
    """One row per case and organ; a not-a-number score is an empty cell, explained in ``note``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for case in evaluation.cases:
        millilitres_per_voxel = case.voxel_volume_mm3 / 1000.0
        for score in case.organs:
            note = "absent from both" if score.absent else ""
            if case.prediction_missing:
                note = "prediction missing, scored as empty" + (f"; {note}" if note else "")
            writer.writerow(
                (
                    case.case_id,
                    case.modality or "",
                    ORGAN_BY_ID[score.label].name,
                    score.label,
                    _number(score.dsc),
                    _number(score.nsd),
                    f"{score.tolerance_mm:g}",
                    f"{score.ref_voxels * millilitres_per_voxel:.4f}",
                    f"{score.pred_voxels * millilitres_per_voxel:.4f}",
                    score.true_positive,
                    score.false_positive,
                    score.false_negative,
                    score.true_negative,
                    note,
                )
            )
    return buffer.getvalue()


def summary_dict(evaluation: Evaluation) -> dict:
    """The content of summary.json: tolerances, counts, and per group the organ and overall means."""
    return {
        "definitions": DEFINITIONS,
        "tolerance_profile": evaluation.tolerance_profile,
        "tolerance_mm": {ORGAN_BY_ID[label].name: mm for label, mm in evaluation.tolerances_mm.items()},
        "labels": {ORGAN_BY_ID[label].name: label for label in evaluation.labels},
        "cases": len(evaluation.cases),
        "missing_predictions": list(evaluation.missing_predictions),
        "unmatched_predictions": list(evaluation.unmatched_predictions),
        "groups": {name: _group_dict(group) for name, group in evaluation.groups.items()},
        "unscored_prediction_ml": {
            ORGAN_BY_ID[label].name: {"ml": round(millilitres, 4), "cases": cases}
            for label, (millilitres, cases) in evaluation.unscored_ml().items()
        },
    }


def summary_markdown(evaluation: Evaluation) -> str:
    """Organ x (DSC, NSD) table for CT, MR and all cases, mean ± std, with the tolerance in force."""
    groups = [evaluation.groups[name] for name in GROUPS if evaluation.groups[name].cases or name == "all"]
    lines = ["# Evaluation summary", ""]
    lines.append(f"Tolerance: {_tolerance_text(evaluation)}.")
    counts = ", ".join(f"{group.cases} {group.group}" for group in groups if group.group != "all")
    lines.append(f"Cases: {len(evaluation.cases)} ({counts}).")
    if evaluation.missing_predictions:
        lines.append(
            f"Predictions missing, scored as empty: {len(evaluation.missing_predictions)} "
            f"({', '.join(evaluation.missing_predictions)})."
        )
    lines.append(f"Predicted in organs no reference annotates (not scored): {unscored_text(evaluation)}.")
    lines.append("")
    header = ["Organ"]
    for group in groups:
        header += [f"{group.group} DSC", f"{group.group} NSD"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for position, label in enumerate(evaluation.labels):
        row = [ORGAN_BY_ID[label].title]
        for group in groups:
            organ = group.organs[position]
            row += [_mean_std(organ.dsc_mean, organ.dsc_std), _mean_std(organ.nsd_mean, organ.nsd_std)]
        lines.append("| " + " | ".join(row) + " |")
    row = ["**Mean (mDSC, mNSD)**"]
    for group in groups:
        row += [f"**{_fixed(group.mean_dsc)}**", f"**{_fixed(group.mean_nsd)}**"]
    lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    skipped = evaluation.groups["all"].not_a_number
    lines.append(
        "Mean ± population std over cases. Not a number (organ absent from reference and prediction), "
        f"left out of the means: {skipped} organ-case pair{'s' if skipped != 1 else ''}."
    )
    return "\n".join(lines) + "\n"


def print_summary(evaluation: Evaluation, output: Path) -> None:
    """A few lines on stdout: cases, mDSC and mNSD per group, tolerance, where the outputs are."""
    for name in GROUPS:
        group = evaluation.groups[name]
        if group.cases:
            print(
                f"{name:>3}: {group.cases} cases, mDSC {_fixed(group.mean_dsc)}, mNSD {_fixed(group.mean_nsd)}"
            )
    if evaluation.missing_predictions:
        print(f"predictions missing, scored as empty: {', '.join(evaluation.missing_predictions)}")
    print(f"predicted in organs no reference annotates (not scored): {unscored_text(evaluation)}")
    print(f"NSD tolerance: {_tolerance_text(evaluation)}; outputs in {output}")


def unscored_text(evaluation: Evaluation) -> str:
    """``duodenum 12.3 mL in 3 cases; bladder ...``, or "none"."""
    parts = [
        f"{ORGAN_BY_ID[label].name} {millilitres:.1f} mL in {cases} case{'s' if cases > 1 else ''}"
        for label, (millilitres, cases) in evaluation.unscored_ml().items()
    ]
    return "; ".join(parts) or "none"


def _group_dict(group: GroupSummary) -> dict:
    return {
        "cases": group.cases,
        "mDSC": group.mean_dsc,
        "mNSD": group.mean_nsd,
        "not_a_number": group.not_a_number,
        "organs": {
            organ.name: {
                "label": organ.label,
                "dsc_mean": organ.dsc_mean,
                "dsc_std": organ.dsc_std,
                "nsd_mean": organ.nsd_mean,
                "nsd_std": organ.nsd_std,
                "scored": organ.scored,
                "not_a_number": organ.not_a_number,
            }
            for organ in group.organs
        },
    }


def _tolerance_text(evaluation: Evaluation) -> str:
    values = set(evaluation.tolerances_mm.values())
    if evaluation.tolerance_profile is None and len(values) == 1:
        return f"{values.pop():g} mm for every organ"
    table = ", ".join(
        f"{ORGAN_BY_ID[label].title} {mm:g} mm" for label, mm in evaluation.tolerances_mm.items()
    )
    return f"profile {evaluation.tolerance_profile}: {table}" if evaluation.tolerance_profile else table


def _number(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _fixed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.4f}"


def _mean_std(mean: float, std: float) -> str:
    return "–" if math.isnan(mean) else f"{mean:.4f} ± {std:.4f}"
