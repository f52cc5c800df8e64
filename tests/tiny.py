"""A tiny plan for training tests: 6 x 6 x 8 mm voxels (phantoms of about 60 x 50 x 35 voxels),
32 x 32 x 16 patches and a three-stage network of 8 to 32 features, so a training step takes tens of
milliseconds.
"""

from __future__ import annotations

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
