"""The preprocessing cache: ``PREPROCESSED/<plan id>/<case id>/`` with memory-mappable arrays.

Per case: ``image.npy`` (float32 [x, y, z], C order), ``label.npy`` (uint8, labelled cases only),
``class_locations.npz`` (one (n, 3) int32 array per label id, keys ``"1"``..``"15"``) and
``properties.json`` (``CaseProperties``). A case is written into a hidden temporary folder beside its
final one and renamed when complete, so a case folder that exists is always whole: an interrupted run
leaves at most a hidden ``.<case>.tmp<pid>`` folder, removed by the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from amoseg.atomic import write_failure_cause, write_text
from amoseg.errors import OutputError
from amoseg.planning.plan import readable_json
from amoseg.preprocessing.case import PreprocessedCase
from amoseg.preprocessing.properties import CaseProperties

PROPERTIES_FILE = "properties.json"


def is_complete(folder: Path) -> bool:
    """Whether a case folder exists with its record (only renamed into place once whole)."""
    return (folder / PROPERTIES_FILE).is_file()


def write_case(folder: str | Path, case: PreprocessedCase) -> None:
    """Write a case folder atomically, replacing an existing one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        _save(folder, "image.npy", temporary, lambda path: np.save(path, case.image))
        if case.label is not None:
            _save(folder, "label.npy", temporary, lambda path: np.save(path, case.label))
        locations = {str(k): v for k, v in case.class_locations.items()}
        _save(folder, "class_locations.npz", temporary, lambda path: np.savez(path, **locations))
        write_text(temporary / PROPERTIES_FILE, readable_json(case.properties.to_dict()))
        if folder.exists():
            retired = folder.with_name(f".{folder.name}.old{os.getpid()}")
            os.replace(folder, retired)
            os.replace(temporary, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(temporary, folder)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _save(folder: Path, name: str, temporary: Path, save) -> None:
    """Run a numpy writer; a failed write names the case's file and the cause (numpy's own message
    counts bytes and names neither)."""
    try:
        save(temporary / name)
    except OSError as error:
        cause = write_failure_cause(temporary / name, error)
        raise OutputError(folder / name, f"not written: {cause}; the case is left unfinished") from None


def load_case(folder: str | Path, mmap: bool = True) -> PreprocessedCase:
    """Read a case folder; arrays are memory-mapped read-only when ``mmap``."""
    folder = Path(folder)
    mode = "r" if mmap else None
    properties = CaseProperties.from_dict(json.loads((folder / PROPERTIES_FILE).read_text(encoding="utf-8")))
    label_path = folder / "label.npy"
    with np.load(folder / "class_locations.npz") as stored:
        locations = {int(key): stored[key] for key in stored.files}
    return PreprocessedCase(
        image=np.load(folder / "image.npy", mmap_mode=mode),
        label=np.load(label_path, mmap_mode=mode) if label_path.is_file() else None,
        class_locations=locations,
        properties=properties,
    )
