"""`pip install amoseg` gives a working tool: the declared dependencies cover every import, the exact pins
`make` installs fall inside the declared ranges, and the wheel, installed alone into a fresh virtual
environment without dev tools or extras, runs every stage from phantoms to a prediction."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "amoseg"

#: Test and lint tools: never needed at run time, and absent from a plain install.
DEV_ONLY_MODULES = ("pytest", "xdist", "ruff", "surface_distance", "absl")

#: What pip prints when no index or link it can reach offers a requirement.
NOTHING_FOUND = "No matching distribution found for"

#: Each stage of the installed tool may take this long before it counts as hung.
STAGE_TIMEOUT_S = 600


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def declared() -> dict[str, list[Requirement]]:
    """Requirements by group: "" for the runtime dependencies, else the extra's name."""
    meta = project()
    groups = {"": [Requirement(line) for line in meta["dependencies"]]}
    for extra, lines in meta["optional-dependencies"].items():
        groups[extra] = [Requirement(line) for line in lines]
    return groups


def third_party(groups: dict[str, list[Requirement]]) -> dict[str, Requirement]:
    """Every declared requirement on another project (an extra naming others of ours is not one)."""
    return {
        canonicalize_name(requirement.name): requirement
        for requirements in groups.values()
        for requirement in requirements
        if canonicalize_name(requirement.name) != "amoseg"
    }


def pins(*files: str) -> dict[str, Version]:
    """``name==version`` lines of requirement files, by canonical name."""
    found = {}
    for name in files:
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                requirement = Requirement(line)
                (specifier,) = requirement.specifier
                assert specifier.operator == "==", f"{name}: {line} is not an exact pin"
                found[canonicalize_name(requirement.name)] = Version(specifier.version)
    return found


def imported_modules(source: Path) -> dict[str, list[str]]:
    """Top-level module names imported anywhere in a package (inside functions too) -> where."""
    found: dict[str, list[str]] = {}
    for path in sorted(source.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path.relative_to(source)}:{node.lineno}")
    return found


def top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (its module body, not its functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def optional_projects() -> set[str]:
    """Projects that only an extra needs (their modules bear their names: nibabel, highdicom, pydicom)."""
    groups = declared()
    wanted = {
        canonicalize_name(requirement.name)
        for extra, group in groups.items()
        if extra
        for requirement in group
    }
    return wanted - {canonicalize_name(requirement.name) for requirement in groups[""]} - {"amoseg"}


def test_dependencies_are_ranges_with_a_floor_and_a_ceiling():
    for group, requirements in declared().items():
        for requirement in requirements:
            if canonicalize_name(requirement.name) == "amoseg":
                continue
            operators = sorted(specifier.operator for specifier in requirement.specifier)
            assert operators == ["<", ">="], f"{group or 'dependencies'}: {requirement} is not a >=,< range"


def test_monai_and_torch_are_runtime_dependencies():
    names = {canonicalize_name(requirement.name) for requirement in declared()[""]}
    assert {"torch", "monai", "simpleitk", "numpy"} <= names


def test_extras_name_their_features_and_all_holds_every_one():
    groups = declared()
    assert {canonicalize_name(r.name) for r in groups["dicom"]} == {"highdicom", "pydicom"}
    assert {canonicalize_name(r.name) for r in groups["nibabel"]} == {"nibabel"}
    (everything,) = groups["all"]
    assert canonicalize_name(everything.name) == "amoseg"
    assert everything.extras == set(groups) - {"", "all"}


def test_the_pins_make_installs_lie_inside_the_declared_ranges():
    pinned = pins("requirements.txt")
    for name, requirement in third_party(declared()).items():
        assert name in pinned, f"{requirement} is declared but requirements.txt pins no version of it"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements.txt pins {name}=={pinned[name]}, outside the declared {requirement.specifier}"
        )
    assert pins("constraints.txt")["torch"] == pinned["torch"]


def test_every_module_the_package_imports_is_declared():
    """An import of a project that pyproject.toml does not declare works in the dev environment (make
    installs it) and fails after ``pip install amoseg``: MONAI was once such a module."""
    distributions = importlib.metadata.packages_distributions()
    groups = declared()
    declared_names = set(third_party(groups))
    undeclared = []
    for module, where in sorted(imported_modules(PACKAGE).items()):
        if module in sys.stdlib_module_names or module in {"amoseg", "__future__"}:
            continue
        projects = {canonicalize_name(name) for name in distributions.get(module, [module])}
        if not projects & declared_names:
            undeclared.append(f"{module} ({', '.join(where[:3])})")
    assert undeclared == []


def test_modules_of_an_extra_are_imported_only_where_they_are_used():
    """``import amoseg.<anything>`` must work without the extras installed: their modules are imported
    inside the functions that need them."""
    distributions = importlib.metadata.packages_distributions()
    optional = optional_projects()
    eager = [
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module in sorted(top_level_imports(path))
        if {canonicalize_name(name) for name in distributions.get(module, [module])} & optional
    ]
    assert eager == []


