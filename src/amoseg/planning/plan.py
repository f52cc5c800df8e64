"""The plan: a frozen, typed record of every decision ``amoseg plan`` made, saved as ``plans.json``.

Vectors are in the canonical orientation's axis order (x toward patient left, y toward posterior,
z toward superior; see ``amoseg.io.orientation``). The plan id is the preset name and a
short hash of the plan's content, so any change (a new fingerprint, a hand-edited batch size) gives a
new id and a new preprocessing cache folder; a stale cache can never be picked up. Two fields describe
rather than decide, and stay out of the id: the training step measured on the planning machine, and
the quality reference copied from the fingerprint (what the training data looked like, carried to the
trained model for the quality flags of its predictions).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from amoseg.data.reference import QualityReference
from amoseg.errors import InputError
from amoseg.labels import MAX_LABEL, Modality
from amoseg.planning.spacing import ANISOTROPY_THRESHOLD

PLAN_VERSION = 1
#: The file a plan is saved as, by `amoseg plan` and beside every cache and trained fold.
PLANS_FILE = "plans.json"
PRESETS = ("fullres", "fast", "cpu")
Preset = Literal["fullres", "fast", "cpu"]
Vector3 = tuple[float, float, float]
Int3 = tuple[int, int, int]
#: A JSON list holding no list or object, as json.dumps(indent=2) spreads it over lines.
_FLAT_LIST = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)
#: A range of the quality reference, ``{"min": .., "max": .., "cases": ..}`` (cases optional).
_RANGE = re.compile(r'\{\s*("min": [^,{}\[\]]+),\s*("max": [^,{}\[\]]+?)(?:,\s*("cases": \d+))?\s*\}', re.S)
#: Fields that describe the plan without changing what it decides, left out of the plan id.
_DESCRIPTIVE = ("measured_step", "quality_reference")


@dataclass(frozen=True)
class NormalizationScheme:
    """How images of one modality are normalized; see ``amoseg.preprocessing.normalize``.

    Attributes:
        modality: CT or MR.
        method: "dataset_foreground" (fixed numbers from the dataset's foreground, CT) or
            "per_image_body" (each image's own body statistics, MR).
        clip_low, clip_high: intensity window (HU) for "dataset_foreground".
        mean, std: foreground mean and standard deviation (HU) for "dataset_foreground".
        percentile_low, percentile_high: percentiles (0..100) of the body voxels that each image is
            clipped to for "per_image_body".
    """

    modality: Modality
    method: Literal["dataset_foreground", "per_image_body"]
    clip_low: float | None = None
    clip_high: float | None = None
    mean: float | None = None
    std: float | None = None
    percentile_low: float | None = None
    percentile_high: float | None = None


@dataclass(frozen=True)
class NetworkTopology:
    """Constructor arguments of MONAI's ``DynUNet``, exactly as passed (see ``model.network``).

    Attributes:
        kernel_size: convolution kernel per stage (x, y, z); 1 on an axis much coarser than the others.
        strides: stride per stage (x, y, z); the first is (1, 1, 1), later ones pool by 2 or 1.
        upsample_kernel_size: ``strides[1:]``.
        filters: features per stage, 32 doubling up to 320 (GPU presets).
        norm_name: MONAI's norm argument: a name, or (name, keyword arguments) such as
            ``("instance", {"affine": True})``, nnU-Net's instance norm with a learned scale and shift.
        deep_supr_num: extra deep-supervision heads besides the full-resolution output.
        single_conv_blocks: the full-resolution encoder block and every decoder block run one
            convolution (with its norm and activation) instead of DynUNet's two (cpu preset; applied
            by ``model.network.build_network``, not a DynUNet argument).
    """

    spatial_dims: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[Int3, ...]
    strides: tuple[Int3, ...]
    upsample_kernel_size: tuple[Int3, ...]
    filters: tuple[int, ...]
    norm_name: str | tuple[str, dict[str, Any]] = "instance"
    deep_supervision: bool = True
    deep_supr_num: int = 1
    res_block: bool = False
    single_conv_blocks: bool = False

    @property
    def num_stages(self) -> int:
        return len(self.strides)

    def to_dict(self) -> dict[str, Any]:
        """The fields, tuples as plain lists (JSON and ``weights_only`` checkpoints).

        ``single_conv_blocks`` only when set: plans and checkpoints written before it existed keep
        their content, and so their plan ids.
        """
        values = asdict(self)
        for key in ("kernel_size", "strides", "upsample_kernel_size", "filters"):
            values[key] = [list(value) if isinstance(value, tuple) else value for value in values[key]]
        if not self.single_conv_blocks:
            del values["single_conv_blocks"]
        return values

    def dynunet_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``monai.networks.nets.DynUNet``: every field but ``single_conv_blocks``."""
        kwargs = self.to_dict()
        kwargs.pop("single_conv_blocks", None)
        return kwargs


@dataclass(frozen=True)
class MeasuredStep:
    """One training step of a plan's network as the machine that planned it ran it (cpu preset).

    Attributes:
        seconds: wall time of one training step (forward, loss, backward, update), best of the timed
            repeats, in the precision training will use on that machine.
        precision: "float32", or "bfloat16" where the CPU computes it natively.
        cpu: the processor's model name.
        instruction_set: torch's CPU capability (e.g. "AVX2"), with any oneDNN cap in force.
        threads: torch threads the step ran on.
        gflops: the training FLOPs of the compute model per second achieved.
    """

    seconds: float
    precision: str
    cpu: str
    instruction_set: str
    threads: int
    gflops: float

    def describe(self) -> str:
        return (
            f"{self.seconds:.2f} s per step measured on {self.cpu} ({self.instruction_set}, {self.threads} "
            f"threads, {self.precision})"
        )


@dataclass(frozen=True)
class ResamplingScheme:
    """Kernels used by preprocessing (see ``amoseg.preprocessing.resample``).

    Attributes:
        image_kernel: in-plane kernel for images.
        low_resolution_kernel: image kernel along a strongly anisotropic (thick-slice) axis.
        label_kernel: kernel for each class's one-hot mask. Cubic rather than nnU-Net's linear: a
            label map taken to plan space and back keeps small organs better (docs/preprocessing.md).
        anisotropy_threshold: an axis is low-resolution beyond this many times the finest spacing.
    """

    image_kernel: str = "cubic"
    low_resolution_kernel: str = "linear"
    label_kernel: str = "cubic"
    anisotropy_threshold: float = ANISOTROPY_THRESHOLD


@dataclass(frozen=True)
class Plan:
    """Everything training and preprocessing need to agree on.

    Attributes:
        preset: fullres, fast or cpu.
        dataset: dataset name from the fingerprint.
        target_spacing_mm: voxel size after resampling (x, y, z), canonical orientation.
        median_shape: median case shape after cropping and resampling (x, y, z), voxels.
        patch_size: training patch (x, y, z), voxels; divisible by the network's total stride.
        batch_size: patches per training step.
        network: the DynUNet topology.
        normalization: scheme per modality ("CT", "MR"); a modality missing here cannot be preprocessed.
        resampling: kernels used by preprocessing.
        device: "cuda" for the GPU presets, "cpu" for the cpu preset.
        memory_budget_gb: training memory the patch and batch were sized for (GPU presets).
        estimated_memory_gb: the memory model's estimate for one training step at this patch and batch.
        step_budget_s: target seconds per training step (cpu preset).
        estimated_step_s: the compute model's estimate for one training step at its reference speed
            (cpu preset planned without measuring; None when ``measured_step`` sized the plan).
        measured_step: a training step of this plan measured on the machine that planned it (cpu
            preset), which sized the patch; not part of the plan id, as it describes the machine.
        orientation: canonical orientation the arrays are stored in.
        num_classes: output channels, background included.
        plan_version: format version of this record.
        quality_reference: the fingerprint's quality reference (``amoseg.data.reference``): the ranges
            of organ volume, mean intensity and position in the training data. Not part of the plan
            id: it changes nothing training or preprocessing do. None when the fingerprint had none.
    """

    preset: str
    dataset: str
    target_spacing_mm: Vector3
    median_shape: Int3
    patch_size: Int3
    batch_size: int
    network: NetworkTopology
    normalization: Mapping[str, NormalizationScheme]
    resampling: ResamplingScheme = field(default_factory=ResamplingScheme)
    device: str = "cuda"
    memory_budget_gb: float | None = None
    estimated_memory_gb: float | None = None
    step_budget_s: float | None = None
    estimated_step_s: float | None = None
    measured_step: MeasuredStep | None = None
    orientation: str = "LPS"
    num_classes: int = MAX_LABEL + 1
    plan_version: int = PLAN_VERSION
    quality_reference: QualityReference | None = None

    def __post_init__(self) -> None:
        # Read-only mapping: the plan stays frozen all the way down.
        object.__setattr__(self, "normalization", MappingProxyType(dict(self.normalization)))

    @property
    def planned_step_s(self) -> float | None:
        """Seconds per training step the plan was sized for: as measured on the machine that planned
        it, else the compute model's estimate (cpu preset); None for the GPU presets."""
        return self.measured_step.seconds if self.measured_step is not None else self.estimated_step_s

    @property
    def plan_id(self) -> str:
        """``<preset>_<first 10 hex digits of the SHA-256 of the canonical JSON content>``."""
        canonical = json.dumps(self._content(identity=True), sort_keys=True, separators=(",", ":"))
        return f"{self.preset}_{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"

    def _content(self, identity: bool = False) -> dict[str, Any]:
        """The fields as JSON values; for the ``identity`` (what the plan id hashes), without the
        descriptive fields, so that measuring the same plan twice, or planning it from a fingerprint
        with or without a quality reference, names the same cache."""
        content: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _DESCRIPTIVE and (identity or value is None):
                continue  # written only when present, so a plan without them reads in older amoseg
            if item.name == "normalization":
                value = {modality: asdict(scheme) for modality, scheme in sorted(value.items())}
            elif item.name == "network":
                value = value.to_dict()
            elif item.name == "resampling" or item.name == "measured_step":
                value = asdict(value)
            elif item.name == "quality_reference":
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            content[item.name] = value
        return content

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``plan_id`` first for people, the rest in field order."""
        return {"plan_id": self.plan_id, **self._content()}

    def to_json(self) -> str:
        return readable_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Rebuild a plan; the stored ``plan_id`` is ignored and recomputed from the content.

        Raises:
            ValueError: unknown or missing keys, or a newer plan format.
        """
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known - {"plan_id"})
        if unknown:
            raise ValueError(f"unknown keys {unknown}")
        if int(data.get("plan_version", PLAN_VERSION)) > PLAN_VERSION:
            raise ValueError(f"plan format {data['plan_version']} is newer than this amoseg ({PLAN_VERSION})")
        missing = sorted(
            name for name in ("preset", "target_spacing_mm", "patch_size", "network") if name not in data
        )
        if missing:
            raise ValueError(f"missing keys {missing}")
        values = {key: value for key, value in data.items() if key in known}
        network = dict(values["network"])
        for key in ("kernel_size", "strides", "upsample_kernel_size"):
            network[key] = tuple(tuple(int(v) for v in item) for item in network[key])
        network["filters"] = tuple(int(v) for v in network["filters"])
        if isinstance(network.get("norm_name"), list):
            name, arguments = network["norm_name"]
            network["norm_name"] = (str(name), dict(arguments))
        values["network"] = NetworkTopology(**network)
        values["normalization"] = {
            modality: NormalizationScheme(**scheme)
            for modality, scheme in values.get("normalization", {}).items()
        }
        values["resampling"] = ResamplingScheme(**values.get("resampling", {}))
        if values.get("measured_step") is not None:
            values["measured_step"] = MeasuredStep(**values["measured_step"])
        if values.get("quality_reference") is not None:
            values["quality_reference"] = QualityReference.from_dict(values["quality_reference"])
        values["target_spacing_mm"] = tuple(float(v) for v in values["target_spacing_mm"])
        for key in ("median_shape", "patch_size"):
            values[key] = tuple(int(v) for v in values[key])
        spacing, patch = values["target_spacing_mm"], values["patch_size"]
        if len(spacing) != 3 or not all(0 < value < math.inf for value in spacing):
            raise ValueError(
                f"target_spacing_mm must be three positive, finite sizes in mm, got {list(spacing)}"
            )
        if len(patch) != 3 or min(patch) < 1:
            raise ValueError(f"patch_size must be three positive voxel counts, got {list(patch)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write ``plans.json`` atomically."""
        from amoseg.atomic import write_text

        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read a plans.json.

        Raises:
            InputError: the file is missing, not JSON, or not a plan.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "plan file not found; create one with `amoseg plan`")
        from amoseg.atomic import read_json

        data = read_json(path, "plan file")
        try:
            if not isinstance(data, Mapping):
                raise TypeError("the file does not hold a JSON object")
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise InputError(path, f"not an amoseg plan: {error}") from None

    def normalization_for(self, modality: Modality) -> NormalizationScheme:
        """The scheme for ``modality``.

        Raises:
            AmosegError: the plan has none (its dataset held no labelled case of that modality).
        """
        from amoseg.errors import AmosegError

        if modality not in self.normalization:
            raise AmosegError(
                f"plan {self.plan_id} has no {modality} normalization: its fingerprint held no labelled "
                f"{modality} case; plan on a dataset that has some"
            )
        return self.normalization[modality]


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",")] if text.strip() else []


def readable_json(data: Any) -> str:
    """Indented JSON with each list of numbers, and each range of the quality reference, on one line,
    so vectors, kernel lists and the reference's many ranges stay readable."""
    text = json.dumps(data, indent=2, allow_nan=False)
    text = _FLAT_LIST.sub(lambda match: "[" + ", ".join(_items(match.group(1))) + "]", text)
    return (
        _RANGE.sub(lambda match: "{" + ", ".join(part for part in match.groups() if part) + "}", text) + "\n"
    )
