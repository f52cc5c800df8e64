"""Case ids from file names: plain AMOS names (``amos_0001.nii.gz``) and nnU-Net channel suffixes
(``amos_0001_0000.nii.gz``) both occur, sometimes in the same project.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from amoseg.io.sitk_io import has_image_suffix, strip_image_suffix

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def case_number(case_id: str) -> int | None:
    """The trailing number of a case id (``amos_0507`` -> 507), or None when there is none."""
    match = _TRAILING_NUMBER.search(case_id)
    return int(match.group(1)) if match else None


def is_amos_case(case_id: str) -> bool:
    """True for AMOS's own ids (``amos_0001``), for which the CT/MR id rule is authoritative."""
    return re.fullmatch(r"amos_\d{4}", case_id.lower()) is not None


def image_files(folder: Path) -> list[Path]:
    """Image files and DICOM-free entries in a folder, sorted, hidden and temporary files left out."""
    if not folder.is_dir():
        return []
    return sorted(
        path for path in folder.iterdir() if has_image_suffix(path) and not path.name.startswith(".")
    )


def split_channels(stems: Iterable[str], known_case_ids: Iterable[str] = ()) -> dict[str, tuple[str, int]]:
    """Map image file stems to (case id, channel).

    A stem that is itself a known case id (a label's name) has no channel suffix. Otherwise the
    folder is read as suffixed when every stem ends in ``_NNNN`` and, per case, the channels run
    0, 1, ... without gaps: plain AMOS names (``amos_0001``, ``amos_0004``) fail that test because
    stripping them would give one case "amos" with channels 1 and 4.
    """
    stems = list(stems)
    known = set(known_case_ids)
    result: dict[str, tuple[str, int]] = {}
    undecided = []
    for stem in stems:
        match = _CHANNEL.match(stem)
        if stem in known:
            result[stem] = (stem, 0)
        elif match and match.group("case") in known:
            result[stem] = (match.group("case"), int(match.group("channel")))
        else:
            undecided.append(stem)
    matches = [_CHANNEL.match(stem) for stem in undecided]
    channels: dict[str, set[int]] = {}
    for match in matches:
        if match:
            channels.setdefault(match.group("case"), set()).add(int(match.group("channel")))
    suffixed = all(matches) and all(found == set(range(len(found))) for found in channels.values())
    for stem, match in zip(undecided, matches, strict=True):
        result[stem] = (match.group("case"), int(match.group("channel"))) if suffixed else (stem, 0)
    return result


def case_ids_in_folder(folder: Path, known_case_ids: Iterable[str] = ()) -> dict[str, list[Path]]:
    """Case id -> image files of that case in channel order, for a folder of images or label maps."""
    files = image_files(folder)
    mapping = split_channels((strip_image_suffix(path.name) for path in files), known_case_ids)
    cases: dict[str, list[tuple[int, Path]]] = {}
    for path in files:
        case_id, channel = mapping[strip_image_suffix(path.name)]
        cases.setdefault(case_id, []).append((channel, path))
    return {case_id: [path for _, path in sorted(items)] for case_id, items in sorted(cases.items())}


def same_name_files(folder: Path) -> dict[str, list[Path]]:
    """Names stored twice in one folder under different suffixes (``amos_0001.nii`` beside
    ``amos_0001.nii.gz``): name -> the files. Every reader must refuse these rather than pick one."""
    groups: dict[str, list[Path]] = {}
    for path in image_files(folder):
        groups.setdefault(strip_image_suffix(path.name), []).append(path)
    return {name: paths for name, paths in groups.items() if len(paths) > 1}


def describe_same_name(name: str, paths: list[Path]) -> str:
    """The one-line problem for ``same_name_files``' entries."""
    return f"{len(paths)} files for {name} ({', '.join(path.name for path in paths)}); keep one"