# --- the wheel, installed alone ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip`` builds from a copy of the project (building in the clone would write build/ and
    egg-info into it), in an isolated build environment as ``pip install .`` makes it."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = _pip("wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(source))
    if built.returncode and NOTHING_FOUND in built.stdout + built.stderr:
        pytest.skip(f"pip reaches no package index to build with: {_nothing_found(built)}")
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (root / "dist").glob("amoseg-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_package_and_declares_the_ranges(wheel):
    """Package data included: whatever sits beside the modules (templates, JSON) must ship too."""
    expected = {
        f"amoseg/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
        (entry_points_name,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_points_name).decode()
    assert sorted(expected - names) == []
    assert sorted(name for name in names if not name.startswith(("amoseg/", "amoseg-"))) == []
    requires = {Requirement(value) for key, value in _fields(metadata) if key == "Requires-Dist"}
    for name, requirement in third_party(declared()).items():
        assert any(
            canonicalize_name(r.name) == name and r.specifier == requirement.specifier for r in requires
        )
    assert {value for key, value in _fields(metadata) if key == "Provides-Extra"} == {
        "dicom",
        "nibabel",
        "all",
    }
    assert re.search(r"^amoseg = amoseg\.cli:main$", entry_points, re.MULTILINE)


@pytest.mark.slow
def test_the_wheel_installed_alone_imports_cleanly_and_runs_every_stage(wheel, tmp_path):
    environment = tmp_path / "env"
    try:
        _run_in_fresh_environment(wheel, environment, tmp_path / "work")
    finally:
        shutil.rmtree(environment, ignore_errors=True)  # about 1.5 GB, mostly torch


def _run_in_fresh_environment(wheel: Path, environment: Path, work: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    python = environment / "bin" / "python"
    # This pip installs into the new environment, which gets no pip of its own (seconds saved), and no
    # .pyc files up front (the tool compiles what it imports, torch's thousands of modules need not).
    installed = _pip(
        "--python", str(python), "install", "--no-compile", "-c", str(REPO / "constraints.txt"), str(wheel)
    )
    if installed.returncode and NOTHING_FOUND in installed.stdout + installed.stderr:
        # The build found an index already; missing packages there are a real failure.
        pytest.fail(f"a dependency is not on the package index: {_nothing_found(installed)}")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    report = _check_imports(python, work)
    assert report["amoseg"].startswith(str(environment)), report["amoseg"]
    assert report["dev_tools_present"] == []
    assert report["missing_modules"] == []

    amoseg = environment / "bin" / "amoseg"
    work.mkdir(exist_ok=True)
    stages = [
        ["phantom", "D", "--ct", "2", "--mr", "1", "--seed", "0", "--workers", "1"],
        ["plan", "D", "--preset", "cpu", "--no-measure", "-o", "plans.json", "--workers", "1"],
        ["preprocess", "D", "--plan", "plans.json", "-o", "pre", "--workers", "1"],
        # One step of one patch: enough to write a model that predicts; it is not meant to be good.
        [
            *("train", "pre", "--plan", "plans.json", "--fold", "all", "-o", "runs", "--epochs", "1"),
            *("--iterations-per-epoch", "1", "--batch-size", "1", "--threads", "1", "--device", "cpu"),
        ],
        ["predict", "-i", "D/imagesTs", "-o", "predictions", "-m", "runs", "--no-tta", "--step", "1"],
    ]
    for stage in stages:
        ran = subprocess.run(
            [str(amoseg), *stage],
            cwd=work,
            env=_clean_env(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=STAGE_TIMEOUT_S,
        )
        assert ran.returncode == 0, (
            f"amoseg {' '.join(stage)} exited {ran.returncode}:\n{ran.stdout}{ran.stderr}"
        )

    import SimpleITK as sitk

    images = sorted((work / "D" / "imagesTs").glob("*.nii.gz"))
    assert images, "the phantom holds no test image to predict"
    for image_path in images:
        image = sitk.ReadImage(str(image_path))
        prediction = sitk.ReadImage(str(work / "predictions" / image_path.name))
        assert prediction.GetSize() == image.GetSize()
        assert prediction.GetSpacing() == image.GetSpacing()
        assert prediction.GetOrigin() == image.GetOrigin()
        assert prediction.GetDirection() == image.GetDirection()
        assert prediction.GetPixelID() == sitk.sitkUInt8


#: Run by the fresh environment's Python, importing nothing of amoseg: where amoseg was installed, which
#: dev tools are importable, and which modules amoseg imports anywhere (inside functions too) are not
#: installed. (Importing every amoseg module instead would cost the seconds of importing MONAI.)
_IMPORT_CHECK = """
import ast, importlib.util, json, pathlib, sys
origin = pathlib.Path(importlib.util.find_spec("amoseg").origin)
missing = set()
for path in origin.parent.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and importlib.util.find_spec(top) is None:
                missing.add(top)
print(json.dumps({
    "amoseg": str(origin),
    "dev_tools_present": [m for m in DEV_ONLY if importlib.util.find_spec(m) is not None],
    "missing_modules": sorted(missing - OPTIONAL),
}))
"""


def _check_imports(python: Path, work: Path) -> dict:
    optional = {name.replace("-", "_") for name in optional_projects()}  # not installed there
    code = f"DEV_ONLY = {DEV_ONLY_MODULES!r}\nOPTIONAL = {optional!r}\n{_IMPORT_CHECK}"
    work.mkdir(exist_ok=True)
    ran = subprocess.run(
        [str(python), "-c", code],
        cwd=work,
        env=_clean_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=STAGE_TIMEOUT_S,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


def _pip(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *arguments]
    return subprocess.run(
        command,
        cwd=REPO,
        env=_clean_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )


def _clean_env() -> dict[str, str]:
    """The caller's environment (pip's index settings included) without paths that would let the
    fresh environment see this one's packages or the clone's sources."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
    # Installed without .pyc files, the fresh environment compiles each module once, on first import:
    # far fewer than pip would compile up front, but only if writing them is allowed.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _fields(metadata: str) -> list[tuple[str, str]]:
    header = metadata.split("\n\n", 1)[0]
    return [tuple(part.strip() for part in line.split(":", 1)) for line in header.splitlines() if ":" in line]


def _nothing_found(ran: subprocess.CompletedProcess) -> str:
    """pip's line naming the requirement no index offered."""
    lines = (ran.stdout + ran.stderr).splitlines()
    return next(line.strip() for line in lines if NOTHING_FOUND in line)
