"""Test helpers: tiny hand-built datasets, and the real data beside the clone when present."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amoseg.io import Image, LabelMap, make_geometry, write_image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def real_dataset(name: str) -> Path:
    """Path of a real dataset in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not (path / "dataset.json").is_file():
        pytest.skip(f"{path} not found: real-data tests need ../shared/data beside the clone")
    return path


def box_case(
    shape=(24, 20, 12), spacing=(1.5, 1.5, 4.0), origin=(10.0, -20.0, 5.0), direction=None, ct=True, seed=0
) -> tuple[Image, LabelMap]:
    """A small image with two box-shaped organs (liver 6, spleen 1): enough for layout and check tests."""
    rng = np.random.default_rng(seed)
    geometry = make_geometry(shape, spacing, origin, direction)
    label = np.zeros(shape, dtype=np.uint8)
    label[2:10, 3:12, 2:8] = 6
    label[14:20, 5:10, 3:7] = 1
    if ct:
        image = np.full(shape, -1000, dtype=np.int16)
        image[1:-1, 1:-1, :] = -100
        image[label == 6] = 50
        image[label == 1] = 30
        image = (image + rng.integers(-5, 6, size=shape)).astype(np.int16)
    else:
        image = (
            (label.astype(np.float32) * 20 + 100 + rng.normal(0, 5, size=shape)).clip(0).astype(np.float32)
        )
    return Image(image, geometry), LabelMap(label, geometry)


def write_box_dataset(
    root: Path, case_numbers=(1, 2, 3, 501), listed: bool = True, suffix: bool = False
) -> Path:
    """An AMOS-layout dataset of box cases; CT below id 501, MR from 501 on."""
    entries = []
    for number in case_numbers:
        case_id = f"amos_{number:04d}"
        image, label = box_case(ct=number <= 500, seed=number)
        image_name = f"{case_id}_0000.nii.gz" if suffix else f"{case_id}.nii.gz"
        write_image(image, root / "imagesTr" / image_name)
        write_image(label, root / "labelsTr" / f"{case_id}.nii.gz")
        entries.append({"image": f"./imagesTr/{image_name}", "label": f"./labelsTr/{case_id}.nii.gz"})
    meta = {
        "name": "boxes",
        "labels": {"0": "background", "1": "spleen", "6": "liver"},
        "modality": {"0": "CT"},
        "numTraining": len(entries),
    }
    if listed:
        meta["training"] = entries
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root


def write_dicom_series(folder, array: np.ndarray, spacing, origin, modality: str = "CT") -> None:
    """Write a volume indexed [x, y, z] as a DICOM series, one file per slice."""
    import SimpleITK as sitk

    folder.mkdir()
    volume = sitk.GetImageFromArray(np.ascontiguousarray(array.T))
    volume.SetSpacing(spacing)
    volume.SetOrigin(origin)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    tags = {
        "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
        "0020|000e": "1.2.826.0.1.3680043.2.1125.2",
        "0008|0060": modality,
        "0020|0037": "1\\0\\0\\0\\1\\0",
    }
    for k in range(array.shape[2]):
        slice_image = volume[:, :, k]
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{value:.6f}" for value in position))
        slice_image.SetMetaData("0020|0013", str(k))
        slice_image.SetMetaData("0008|0018", f"1.2.826.0.1.3680043.2.1125.3.{k}")
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(slice_image)


def run_amoseg(*arguments, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """``amoseg ARGUMENTS`` in a fresh process, optionally under ``ulimit -f`` (bytes)."""
    return _run([sys.executable, "-m", "amoseg", *map(str, arguments)], file_size_limit)


def run_python(code: str, *arguments, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -c CODE ARGUMENTS`` in a fresh process, optionally under ``ulimit -f`` (bytes)."""
    return _run([sys.executable, "-c", code, *map(str, arguments)], file_size_limit)


def _run(argv: list[str], file_size_limit: int | None) -> subprocess.CompletedProcess:
    def limit() -> None:
        # Runs in the child before it starts; writes past the limit fail with EFBIG, as Python
        # ignores SIGXFSZ.
        if file_size_limit is not None:
            hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, hard))

    return subprocess.run(
        argv,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        preexec_fn=limit,
        timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def one_error_line(stderr: str, *fragments: str) -> str:
    """The single line a failing command prints; fails unless it names every fragment."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("amoseg ") and ": error: " in lines[0], lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime in ns) of every file under ``root``: equal snapshots, untouched."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def renamed_copy(dataset: Path, target: Path, name: str, id_offset: int = 0) -> Path:
    """A copy of ``dataset`` called ``name`` in its dataset.json, its ``amos_NNNN`` case ids moved by
    ``id_offset`` (``amos_0001`` -> ``amos_0101`` for 100; CT stays below 501, MR from it on, when the
    offset keeps them there). The copy's folders are scanned: dataset.json lists no case."""
    shutil.copytree(dataset, target)
    meta = json.loads((target / "dataset.json").read_text())
    meta["name"] = name
    for key in ("training", "validation", "test"):
        meta.pop(key, None)
    for path in target.glob("*/amos_*"):
        number = int(path.name[5:9])
        path.rename(path.with_name(f"amos_{number + id_offset:04d}{path.name[9:]}"))
    (target / "dataset.json").write_text(json.dumps(meta))
    return target


def two_box_datasets(tmp_path: Path) -> tuple[Path, Path]:
    """Two box datasets with distinct names and case ids, both with CT and MR cases."""
    first = write_box_dataset(tmp_path / "first")
    second = write_box_dataset(tmp_path / "second", case_numbers=(4, 5, 502))
    meta = json.loads((second / "dataset.json").read_text())
    (second / "dataset.json").write_text(json.dumps({**meta, "name": "second boxes"}))
    return first, second
