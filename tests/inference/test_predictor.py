"""Test-time mirroring: the flips averaged are those of the axes the model was trained to be mirrored along."""

from __future__ import annotations

import numpy as np
import torch

from amoseg.inference.predictor import WindowSettings, mirror_combinations, predict_probabilities


class SideOfTheWindow(torch.nn.Module):
    """Class 1 on one side of each window along x, class 0 on the other: it knows left from right only."""

    def forward(self, patches):
        size = patches.shape[2]
        ramp = (
            torch.linspace(-4.0, 4.0, size)
            .view(1, size, 1, 1)
            .expand(patches.shape[0], -1, *patches.shape[3:])
        )
        return torch.stack([ramp, -ramp], dim=1)


def test_mirror_combinations_by_hand():
    assert mirror_combinations((0, 1, 2)) == ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2))
    assert mirror_combinations((2, 1)) == ((), (1,), (2,), (1, 2))
    assert mirror_combinations(()) == ((),)


def test_mirroring_along_other_axes_leaves_a_left_right_model_alone_and_along_x_undoes_it():
    image = np.zeros((16, 12, 8), np.float32)
    network = SideOfTheWindow()

    def predict(**mirroring):
        settings = WindowSettings(patch_size=(16, 12, 8), **mirroring)
        return predict_probabilities([network], image, 2, settings)

    plain = predict(mirror=False)
    assert plain[1, 0].min() > 0.99 and plain[1, -1].max() < 0.01
    torch.testing.assert_close(predict(mirror=True, mirror_axes=(1, 2)), plain)
    # With x flipped too, each flip is averaged with its mirror image: every voxel is undecided.
    torch.testing.assert_close(predict(mirror=True, mirror_axes=(0, 1, 2)), torch.full_like(plain, 0.5))
