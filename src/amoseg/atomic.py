"""Files: atomic writes (a temporary file beside the target, then a rename) and guarded JSON reads.

A crash, a Ctrl-C, a full disk or a file-size limit therefore never leaves a half-written file under
the final name: a write that fails, or whose result does not verify, raises ``OutputError`` naming
the file and the cause, and the previous file (if any) stays as it was. Temporaries left by a killed
process are hidden (``.name.tmp<pid>...``) and removed by ``remove_stale_temporaries``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from amoseg.errors import InputError, OutputError

#: Verifies a finished temporary file: None when it is complete, else what is wrong with it.
Verifier = Callable[[Path], "str | None"]

#: Below this many free bytes a failed write is put down to a full disk.
_NEARLY_FULL_BYTES = 1 << 20


def temporary_sibling(path: Path) -> Path:
    """A hidden name in the target's folder that keeps the full suffix (writers pick formats by it)."""
    stem, suffix = _split_suffix(path.name)
    return path.with_name(f".{stem}.tmp{os.getpid()}{suffix}")


def _split_suffix(name: str) -> tuple[str, str]:
    suffix = "".join(Path(name).suffixes)
    return (name[: len(name) - len(suffix)], suffix) if suffix and suffix != name else (name, "")


@contextlib.contextmanager
def atomic_path(path: str | Path, verify: Verifier | None = None) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``, on failure removed.

    Args:
        path: the final name.
        verify: called on the finished temporary file before the rename, for writers that do not
            report their own failures (ITK's NIfTI writer cuts a file short without an error).

    Raises:
        OutputError: the write raised ``OSError``, or ``verify`` found the file incomplete; the
            message names ``path`` and the cause (disk full, file-size limit, permission).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            target.parent, f"folder cannot be created ({_cause(target.parent, error)})"
        ) from None
    temporary = temporary_sibling(target)
    try:
        yield temporary
        problem = verify(temporary) if verify is not None else None
        if problem is not None:
            raise OutputError(target, f"not written: {_cause(temporary, None, problem)}; nothing replaced")
        os.replace(temporary, target)
    except OSError as error:
        raise OutputError(target, f"not written: {_cause(temporary, error)}; nothing replaced") from None
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[Path], None], verify: Verifier | None = None) -> None:
    """Call ``write(temporary_path)`` and move the result to ``path`` only once it is complete.

    Writers that report a failed write as ``RuntimeError`` (``torch.save``) are treated as ``OSError``.
    """
    with atomic_path(path, verify) as temporary:
        try:
            write(temporary)
        except RuntimeError as error:
            raise OSError(str(error)) from None


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically, indented for people; NaN is written as null so any parser reads it."""
    write_text(path, json.dumps(_nan_to_none(data), indent=2, allow_nan=False) + "\n")


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; any way it can be unreadable is an ``InputError`` naming it.

    Raises:
        InputError: missing, not UTF-8, not JSON, or nested too deeply to parse (a hostile file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, f"{what} not found") from None
    except UnicodeDecodeError:
        raise InputError(path, f"{what} is not UTF-8 text") from None
    except OSError as error:
        raise InputError(path, f"{what} cannot be read ({error.strerror or error})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"not valid JSON ({error})") from None
    except RecursionError:
        raise InputError(path, "JSON nested too deeply to be a real file; refused") from None


def write_failure_cause(path: str | Path, error: BaseException | None = None) -> str:
    """Why a write to ``path`` failed, in words a user can act on."""
    return _cause(Path(path), error if isinstance(error, OSError) else None)


def _cause(path: Path, error: OSError | None, fallback: str | None = None) -> str:
    code = getattr(error, "errno", None)
    known = {
        errno.ENOSPC: "disk full (no space left on device)",
        errno.EFBIG: "file too large (the process's file-size limit, ulimit -f, was reached)",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "read-only file system",
    }
    if code in known:
        return known[code]
    # Writers that swallow the errno (ITK, numpy) leave the cause to be read off the system.
    if _free_bytes(path.parent) < _NEARLY_FULL_BYTES:
        return known[errno.ENOSPC]
    if _at_file_size_limit(path):
        return known[errno.EFBIG]
    if error is not None:
        return error.strerror or str(error) or type(error).__name__
    return fallback or "the written file is incomplete"


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return _NEARLY_FULL_BYTES  # unknown: do not claim a full disk


def _at_file_size_limit(path: Path) -> bool:
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, ValueError, OSError):
        return False
    if limit == resource.RLIM_INFINITY:
        return False
    try:
        return path.stat().st_size >= limit
    except OSError:
        return False


def remove_stale_temporaries(folder: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete hidden temporaries (files or folders) in ``folder`` left by processes no longer alive.

    Temporaries are named ``.<name>.tmp<pid>[suffix]`` (``temporary_sibling``) or ``.<name>.old<pid>``
    (a folder being replaced); one whose process still runs, such as a concurrent run's, is kept.

    Args:
        folder: where to look.
        names: only the temporaries of outputs with these names (suffixes do not matter), for
            folders that also hold the user's own files; None: every temporary (a folder amoseg owns).

    Returns:
        the paths removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    stems = None if names is None else {_split_suffix(name)[0] for name in names}
    for marker in (".tmp", ".old"):
        for path in folder.glob(f".*{marker}*"):
            if stems is not None and path.name[1:].rsplit(marker, 1)[0] not in stems:
                continue
            digits = path.name.rsplit(marker, 1)[-1].split(".", 1)[0]
            if not digits.isdigit() or _alive(int(digits)):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(item) for item in value]
    return value
