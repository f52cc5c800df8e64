"""MetaImage (``.mha``/``.mhd``) and NRRD (``.nrrd``/``.nhdr``) text headers, checked before ITK reads them.

ITK reads ``Offset = nan 0 0`` as an origin of 0 and a NaN ``TransformMatrix`` as an error about
``0 0 0``; it reads NRRD's ``space origin: (nan,0,0)`` as a parse error about "existance" of
coefficients. The geometry fields are read here as plain text and checked to be finite numbers, and
spacings to be positive, so that the user is told which field is wrong. Files of another dimension
than 3 are left to ITK, which refuses them with its own message.
"""

from __future__ import annotations

import math
from pathlib import Path

#: Text headers are short; a header longer than this is not read further.
_MAX_HEADER_BYTES = 1 << 16

_AXES = "xyz"
_METAIMAGE_ORIGIN = ("offset", "origin", "position")
_METAIMAGE_MATRIX = ("transformmatrix", "rotation", "orientation")


def text_header_problem(path: Path) -> str | None:
    """The first unusable geometry field of a MetaImage or NRRD header, in words; None if all are sound.

    Other suffixes, and headers that cannot be parsed as text, give None: ITK then has its say.
    """
    name = path.name.lower()
    if name.endswith((".mha", ".mhd")):
        return _metaimage_problem(_header_lines(path, "elementdatafile"))
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd_problem(_header_lines(path, ""))
    return None


def _header_lines(path: Path, last_key: str) -> list[str]:
    """Header lines up to the one starting with ``last_key`` (MetaImage), or the first blank line (NRRD)."""
    with path.open("rb") as stream:
        text = stream.read(_MAX_HEADER_BYTES).decode("latin-1")
    lines = []
    for line in text.splitlines():
        if not last_key and not line.strip():
            break
        lines.append(line)
        if last_key and line.strip().lower().startswith(last_key):
            break
    return lines


def _metaimage_problem(lines: list[str]) -> str | None:
    fields = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = (key.strip(), value.strip())
    if _integer(fields.get("ndims", ("", ""))[1]) != 3:
        return None
    if "elementspacing" in fields:
        problem = _spacing_problem(*fields["elementspacing"], separator=None)
        if problem:
            return problem
    for keys, count in ((_METAIMAGE_ORIGIN, 3), (_METAIMAGE_MATRIX, 9)):
        for key in keys:
            if key in fields:
                problem = _finite_problem(*fields[key], count, separator=None)
                if problem:
                    return problem
    return None


def _nrrd_problem(lines: list[str]) -> str | None:
    if not lines or not lines[0].startswith("NRRD"):
        return None
    fields = {}
    for line in lines[1:]:
        if line.startswith("#") or ":=" in line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = (key.strip(), value.strip())
    if _integer(fields.get("dimension", ("", ""))[1]) != 3:
        return None
    if "spacings" in fields:
        problem = _spacing_problem(*fields["spacings"], separator=None)
        if problem:
            return problem
    if "space origin" in fields:
        name, value = fields["space origin"]
        problem = _finite_problem(name, value.strip("()"), 3, separator=",")
        if problem:
            return problem
    if "space directions" in fields:
        return _nrrd_directions_problem(*fields["space directions"])
    return None


def _nrrd_directions_problem(name: str, value: str) -> str | None:
    """Each axis' vector ``(a,b,c)`` must be finite and not zero (its length is the spacing); ``none`` is skipped."""
    for axis, vector in enumerate(value.split()):
        if vector.lower() == "none":
            continue
        label = f"{name} (axis {_AXES[axis] if axis < 3 else axis})"
        problem = _finite_problem(label, vector.strip("()"), 3, separator=",")
        if problem:
            return problem
        if not any(float(part) for part in vector.strip("()").split(",")):
            return f"spacing along {_AXES[axis] if axis < 3 else axis} is 0 in the header ({name})"
    return None


def _spacing_problem(name: str, value: str, separator: str | None) -> str | None:
    numbers = _numbers(value, separator)
    if numbers is None or len(numbers) < 3:
        return f"{name} in the header is not 3 numbers: {value[:60]!r}"
    for axis, spacing in enumerate(numbers[:3]):
        if not spacing > 0 or math.isinf(spacing):
            shown = "NaN" if math.isnan(spacing) else f"{spacing:g}"
            return f"spacing along {_AXES[axis]} is {shown} in the header ({name})"
    return None


def _finite_problem(name: str, value: str, count: int, separator: str | None) -> str | None:
    numbers = _numbers(value, separator)
    if numbers is None or len(numbers) < count:
        return f"{name} in the header is not {count} numbers: {value[:60]!r}"
    if any(math.isnan(number) for number in numbers[:count]):
        return f"{name} contains NaN"
    if any(math.isinf(number) for number in numbers[:count]):
        return f"{name} contains an infinite value"
    return None


def _numbers(value: str, separator: str | None) -> list[float] | None:
    try:
        return [float(part) for part in value.split(separator) if part.strip()]
    except ValueError:
        return None


def _integer(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
