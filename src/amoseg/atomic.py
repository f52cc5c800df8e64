"""Atomic writes: a temporary file beside the target, then a rename.

A crash or Ctrl-C therefore never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def temporary_sibling(path: Path) -> Path:
    """A hidden name in the target's folder that keeps the full suffix (writers pick formats by it)."""
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.tmp{os.getpid()}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``, on failure removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)`` and move the result to ``path`` only once it is complete."""
    with atomic_path(path) as temporary:
        write(temporary)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, indented for people; NaN is written as null so any parser reads it."""
    write_text(path, json.dumps(_nan_to_none(data), indent=2, allow_nan=False) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value
