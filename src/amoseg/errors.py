"""Errors a user can act on. The CLI prints their message as one line and exits 1, with no traceback."""

from __future__ import annotations

from pathlib import Path


class AmosegError(Exception):
    """A problem with the user's input or request, explained in one line."""


class InputError(AmosegError):
    """A named file or folder is unusable: the message names the path and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):
        # Rebuilt from its two fields, so the error survives the trip back from a worker process.
        return (type(self), (self.path, self.problem))


class OutputError(InputError):
    """A named output could not be written completely (disk full, file-size limit, no permission).

    Whatever stood under that name before is kept: outputs are only renamed into place once whole.
    """
