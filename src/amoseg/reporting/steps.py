"""The step log ``STUDY/steps.json``: which command made which artifact, when, and how long it took.

A JSON list of steps in the order they ran. ``amoseg demo`` appends one after each stage; the report
shows them as its last table, so every number in the report can be traced to the command that made it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from amoseg.atomic import write_json
from amoseg.errors import InputError

STEPS_FILE = "steps.json"


@dataclass(frozen=True)
class Step:
    """One stage of a study.

    Attributes:
        name: short stage name, e.g. "plan".
        command: the CLI command that reproduces the stage, e.g. "amoseg plan D --preset cpu -o plans.json".
        seconds: wall-clock time the stage took.
        outputs: files or folders the stage wrote.
        started: when it started, ISO 8601 (with time zone).
    """

    name: str
    command: str
    seconds: float
    outputs: tuple[str, ...]
    started: str


def record_step(study: Path, step: Step) -> None:
    """Append ``step`` to ``study/steps.json`` (created when absent), rewriting the file atomically.

    Raises:
        InputError: the existing steps.json is unreadable (it is left as it is).
    """
    steps = read_steps(study)
    steps.append(step)
    write_json(Path(study) / STEPS_FILE, [asdict(item) for item in steps])


def read_steps(study: Path) -> list[Step]:
    """The steps of ``study/steps.json`` in the order they ran; empty when the file does not exist.

    Raises:
        InputError: the file is not JSON or not a list of steps.
    """
    path = Path(study) / STEPS_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise InputError(path, f"not valid JSON ({error}); delete it to start a new step log") from None
    if not isinstance(data, list):
        raise InputError(path, "not a step log: expected a JSON list of steps")
    try:
        return [_step(item) for item in data]
    except KeyError as error:
        raise InputError(path, f"not a step log: a step has no {error} key") from None
    except (TypeError, ValueError) as error:
        raise InputError(path, f"not a step log: {error}") from None


def _step(item: dict) -> Step:
    if not isinstance(item, dict):
        raise TypeError(f"expected an object per step, found {type(item).__name__}")
    name, command, seconds = str(item["name"]), str(item["command"]), float(item["seconds"])
    outputs = item["outputs"]
    if not isinstance(outputs, list):
        raise TypeError(f"step {name!r}: outputs must be a list of paths")
    return Step(name, command, seconds, tuple(str(output) for output in outputs), str(item["started"]))
