"""``amoseg report`` on a small study built with the real stages (stats, plan, evaluate) and a
hand-written training log: every image embedded as a PNG, every section with its tables, the numbers
equal to an independent computation from per_case.csv, and missing pieces named instead of failing.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from amoseg import api
from amoseg.cli import main
from amoseg.io import LabelMap, read_label, write_image
from amoseg.labels import ORGAN_BY_NAME
from amoseg.reporting.html import PNG_SIGNATURE, markdown_to_html, table
from amoseg.reporting.report import SECTION_IDS
from amoseg.reporting.scores import CaseMean, best_and_worst
from amoseg.reporting.steps import Step, read_steps, record_step
from amoseg.training.log import read_log

# How each training case's prediction is spoiled: (voxels to roll along x, organs to erode, organs to drop).
SPOILED = {
    "amos_0001": (2, (), ()),
    "amos_0003": (0, (6,), ()),
    "amos_0004": (1, (1, 7), (4,)),
    "amos_0501": (3, (), ()),
}


class ReportParser(HTMLParser):
    """Per section id: its tables (rows of cell texts, by table id), image sources and text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.images: list[str] = []
        self._section: str | None = None
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes["id"]
            self.sections[self._section] = {"tables": [], "table_ids": {}, "images": [], "text": []}
        elif tag == "table":
            self._table = []
            self.sections[self._section]["tables"].append(self._table)
            if "id" in attributes:
                self.sections[self._section]["table_ids"][attributes["id"]] = self._table
        elif tag == "tr":
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attributes["src"])
            if self._section:
                self.sections[self._section]["images"].append(attributes["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._section:
            self.sections[self._section]["text"].append(data)


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def section_text(parser: ReportParser, section_id: str) -> str:
    return " ".join("".join(parser.sections[section_id]["text"]).split())


def _spoil(labels: np.ndarray, shift: int, eroded: tuple[int, ...], dropped: tuple[int, ...]) -> np.ndarray:
    spoiled = np.roll(labels, shift, axis=0)
    for organ in eroded:
        mask = spoiled == organ
        spoiled[mask & ~ndimage.binary_erosion(mask, iterations=2)] = 0
    for organ in dropped:
        spoiled[spoiled == organ] = 0
    return spoiled


def _training_log(fold: Path) -> list[dict]:
    from amoseg.training.config import TrainConfig
    from amoseg.training.log import epoch_record, plot_curves, write_log

    history = []
    for epoch in range(1, 4):
        dice = [math.nan] + [min(1.0, 0.2 * epoch + 0.03 * organ) for organ in range(1, 16)]
        history.append(
            epoch_record(
                epoch=epoch,
                iteration=50 * epoch,
                lr=0.01 * (1 - epoch / 4) ** 0.9,
                train_loss=1.2 - 0.3 * epoch,
                val_loss=1.1 - 0.25 * epoch,
                dice=dice,
                ema_dice=0.15 * epoch,
                epoch_seconds=61.0,
                elapsed_seconds=61.0 * epoch,
            )
        )
    fold.mkdir(parents=True)
    write_log(fold, history)
    plot_curves(fold, history, title="fold 0")
    TrainConfig(fold="0", epochs=3, device="cpu").save(fold / "config.json")
    learned = {"CT": list(range(1, 13)), "MR": [1, 2, 3, 6]}
    (fold / "dataset.json").write_text(json.dumps({"learned_labels": learned}))
    return history


@pytest.fixture(scope="module")
def study(phantom_dataset, tmp_path_factory) -> Path:
    """A study folder as the demo lays it out, made with the real stages (no network is trained)."""
    root = tmp_path_factory.mktemp("study") / "study"
    dataset = root / "phantoms"
    shutil.copytree(phantom_dataset, dataset)
    api.check(dataset=dataset, output=root / "check.json", workers=1, quiet=True)
    api.stats(dataset=dataset, output=root / "stats", workers=1, quiet=True)
    api.plan(
        dataset=dataset,
        preset="cpu",
        output=root / "plans.json",
        stats=root / "stats",
        measure=False,
        quiet=True,
    )
    for case_id, (shift, eroded, dropped) in SPOILED.items():
        reference = read_label(dataset / "labelsTr" / f"{case_id}.nii.gz")
        spoiled = _spoil(np.asarray(reference.array), shift, eroded, dropped)
        write_image(LabelMap(spoiled, reference.geometry), root / "predictions" / f"{case_id}.nii.gz")
    api.evaluate(
        pred=root / "predictions", ref=dataset / "labelsTr", output=root / "evaluation", workers=1, quiet=True
    )
    _training_log(root / "runs" / "fold_0")
    for name, seconds in (("stats", 3.5), ("plan", 0.1), ("evaluate", 0.6)):
        record_step(
            root, Step(name, f"amoseg {name} {dataset}", seconds, (str(root / name),), "2025-01-01T10:00:00")
        )
    return root


@pytest.fixture(scope="module")
def report(study) -> ReportParser:
    assert main(["report", str(study)]) == 0
    return parse(study / "report.html")


def per_case_rows(study: Path) -> list[dict]:
    with open(study / "evaluation" / "per_case.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_image_is_an_embedded_png(report):
    assert len(report.images) >= 9  # 4 card plots, curves, box plots, 2 overlays for each of 2 cases
    for source in report.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)


def test_each_section_is_there_with_its_tables(report):
    assert list(report.sections) == list(SECTION_IDS)
    expected_tables = {
        "study": {"study-table", "versions-table"},
        "plan": {"plan-table", "normalization-table"},
        "training": {"training-fold_0", "training-fold_0-organs", "learned-fold_0"},
        "evaluation": {"evaluation-dsc", "evaluation-nsd"},
        "cases": {"cases-ranking"},
        "steps": {"steps-table"},
    }
    for section_id, table_ids in expected_tables.items():
        assert table_ids <= set(report.sections[section_id]["table_ids"]), section_id
    assert len(report.sections["dataset"]["tables"]) == 5, "meta, resolution, CT and MR intensity, labels"
    assert len(report.sections["dataset"]["images"]) == 4
    for section_id in SECTION_IDS:
        assert "not found" not in section_text(report, section_id), section_id


def test_plan_and_training_figures(report, study):
    from amoseg.planning import Plan

    plan = Plan.load(study / "plans.json")
    fields = dict(report.sections["plan"]["table_ids"]["plan-table"][1:])
    assert fields["Plan id"] == plan.plan_id
    assert fields["Preset"] == "cpu"
    assert fields["Batch size"] == str(plan.batch_size)
    assert fields["Filters per stage"] == ", ".join(map(str, plan.network.filters))
    assert plan.network.single_conv_blocks  # the cpu preset's
    assert fields["Convolutions per block"] == "1 at full resolution and in the decoder, else 2"
    last = read_log(study / "runs" / "fold_0")[-1]
    training = dict(report.sections["training"]["table_ids"]["training-fold_0"][1:])
    assert training["Epochs"].startswith(f"{last['epoch']} of ")
    assert training["Iterations"] == str(last["iteration"])
    organs = report.sections["training"]["table_ids"]["training-fold_0-organs"][1:]
    assert len(organs) == 15 and organs[0] == ["Spleen", f"{last['pseudo_dice']['spleen']:.4f}"]
    assert (
        len(report.sections["training"]["images"]) == 2
    )  # the curves, and the per-organ curves drawn from the log
    learned = report.sections["training"]["table_ids"]["learned-fold_0"][1:]
    assert learned[1] == ["MR", "Spleen, Right kidney, Left kidney, Liver"]
    assert learned[2] == ["never learned (written as background)", "Duodenum, Bladder, Prostate/uterus"]


def test_dsc_and_nsd_tables_equal_the_per_case_means(report, study):
    rows = per_case_rows(study)
    for metric in ("dsc", "nsd"):
        table_rows = report.sections["evaluation"]["table_ids"][f"evaluation-{metric}"]
        header, body = table_rows[0], table_rows[1:]
        cases = {
            modality: len({row["case"] for row in rows if row["modality"] == modality})
            for modality in ("CT", "MR")
        }
        assert header[1].startswith(f"CT ({cases['CT']} case") and header[2].startswith(
            f"MR ({cases['MR']} case"
        )
        organs = {row[0]: row for row in body}
        for organ, entry in ORGAN_BY_NAME.items():
            for column, modality in ((1, "CT"), (2, "MR")):
                values = [
                    float(row[metric])
                    for row in rows
                    if row["organ"] == organ and row["modality"] == modality and row[metric]
                ]
                cell = organs[entry.title][column]
                shown = cell.split(" (empty in ")[0]  # an organ some predictions miss says so after its mean
                shown_mean, shown_std = (float(part) for part in shown.split(" ± "))
                assert shown_mean == pytest.approx(statistics.mean(values), abs=5.1e-5), (organ, modality)
                assert shown_std == pytest.approx(statistics.pstdev(values), abs=5.1e-5), (organ, modality)
                empty = [
                    row["case"]
                    for row in rows
                    if row["organ"] == organ and row["modality"] == modality
                    and float(row["ref_volume_ml"]) > 0 and float(row["pred_volume_ml"]) == 0
                ]  # fmt: skip
                present = [
                    row["case"]
                    for row in rows
                    if row["organ"] == organ
                    and row["modality"] == modality
                    and float(row["ref_volume_ml"]) > 0
                ]
                if empty:
                    assert cell.endswith(f"(empty in {len(empty)}/{len(present)})"), (organ, cell)
                else:
                    assert "empty" not in cell


def test_best_and_worst_cases_are_named(report, study):
    means: dict[str, list[float]] = {}
    for row in per_case_rows(study):
        if row["dsc"]:
            means.setdefault(row["case"], []).append(float(row["dsc"]))
    ranked = sorted(means, key=lambda case: statistics.mean(means[case]))
    worst, best = ranked[0], ranked[-1]
    assert best != worst
    ranking = report.sections["cases"]["table_ids"]["cases-ranking"]
    # Every case, best first, so the margin between neighbours shows.
    assert [row[1] for row in ranking[1:]] == ranked[::-1]
    assert [row[0] for row in ranking[1:]] == [str(rank) for rank in range(1, len(ranked) + 1)]
    assert float(ranking[1][3]) == pytest.approx(statistics.mean(means[best]), abs=5.1e-5)
    text = section_text(report, "cases")
    assert f"Best case: {best}" in text and f"Worst case: {worst}" in text
    # One figure for the best and the worst case, and one through each organ for that organ's worst case.
    worst_rows = report.sections["cases"]["table_ids"]["cases-worst-per-organ"][1:]
    assert len(report.sections["cases"]["images"]) == 2 + len(worst_rows)
    for organ_title, case, dsc, _ in worst_rows:
        organ = next(entry for entry in ORGAN_BY_NAME.values() if entry.title == organ_title)
        lowest = min(
            (float(row["dsc"]), row["case"])
            for row in per_case_rows(study)
            if row["organ"] == organ.name and row["dsc"]
        )
        assert case == lowest[1] and (dsc == "empty" or float(dsc) == pytest.approx(lowest[0], abs=5.1e-5))


def test_steps_table(report, study):
    steps = read_steps(study)
    rows = report.sections["steps"]["table_ids"]["steps-table"]
    assert [row[0] for row in rows[1:]] == [*(step.name for step in steps), "total"]
    assert rows[-1][2] == f"{sum(step.seconds for step in steps):.2f}"


def test_missing_pieces_are_named(study, tmp_path):
    """A study made by hand with only stats and a plan: the other sections say which file is missing."""
    partial = tmp_path / "partial"
    shutil.copytree(study / "stats", partial / "stats")
    shutil.copy(study / "plans.json", partial / "plans.json")
    output = api.report(study=partial, output=tmp_path / "out" / "r.html", quiet=True)
    assert output == tmp_path / "out" / "r.html"
    parsed = parse(output)
    assert list(parsed.sections) == list(SECTION_IDS)
    assert "plan-table" in parsed.sections["plan"]["table_ids"]
    evaluation = section_text(parsed, "evaluation")
    assert f"{partial / 'evaluation' / 'summary.json'} not found" in evaluation
    assert f"{partial / 'evaluation' / 'per_case.csv'} not found" in evaluation
    assert "amoseg evaluate" in evaluation
    assert "not found" in section_text(parsed, "training")
    assert f"{partial / 'steps.json'} not found" in section_text(parsed, "steps")
    assert not parsed.sections["evaluation"]["tables"]


def test_a_missing_dataset_is_named_in_the_cases_section(study, tmp_path):
    moved = tmp_path / "study"
    moved.mkdir()
    for name in ("evaluation", "predictions"):
        (moved / name).symlink_to(study / name)
    parsed = parse(api.report(study=moved, quiet=True))
    text = section_text(parsed, "cases")
    assert "--dataset DATASET_DIR" in text
    assert "cases-ranking" in parsed.sections["cases"]["table_ids"]


@pytest.mark.parametrize("make", ["absent", "empty"])
def test_cli_refuses_a_folder_that_is_not_a_study(tmp_path, capsys, make):
    folder = tmp_path / "nothing"
    if make == "empty":
        folder.mkdir()
    assert main(["report", str(folder)]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amoseg report: error: "), err
    assert str(folder) in lines[0]
    assert ("study folder not found" if make == "absent" else "no study artifacts found") in lines[0]
    assert not (folder / "report.html").exists()


def test_best_and_worst_break_ties_by_case_id():
    means = [
        CaseMean("b", "CT", 0.8, 0.7, 3),
        CaseMean("a", "CT", 0.8, 0.6, 3),
        CaseMean("c", "MR", 0.5, 0.5, 3),
    ]
    best, worst = best_and_worst(means)
    assert (best.case_id, worst.case_id) == ("a", "c")
    assert best_and_worst([]) is None


def test_html_pieces_escape_their_text():
    assert "<td>&lt;b&gt;</td>" in table(["x"], [["<b>"]])
    converted = markdown_to_html("# Title\n\nText with **bold**.\n\n| a | b |\n|---|---|\n| 1 | <x> |\n")
    assert "<h3>Title</h3>" in converted and "<strong>bold</strong>" in converted
    assert '<td class="number">1</td><td>&lt;x&gt;</td>' in converted
    assert "---" not in converted


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Measures the page once it has loaded and hands the figures to the frame around it.
_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const box = document.getElementById("summary").getBoundingClientRect();
  window.parent.postMessage(JSON.stringify({
    width: window.innerWidth,
    height: window.innerHeight,
    scroll_width: document.documentElement.scrollWidth,
    images: images.length,
    decoded: images.filter((image) => image.complete && image.naturalWidth > 0).length,
    summary_top: box.top,
    requests: performance.getEntriesByType("resource").map((entry) => entry.name),
  }), "*");
});
</script>"""

# Headless Chromium's window is never narrower than 500 px: a phone's width is given to a frame.
_FRAME = """<!DOCTYPE html><html><body style="margin: 0">
<iframe src="{page}" width="{width}" height="{height}" style="border: 0"></iframe><pre id="probe"></pre>
<script>window.addEventListener("message", (event) => {{
  document.getElementById("probe").textContent = event.data; }});</script>
</body></html>"""


def _in_browser(page: Path, width: int, height: int, tmp_path: Path) -> dict:
    """Load ``page`` in headless Chromium in a frame of ``width`` x ``height`` px; what it measured."""
    probed = tmp_path / f"probed_{width}.html"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8"
    )
    frame = tmp_path / f"frame_{width}.html"
    frame.write_text(_FRAME.format(page=probed.name, width=width, height=height), encoding="utf-8")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / f'profile_{width}'}",
        f"--window-size={width + 100},{height + 100}", "--virtual-time-budget=10000", "--dump-dom",
        frame.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="probe">(.+?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium package is not installed (.ci/run installs it)"
)
@pytest.mark.parametrize(("width", "height"), [(1400, 900), (420, 860)])
def test_the_report_in_a_real_browser(report, study, tmp_path, width, height):
    measured = _in_browser(study / "report.html", width, height, tmp_path)
    assert measured["width"] == width
    assert measured["images"] == len(report.images) and measured["decoded"] == measured["images"]
    # Nothing runs off the side: wide tables scroll inside their own box.
    assert measured["scroll_width"] <= width, measured
    # The result comes first: the summary box starts on the first screen.
    assert 0 <= measured["summary_top"] < height / 2, measured
    assert measured["requests"] == []  # self-contained: no network, no other file


def test_the_summary_box_comes_first_with_the_result_and_what_to_read_with_care(report, study):
    page = (study / "report.html").read_text(encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    box = re.search(r'<div class="summary" id="summary">(.*?)</div>', page, re.S)
    assert box and box.start() < page.index("<nav>") < page.index('<section id="evaluation">')
    text = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(box.group(1))).split())
    summary = json.loads((study / "evaluation" / "summary.json").read_text())
    for group in ("CT", "MR"):
        figures = summary["groups"][group]
        assert (
            f"{group}: mean DSC {figures['mDSC']:.3f}, NSD {figures['mNSD']:.3f} over {figures['cases']}"
            in text
        )
    # amos_0004's prediction dropped the gallbladder: one of the three CT cases holding it.
    assert "CT, not found in some test cases: Gallbladder (1/3)" in text
    assert "no voxel went to an organ the references do not annotate" in text
    assert "The data are synthetic phantoms" in text
    assert "NSD tolerance 1 mm is below the voxel size" in text
    assert "time budget" not in text  # the fold ran its 3 planned epochs


def test_every_case_and_organ_is_a_shaded_cell_linking_to_its_files(report, study):
    page = (study / "report.html").read_text(encoding="utf-8")
    table = report.sections["evaluation"]["table_ids"]["evaluation-cases"]
    rows = {row[0]: row for row in table[1:]}
    assert sorted(rows) == sorted(SPOILED)
    gallbladder = table[0].index("Gallbladder")
    assert rows["amos_0004"][gallbladder] == "empty"
    by_case = {(row["case"], row["organ"]): row for row in per_case_rows(study)}
    liver = table[0].index("Liver")
    assert float(rows["amos_0003"][liver]) == pytest.approx(
        float(by_case[("amos_0003", "liver")]["dsc"]), abs=5e-4
    )
    assert '<a href="predictions/amos_0001.nii.gz">amos_0001</a>' in page
    assert '<a href="evaluation/per_case.csv">per_case.csv</a>' in page
    assert re.search(r'<td class="number" style="background: hsl\(\d+, 70%, 82%\)">', page)


def test_commands_are_code_that_copies_whole(report, study):
    page = (study / "report.html").read_text(encoding="utf-8")
    first = read_steps(study)[0]
    assert f'<td class="code"><code>{html.escape(first.command)}</code></td>' in page
