"""Test-time mirroring: the flips averaged are those of the axes the model was trained to be mirrored along."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amoseg.errors import AmosegError
from amoseg.inference.windows import WindowSettings, mirror_combinations, predict_probabilities


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

    def predict(mirror: bool, mirror_axes: tuple[int, ...] = ()):
        settings = WindowSettings(mirror=mirror)
        return predict_probabilities([network], image, 2, (16, 12, 8), settings, mirror_axes=mirror_axes)

    plain = predict(mirror=False, mirror_axes=(0, 1, 2))
    assert plain[1, 0].min() > 0.99 and plain[1, -1].max() < 0.01
    torch.testing.assert_close(predict(mirror=True, mirror_axes=(1, 2)), plain)
    # With x flipped too, each flip is averaged with its mirror image: every voxel is undecided.
    torch.testing.assert_close(predict(mirror=True, mirror_axes=(0, 1, 2)), torch.full_like(plain, 0.5))


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ({"step": 0}, "window step must be a fraction of the patch in \\(0, 1\\]"),
        ({"step": float("nan")}, "window step"),
        ({"step": 1.5}, "window step"),
        ({"windows_per_batch": 0}, "windows per batch must be a positive integer"),
    ],
)
def test_bad_choices_are_refused_when_made(choice, message):
    with pytest.raises(AmosegError, match=message):
        WindowSettings(**choice)


def test_without_mirror_axes_mirroring_is_one_pass():
    """The default mirror axes are the model's default, none: test-time mirroring has nothing to add."""
    image = np.zeros((16, 12, 8), np.float32)
    network = SideOfTheWindow()
    mirrored = predict_probabilities([network], image, 2, (16, 12, 8), WindowSettings(mirror=True))
    torch.testing.assert_close(mirrored, predict_probabilities([network], image, 2, (16, 12, 8)))
