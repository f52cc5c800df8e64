"""The quality reference reaches a loaded model through its checkpoints, and the model fills in from the
AMOS card, per organ and range, what its training data did not measure or measured in too few cases."""

from __future__ import annotations

import dataclasses

import torch

from amoseg.data.amos_card import amos_card_reference
from amoseg.data.reference import (
    MIN_REFERENCE_CASES,
    ModalityReference,
    ObservedRange,
    OrganReference,
    QualityReference,
)
from amoseg.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint
from amoseg.model.loading import Model, load_model
from amoseg.model.network import build_network
from tiny import tiny_plan

LIVER = 6


def _reference(ct_cases: int, mr_cases: int) -> QualityReference:
    def modality(cases: int) -> ModalityReference:
        liver = OrganReference(
            volume_ml=ObservedRange(1000.0, 2000.0, cases), centre_above_mm={1: ObservedRange(-5, 5, cases)}
        )
        return ModalityReference("training", cases, {LIVER: liver})

    return QualityReference({"CT": modality(ct_cases), "MR": modality(mr_cases)})


def _final_checkpoint(plan) -> Checkpoint:
    torch.manual_seed(0)
    return Checkpoint(
        name="final",
        fold="0",
        plan=plan,
        topology=plan.network,
        network=build_network(plan.network).state_dict(),
        config={"mirror_axes": [0, 1, 2], "config_version": 2},
        labels={"0": "background", "1": "spleen", "6": "liver"},
        dataset={},
        epoch=1,
        iteration=1,
        elapsed_seconds=1.0,
        ema_dice=0.5,
        best_ema_dice=0.5,
        history=(),
        optimizer={},
        rng={"torch": torch.get_rng_state()},
    )


def test_the_reference_travels_in_the_checkpoint_as_plain_data_and_reaches_the_model(tmp_path):
    reference = _reference(MIN_REFERENCE_CASES, MIN_REFERENCE_CASES + 5)
    plan = dataclasses.replace(tiny_plan(), quality_reference=reference)
    save_checkpoint(tmp_path / "fold_0" / "checkpoint_final.pt", _final_checkpoint(plan))
    # weights_only loading accepts only plain values: the reference must be stored as such.
    assert read_checkpoint(tmp_path / "fold_0" / "checkpoint_final.pt").plan.quality_reference == reference
    model = load_model(tmp_path)
    assert model.plan.quality_reference == reference
    assert model.plan.plan_id == tiny_plan().plan_id
    chosen = model.quality_reference()
    for modality in ("CT", "MR"):
        liver = chosen.for_modality(modality).organs[LIVER]
        assert liver.volume_ml == reference.for_modality(modality).organs[LIVER].volume_ml
        assert liver.centre_above_mm == reference.for_modality(modality).organs[LIVER].centre_above_mm
        assert chosen.for_modality(modality).fallback == "amos_card"


def test_a_model_without_a_reference_is_checked_against_the_amos_card():
    model = Model(networks=(), plan=tiny_plan(), labels={6: "liver"})
    assert model.quality_reference() == amos_card_reference()
    assert {item.source for item in model.quality_reference().modalities.values()} == {"amos_card"}


def test_what_the_training_data_lacks_or_measured_in_too_few_cases_comes_from_the_card():
    reference = _reference(ct_cases=MIN_REFERENCE_CASES, mr_cases=MIN_REFERENCE_CASES - 1)
    model = Model(
        networks=(), plan=dataclasses.replace(tiny_plan(), quality_reference=reference), labels={6: "liver"}
    )
    card = amos_card_reference()
    ct, mr = model.quality_reference().for_modality("CT"), model.quality_reference().for_modality("MR")
    # CT: the liver's volume over 20 cases is the training one; its intensity, never measured, and
    # every other organ come from the card (Label Information Statistics, Bladder: 14 .. 1255 cm3).
    assert ct.organs[LIVER].volume_ml == ObservedRange(1000.0, 2000.0, MIN_REFERENCE_CASES)
    assert ct.organs[LIVER].intensity_mean == card.for_modality("CT").organs[LIVER].intensity_mean
    assert ct.organs[14].volume_ml == ObservedRange(14, 1255, 195, "amos_card")
    # MR, 19 cases: the card has no MR volumes, so the 19-case range stays (the report says it is too
    # few); positions stay the training data's.
    assert mr.organs[LIVER].volume_ml == ObservedRange(1000.0, 2000.0, MIN_REFERENCE_CASES - 1)
    assert mr.organs[LIVER].centre_above_mm == {1: ObservedRange(-5, 5, MIN_REFERENCE_CASES - 1)}
    assert mr.organs[LIVER].intensity_mean == ObservedRange(86.0, 277.0, None, "amos_card")
    higher = model.quality_reference(min_cases=MIN_REFERENCE_CASES + 1).for_modality("CT")
    # Label Information Statistics, Liver: 653 .. 5840 cm3 over 200 instances.
    assert higher.organs[LIVER].volume_ml == ObservedRange(653, 5840, 200, "amos_card")
