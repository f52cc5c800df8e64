"""Measurement: do organs learned from CT only transfer to MR? The default of ``--cross-modality``.

Phantoms make the question answerable, because their MR cases have references for every organ: a CT
set annotating all 15 organs and an MR set whose label maps keep only spleen, kidneys and liver (as
CHAOS's do) are planned together (cpu preset), preprocessed into one cache and trained jointly (fold
"all", ``--minutes`` of wall clock). The held-out MR cases are then predicted twice, with only the
organs learned from MR (amoseg's default) and with those learned from CT too (``--cross-modality``),
and scored against their full references: the CT-only organs' DSC on MR is what cross-modality would
give, and the four MR organs show whether either choice costs them anything.

    .venv/bin/python bench/cross_modality.py --work /tmp/amoseg_cross_modality --minutes 10

Outputs in --work: results.json and the predictions and evaluations of both decodings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

MR_ANNOTATED = (1, 2, 3, 6)


def make_sets(work: Path, n_ct: int, n_mr: int, seed: int) -> dict[str, Path]:
    """The CT set (all organs), the MR set (four organs), and the same MR phantoms fully labelled
    (the same seed gives the same images), whose test labels are the references."""
    from amoseg import api

    sets = {"ct": work / "ct", "mr": work / "mr", "mr_full": work / "mr_full"}
    requests = {
        "ct": dict(n_ct=n_ct, n_mr=0, seed=seed),
        "mr": dict(n_ct=0, n_mr=n_mr, seed=seed + 1, annotated_labels=MR_ANNOTATED),
        "mr_full": dict(n_ct=0, n_mr=n_mr, seed=seed + 1),
    }
    for name, request in requests.items():
        if not (sets[name] / "dataset.json").is_file():
            api.phantom(output=sets[name], quiet=True, **request)
    return sets


def plan_and_preprocess(sets: dict[str, Path], work: Path):
    """One cpu plan from both sets' fingerprints, both sets preprocessed into one cache."""
    import sys

    from amoseg import api

    sys.path.insert(0, str(Path(__file__).parent))
    from real_data import joint_plan

    plan = joint_plan({"ct": sets["ct"], "mr": sets["mr"]}, "cpu", work / "stats")
    plan.save(work / "plans.json")
    for name in ("ct", "mr"):
        api.preprocess(dataset=sets[name], plan=plan, output=work / "preprocessed", quiet=True)
    return plan


def score(model, sets: dict[str, Path], work: Path, cross_modality: bool) -> dict:
    """MR test cases predicted with one decoding, scored on every organ against the full references."""
    from amoseg import api
    from amoseg.evaluation import evaluate_folder

    name = "cross_modality" if cross_modality else "learned"
    predictions = work / name / "predictions"
    api.predict(
        input=sets["mr"] / "imagesTs",
        output=predictions,
        model=model,
        modality="MR",
        postprocess=False,
        cross_modality=cross_modality,
        quiet=True,
    )
    evaluation = evaluate_folder(predictions, sets["mr_full"] / "labelsTs", labels=list(range(1, 16)))
    summary = evaluation.groups["all"]
    organs = {
        organ.name: None if np.isnan(organ.dsc_mean) else round(float(organ.dsc_mean), 4)
        for organ in summary.organs
    }
    mr_organs = [organs[name] for name in ("spleen", "right_kidney", "left_kidney", "liver")]
    ct_only = [value for key, value in organs.items() if value is not None and key not in (
        "spleen", "right_kidney", "left_kidney", "liver")]  # fmt: skip
    return {
        "organ_dsc": organs,
        "mean_dsc_mr_organs": round(float(np.mean(mr_organs)), 4),
        "mean_dsc_ct_only_organs": round(float(np.mean(ct_only)), 4) if ct_only else None,
        "cases": len(evaluation.cases),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/amoseg_cross_modality"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ct", type=int, default=16)
    parser.add_argument("--mr", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    from amoseg import api
    from amoseg.model.loading import load_model

    sets = make_sets(args.work, args.ct, args.mr, args.seed)
    plan = plan_and_preprocess(sets, args.work)
    runs = args.work / "runs"
    result = api.train(
        preprocessed=args.work / "preprocessed",
        plan=plan,
        output=runs,
        fold="all",
        time_budget=args.minutes * 60,
        resume=any((runs / "fold_all").glob("checkpoint_*.pt")),
        seed=args.seed,
        device="cpu",
        quiet=True,
    )
    model = load_model(runs / "fold_all")
    results = {
        "command": f"bench/cross_modality.py --minutes {args.minutes:g} --ct {args.ct} --mr {args.mr}",
        "iterations": result.iterations,
        "learned_labels": {key: list(value) for key, value in (model.learned or {}).items()},
        "decodings": {
            "learned": score(model, sets, args.work, cross_modality=False),
            "cross_modality": score(model, sets, args.work, cross_modality=True),
        },
    }
    (args.work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
