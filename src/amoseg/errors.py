"""Errors a user can act on. The CLI prints their message as one line and exits 1, with no traceback.

A message that names an argument of an ``amoseg.api`` function writes its keyword in backquotes
(`` "`modality`: unknown modality 'XR'" ``, ``"... pass `allow_missing` to score it as empty"``), and
an argument of another stage's function with that function's name before a dot
(``"rerun with `preprocess.overwrite`"``): the library knows its parameters, not the command line. The
CLI shows the flag that sets the argument in its place (``--modality``, ``--allow-missing``,
``amoseg preprocess --overwrite``) with ``name_parameters``. Warnings (``AmosegWarning``) follow the
same rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

#: An ``amoseg.api`` keyword named in a message, in backquotes: ``keyword`` or ``function.keyword``.
PARAMETER_REFERENCE = re.compile(r"`((?:[a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*)`")


class AmosegError(Exception):
    """A problem with the user's input or request, explained in one line."""


class AmosegWarning(UserWarning):
    """Something done differently from what was asked, with the work still done (one line)."""


def name_parameters(message: str, wording: Callable[[str], str | None]) -> str:
    """``message`` with each backquoted API keyword replaced by ``wording(reference)`` (``"keyword"``
    or ``"function.keyword"``); a reference for which that is None stays as written."""
    return PARAMETER_REFERENCE.sub(lambda match: wording(match.group(1)) or match.group(0), message)


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
