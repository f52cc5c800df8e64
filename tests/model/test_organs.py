"""Which organs a prediction may hold, and folding the others into background, by hand."""

from __future__ import annotations

import torch

from amoseg.model.organs import fold_into_background, output_organs

LEARNED = {"CT": (1, 2, 3, 4, 6), "MR": (1, 6)}


def test_the_organs_of_a_modality_and_across_modalities():
    channels = range(1, 16)
    assert output_organs(channels, LEARNED, "MR") == (1, 6)
    assert output_organs(channels, LEARNED, "MR", cross_modality=True) == (1, 2, 3, 4, 6)
    assert output_organs(channels, LEARNED, "CT") == (1, 2, 3, 4, 6)
    assert output_organs(channels, None, "MR") == tuple(range(1, 16))  # a model that states nothing
    assert output_organs([6], LEARNED, "CT") == (6,)


def test_folding_adds_the_left_out_organs_to_background_and_flips_the_argmax():
    # One voxel, classes 0..3: background 0.3, liver-like class 1 at 0.35, two unlearned at 0.2 and 0.15.
    probabilities = torch.tensor([0.3, 0.35, 0.2, 0.15]).view(4, 1, 1, 1)
    assert int(torch.argmax(probabilities, 0)) == 1
    folded = fold_into_background(probabilities.clone(), organs=[1])
    torch.testing.assert_close(folded.view(-1), torch.tensor([0.65, 0.35, 0.0, 0.0]))
    assert int(torch.argmax(folded, 0)) == 0
    torch.testing.assert_close(folded.sum(0), torch.ones(1, 1, 1))
    kept = fold_into_background(probabilities.clone(), organs=[1, 2, 3])
    torch.testing.assert_close(kept, probabilities)
