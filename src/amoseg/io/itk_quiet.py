"""Keeping ITK's own console output off the terminal: amoseg reports every problem itself, in one line.

Importing this module turns off ITK's warnings (``Non uniform sampling``, ``unexpected scales in
sform``...), which would otherwise be printed on stderr before amoseg's own message. C code under ITK
prints on its own too (the NIfTI library's ``** ERROR: NWAD`` on a failed write, MetaIO's stream
errors); ``quiet_itk`` catches that by pointing file descriptor 2 at a temporary file around a call.

What was caught is written back to stderr once the call succeeds, so nothing another thread printed
in the meantime is lost; it is dropped when the call fails, because amoseg then says what went wrong.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

import SimpleITK as sitk

sitk.ProcessObject.SetGlobalWarningDisplay(False)

_STDERR_FD = 2

# File descriptor 2 is shared by every thread: the first thread in redirects it, the last one out
# restores it, and in between the others write into the same capture.
_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_capture: IO[bytes] | None = None
_failed = False


@contextlib.contextmanager
def quiet_itk() -> Iterator[None]:
    """Catch what C code prints on stderr inside the block; replay it on success, drop it on failure.

    Safe with threads (overlapping blocks share one capture, replayed only if none of them failed)
    and re-entrant. When stderr cannot be redirected (no descriptor 2, no temporary file), the block
    runs as it is.
    """
    _enter()
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _leave(failed)


def _enter() -> None:
    global _depth, _saved_fd, _capture, _failed
    with _lock:
        if _depth == 0:
            _flush_python_stderr()
            _saved_fd, _capture = _redirect()
            _failed = False
        _depth += 1


def _redirect() -> tuple[int | None, IO[bytes] | None]:
    """Point descriptor 2 at a new temporary file; (saved descriptor, file), or (None, None) if impossible."""
    try:
        capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed when the last block leaves)
    except OSError:
        return None, None
    try:
        saved = os.dup(_STDERR_FD)
    except OSError:
        capture.close()
        return None, None
    try:
        os.dup2(capture.fileno(), _STDERR_FD)
    except OSError:
        os.close(saved)
        capture.close()
        return None, None
    return saved, capture


def _leave(failed: bool) -> None:
    global _depth, _saved_fd, _capture, _failed
    with _lock:
        _failed = _failed or failed
        _depth -= 1
        if _depth or _saved_fd is None or _capture is None:
            return
        _flush_python_stderr()
        os.dup2(_saved_fd, _STDERR_FD)
        os.close(_saved_fd)
        capture, _saved_fd, _capture = _capture, None, None
        with capture:
            if not _failed:
                capture.seek(0)
                _write_all(capture.read())


def _flush_python_stderr() -> None:
    # Python's own buffered stderr must reach the descriptor it was meant for before the switch.
    with contextlib.suppress(Exception):
        sys.stderr.flush()


def _write_all(data: bytes) -> None:
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(_STDERR_FD, data) :]
