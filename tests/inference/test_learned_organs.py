"""Partial labels end to end: a model trained on a CT set that annotates organs 1-12 and an MR set
that annotates 1, 2, 3 and 6 writes only what it learned (docs/inference.md, "What a model learned")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amoseg import api
from amoseg.cli import main
from amoseg.errors import AmosegWarning
from amoseg.io import read_image, read_label
from helpers import one_error_line

CT_ANNOTATED = tuple(range(1, 13))
MR_ANNOTATED = (1, 2, 3, 6)


@pytest.fixture(scope="module")
def partial_model(tmp_path_factory, make_tiny_plan):
    """(fold folder, CT set, MR set): two steps of training on both sets together, fold "all"."""
    from amoseg.preprocessing import preprocess_dataset

    root = tmp_path_factory.mktemp("partial")
    ct = api.phantom(
        output=root / "ct", n_ct=4, n_mr=0, seed=3, workers=1, annotated_labels=CT_ANNOTATED, quiet=True
    )
    mr = api.phantom(
        output=root / "mr", n_ct=0, n_mr=4, seed=3, workers=1, annotated_labels=MR_ANNOTATED, quiet=True
    )
    plan = make_tiny_plan()
    plan.save(root / "plans.json")
    for dataset in (ct, mr):
        preprocess_dataset(dataset, plan, root / "pre", workers=1, progress=False)
    api.train(
        preprocessed=root / "pre", plan=root / "plans.json", output=root / "runs", fold="all",
        epochs=1, iterations_per_epoch=3, device="cpu", threads=1, quiet=True,
    )  # fmt: skip
    return root / "runs" / "fold_all", ct, mr


def test_the_fold_records_what_it_learned_per_modality(partial_model):
    fold, _, _ = partial_model
    record = json.loads((fold / "dataset.json").read_text())
    assert record["learned_labels"] == {"CT": list(CT_ANNOTATED), "MR": list(MR_ANNOTATED)}
    assert "at least 2 training cases" in record["learned_rule"]


def test_no_voxel_of_an_organ_it_never_learned_in_any_prediction(partial_model, tmp_path):
    fold, ct, mr = partial_model
    for dataset in (ct, mr):
        api.predict(input=dataset / "imagesTs", output=tmp_path / dataset.name, model=fold, quiet=True)
    ct_values = {
        int(v) for path in (tmp_path / "ct").glob("amos_*.nii.gz") for v in np.unique(read_label(path).array)
    }
    mr_values = {
        int(v) for path in (tmp_path / "mr").glob("amos_*.nii.gz") for v in np.unique(read_label(path).array)
    }
    assert ct_values <= {0, *CT_ANNOTATED} and not ct_values & {13, 14, 15}
    # By default an MR holds only what MR taught: no gallbladder, stomach, aorta ... learned from CT.
    assert mr_values <= {0, *MR_ANNOTATED}
    written = json.loads((tmp_path / "mr" / "dataset.json").read_text())["written_organs"]
    assert written == {"CT": list(CT_ANNOTATED), "MR": list(MR_ANNOTATED)}


def test_cross_modality_lets_the_mr_hold_organs_learned_from_ct(partial_model):
    fold, _, mr = partial_model
    image = read_image(next((mr / "imagesTs").glob("*.nii.gz")))
    ct_only = [organ for organ in CT_ANNOTATED if organ not in MR_ANNOTATED]
    default = api.predict_image(image=image, model=fold, modality="MR", probabilities=True)
    crossed = api.predict_image(
        image=image, model=fold, modality="MR", probabilities=True, cross_modality=True
    )
    assert default.organs == MR_ANNOTATED and crossed.organs == CT_ANNOTATED
    assert float(np.abs(default.probabilities[ct_only]).max()) == 0.0
    assert float(crossed.probabilities[ct_only].max()) > 0.0
    assert float(crossed.probabilities[[13, 14, 15]].max()) == 0.0  # never learned: never written
    np.testing.assert_allclose(crossed.probabilities.astype(np.float32).sum(0), 1.0, atol=5e-3)


def test_organs_it_did_not_learn_are_refused_and_the_model_says_what_it_learned(
    partial_model, tmp_path, capsys
):
    fold, ct, _ = partial_model
    image = next((ct / "imagesTs").glob("*.nii.gz"))
    argv = ["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-m", str(fold)]
    assert main([*argv, "--organs", "duodenum"]) == 1
    one_error_line(
        capsys.readouterr().err, "--organs: the model did not learn duodenum", "at least 2 training cases"
    )
    assert main(["predict", "-m", str(fold), "--model-info"]) == 0
    out = capsys.readouterr().out
    assert (
        "learned from CT (12): spleen" in out
        and "learned from MR (4): spleen, right_kidney, left_kidney, liver" in out
    )
    assert "never learned, always written as background: duodenum, bladder, prostate_uterus" in out


def test_an_organ_learned_from_the_other_modality_is_left_out_with_a_warning(partial_model, tmp_path, capsys):
    fold, _, mr = partial_model
    image = next((mr / "imagesTs").glob("*.nii.gz"))
    argv = ["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-m", str(fold), "--statistics"]
    assert main([*argv, "--organs", "gallbladder,liver"]) == 0
    out = capsys.readouterr().out
    assert "gallbladder (learned from CT only) not written: the model did not learn it from MR" in out
    assert "warning: " in out and "; --cross-modality writes it" in out
    case_id = image.name.removesuffix(".nii.gz")
    statistics = json.loads((tmp_path / "out" / f"{case_id}_statistics.json").read_text())
    assert list(statistics) == ["liver"]  # only what was written, and could be


def test_the_api_warns_in_its_own_words_and_still_writes_the_rest(partial_model, tmp_path):
    fold, _, mr = partial_model
    image = next((mr / "imagesTs").glob("*.nii.gz"))
    with pytest.warns(AmosegWarning, match="gallbladder .*not written.*; `cross_modality` writes it"):
        [record] = api.predict(input=image, output=tmp_path / "out", model=fold, organs="gallbladder,liver")
    assert set(np.unique(read_label(record["output"]).array)) <= {0, 6}
