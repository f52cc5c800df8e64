"""A fold's postprocessing record: its JSON round trip, refusal of a damaged one, and the folds' vote."""

from __future__ import annotations

import json
import math

import pytest

from amoseg.errors import InputError
from amoseg.model.postprocessing import (
    POSTPROCESSING_FILE,
    Postprocessing,
    load_postprocessing,
    majority_organs,
)


def test_decision_round_trips_through_json(tmp_path):
    decision = Postprocessing(
        largest_component=(6, 1),
        dice_before={"liver": 0.9, "gallbladder": math.nan},
        dice_after={"liver": 0.95, "gallbladder": math.nan},
        cases=3,
    )
    decision.save(tmp_path / POSTPROCESSING_FILE)
    stored = json.loads((tmp_path / POSTPROCESSING_FILE).read_text())
    assert stored["largest_component_names"] == ["liver", "spleen"]
    assert stored["dice_before"]["gallbladder"] is None
    loaded = load_postprocessing(tmp_path)
    assert loaded.largest_component == (1, 6) and loaded.cases == 3
    assert loaded.dice_after["liver"] == 0.95 and math.isnan(loaded.dice_after["gallbladder"])
    assert [path.name for path in tmp_path.iterdir()] == [POSTPROCESSING_FILE]
    assert load_postprocessing(tmp_path / "elsewhere") is None
    (tmp_path / POSTPROCESSING_FILE).write_text(json.dumps({**stored, "largest_component": [16]}))
    with pytest.raises(InputError, match="not a postprocessing record"):
        load_postprocessing(tmp_path)


def test_folds_vote_and_a_tie_keeps_every_component():
    def chose(*organs):
        return Postprocessing(tuple(organs), {}, {}, 1)

    assert majority_organs([chose(6, 1), chose(6), chose(1, 2)]) == (1, 6)
    assert majority_organs([chose(6), None]) == ()  # one of two is a tie
    assert majority_organs([chose(6), chose(6), None]) == (6,)
    assert majority_organs([chose(6)]) == (6,)
    assert majority_organs([None]) == ()
