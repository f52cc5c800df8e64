"""Fixtures for the training tests: a tiny plan and its preprocessed phantom cache (made once per session).

The plan is built by hand: 6 x 6 x 8 mm voxels (phantoms of about 60 x 50 x 35 voxels), 32 x 32 x 16
patches and a three-stage network of 8 to 32 features, so a training step takes tens of milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amoseg.planning.plan import NetworkTopology, NormalizationScheme, Plan

PATCH = (32, 32, 16)


def tiny_plan(
    patch=PATCH, filters=(8, 16, 32), res_block: bool = False, single_conv_blocks: bool = True
) -> Plan:
    strides = ((1, 1, 1), (2, 2, 2), (2, 2, 2))
    return Plan(
        preset="cpu",
        dataset="tiny phantoms",
        target_spacing_mm=(6.0, 6.0, 8.0),
        median_shape=(60, 50, 35),
        patch_size=tuple(patch),
        batch_size=2,
        network=NetworkTopology(
            spatial_dims=3,
            in_channels=1,
            out_channels=16,
            kernel_size=((3, 3, 3),) * 3,
            strides=strides,
            upsample_kernel_size=strides[1:],
            filters=tuple(filters),
            deep_supervision=True,
            deep_supr_num=1,
            res_block=res_block,
            single_conv_blocks=single_conv_blocks,  # as the cpu preset plans it
        ),
        normalization={
            "CT": NormalizationScheme("CT", "dataset_foreground", -120.0, 250.0, 37.0, 40.0),
            "MR": NormalizationScheme("MR", "per_image_body", percentile_low=0.5, percentile_high=99.5),
        },
        device="cpu",
    )


@pytest.fixture(scope="session")
def make_tiny_plan():
    """``tiny_plan`` itself, for tests that need a variant (another patch, residual blocks)."""
    return tiny_plan


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> tuple[Plan, Path, Path]:
    """(plan, plans.json, cache root) for 4 CT and 2 MR phantoms, all labelled (no test split).

    Case amos_0502 is made partially labelled: it annotates only liver, spleen and both kidneys (as
    the CHAOS MR set does), its other organs are stored as background.
    """
    import numpy as np

    from amoseg.data.phantom import write_phantom_dataset
    from amoseg.preprocessing import preprocess_dataset

    root = tmp_path_factory.mktemp("training")
    dataset = write_phantom_dataset(
        root / "phantoms", n_ct=4, n_mr=2, seed=0, test_fraction=0.0, workers=1, progress=False
    )
    plan = tiny_plan()
    plans_json = root / "plans.json"
    plan.save(plans_json)
    preprocess_dataset(dataset, plan, root / "preprocessed", workers=2, progress=False)
    partial = root / "preprocessed" / plan.plan_id / "amos_0502"
    annotated = [1, 2, 3, 6]
    label = np.load(partial / "label.npy")
    np.save(partial / "label.npy", np.where(np.isin(label, annotated), label, 0).astype(np.uint8))
    properties = json.loads((partial / "properties.json").read_text())
    properties["annotated_labels"] = annotated
    properties["class_voxels"] = {
        key: value for key, value in properties["class_voxels"].items() if int(key) in [0, *annotated]
    }
    (partial / "properties.json").write_text(json.dumps(properties))
    return plan, plans_json, root / "preprocessed"
