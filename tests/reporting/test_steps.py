"""The step log: appended in order, rewritten whole, absent means empty, a corrupt file is named."""

from __future__ import annotations

import json

import pytest

from amoseg.errors import InputError
from amoseg.reporting.steps import Step, read_steps, record_step


def _step(name: str, seconds: float = 1.5) -> Step:
    return Step(name, f"amoseg {name} D -o out", seconds, (f"out/{name}",), "2025-01-01T10:00:00+00:00")


def test_steps_are_appended_in_order(tmp_path):
    assert read_steps(tmp_path) == []
    record_step(tmp_path, _step("stats"))
    record_step(tmp_path, _step("plan", 0.25))
    assert read_steps(tmp_path) == [_step("stats"), _step("plan", 0.25)]
    stored = json.loads((tmp_path / "steps.json").read_text())
    assert stored[1] == {
        "name": "plan",
        "command": "amoseg plan D -o out",
        "seconds": 0.25,
        "outputs": ["out/plan"],
        "started": "2025-01-01T10:00:00+00:00",
    }
    assert [path.name for path in tmp_path.iterdir()] == ["steps.json"], "no temporary file left behind"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[{", "not valid JSON"),
        ('{"name": "plan"}', "expected a JSON list"),
        ('[{"name": "plan"}]', "has no 'command' key"),
        ('[{"name": "p", "command": "c", "seconds": 1, "outputs": "o", "started": "t"}]', "list of paths"),
    ],
)
def test_a_corrupt_log_is_named_and_left_alone(tmp_path, content, fragment):
    path = tmp_path / "steps.json"
    path.write_text(content)
    with pytest.raises(InputError) as raised:
        record_step(tmp_path, _step("stats"))
    assert str(path) in str(raised.value) and fragment in str(raised.value)
    assert path.read_text() == content
