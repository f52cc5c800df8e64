"""Small pure builders for the report's HTML: escaped text, tables, embedded PNGs, sections, the page.

Every function returns a string of HTML. Text given to them is escaped here, so callers pass plain
text; only arguments named ``body`` or ``cells_html`` are taken as HTML already.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# One small inline style sheet: the report must open anywhere, offline, as a single file. Tables
# scroll inside their own box, so a phone's narrow screen never scrolls the whole page sideways.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; overflow-wrap: anywhere; }
section { margin: 2.5em 0; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .2em; }
h3 { overflow-wrap: anywhere; }
p { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
caption { text-align: left; font-style: italic; padding: .2em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code code { white-space: nowrap; }
img { max-width: 100%; height: auto; display: block; margin: .8em 0; }
figure { margin: .8em 0; }
figcaption { font-size: .9em; color: #444; }
.missing { color: #8a4b00; background: #fff6e5; border-left: 4px solid #e0a030; padding: .4em .8em; }
.summary { background: #f3f7fb; border: 1px solid #9db7d5; border-radius: 6px; padding: .6em 1.2em; }
.summary ul { padding-left: 1.2em; }
.warning { color: #8a2b00; }
code { background: #f4f4f4; padding: 0 .2em; }
nav ul { display: flex; flex-wrap: wrap; gap: .4em 1.2em; list-style: none; padding: 0; }
"""

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?( ± \d+(\.\d*)?)?%?$|^–$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def text(value: object) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Cell:
    """A table cell built by the caller: ``html`` is taken as HTML already; optional class and
    background colour (CSS), e.g. a shaded score or a link."""

    html: str
    css_class: str = ""
    background: str = ""


def code_cell(command: str) -> Cell:
    """A cell holding a command: monospace and never broken at a hyphen, so it copies whole."""
    return Cell(f"<code>{text(command)}</code>", css_class="code") if command else Cell("")


def link(href: str, label: str) -> str:
    """An ``<a>`` to a relative path (escaped)."""
    return f'<a href="{text(href)}">{text(label)}</a>'


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, table_id: str | None = None, caption: str = ""
) -> str:
    """A ``<table>`` in a box that scrolls sideways on narrow screens, with one header row; cells are
    escaped (``Cell`` cells are the caller's HTML) and numbers are right-aligned, never wrapped."""
    id_attribute = f' id="{text(table_id)}"' if table_id else ""
    parts = [f'<div class="scroll"><table{id_attribute}>']
    if caption:
        parts.append(f"<caption>{text(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{text(cell)}</th>" for cell in header) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _cell(value: object) -> str:
    if isinstance(value, Cell):
        css = f' class="{text(value.css_class)}"' if value.css_class else ""
        style = f' style="background: {text(value.background)}"' if value.background else ""
        return f"<td{css}{style}>{value.html}</td>"
    content = text(value)
    return f'<td class="number">{content}</td>' if _NUMBER.match(str(value)) else f"<td>{content}</td>"


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes.

    Raises:
        ValueError: the bytes are not a PNG (a corrupt plot must not become a broken image silently).
    """
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file (no PNG signature)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes, alt: str, caption: str = "") -> str:
    """An ``<img>`` with the PNG embedded; with ``caption`` (plain text, `code` rendered), a figure."""
    tag = f'<img src="{png_data_uri(png)}" alt="{text(alt)}">'
    return f"<figure>{tag}<figcaption>{_inline(caption)}</figcaption></figure>" if caption else tag


def missing(problem: str) -> str:
    """A highlighted note that a piece of the study is absent or unusable; ``problem`` is plain text."""
    return f'<p class="missing">{_inline(problem)}</p>'


def paragraph(content: str) -> str:
    """A paragraph of plain text; `code` spans and **bold** are rendered."""
    return f"<p>{_inline(content)}</p>"


def heading(level: int, content: str) -> str:
    return f"<h{level}>{text(content)}</h{level}>"


def section(section_id: str, title: str, body: str) -> str:
    """A top-level ``<section id=...>`` with an ``<h2>`` title; ``body`` is HTML."""
    return f'<section id="{text(section_id)}">\n<h2>{text(title)}</h2>\n{body}\n</section>'


def page(title: str, sections: Sequence[tuple[str, str, str]], summary: str = "") -> str:
    """The whole document: a title, the ``summary`` box (HTML) first, a list of links to the sections,
    then each (id, title, body)."""
    links = "".join(f'<li><a href="#{text(sid)}">{text(name)}</a></li>' for sid, name, _ in sections)
    content = "\n".join(section(sid, name, body) for sid, name, body in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{text(title)}</h1>\n{summary}\n<nav><ul>{links}</ul></nav>\n{content}\n</body>\n</html>\n"
    )


def summary_box(heading_text: str, body: str) -> str:
    """The box at the top of the page: ``body`` is HTML."""
    return f'<div class="summary" id="summary">\n<h2>{text(heading_text)}</h2>\n{body}\n</div>'


def bullet_list(items: Iterable[str]) -> str:
    """A ``<ul>`` of plain-text items (`code` and **bold** rendered)."""
    return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>"


def markdown_to_html(markdown: str, heading_offset: int = 2) -> str:
    """The subset of Markdown the stages write (headings, pipe tables, paragraphs, **bold**, `code`).

    ``# `` headings become ``<h{1 + heading_offset}>`` and so on, so a document's title fits under the
    section's own ``<h2>``. The second row of a pipe table (``|---|``) is its separator and is dropped.
    """
    blocks: list[str] = []
    lines = markdown.splitlines()
    position = 0
    while position < len(lines):
        line = lines[position].strip()
        if not line:
            position += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(heading(min(6, level + heading_offset), line[level:].strip()))
            position += 1
        elif line.startswith("|"):
            rows = []
            while position < len(lines) and lines[position].strip().startswith("|"):
                rows.append(_split_row(lines[position]))
                position += 1
            blocks.append(_markdown_table(rows))
        else:
            paragraph_lines = []
            while position < len(lines) and lines[position].strip() and not _starts_block(lines[position]):
                paragraph_lines.append(lines[position].strip())
                position += 1
            blocks.append(paragraph(" ".join(paragraph_lines)))
    return "\n".join(blocks)


def _starts_block(line: str) -> bool:
    return line.strip().startswith(("#", "|"))


def _split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _markdown_table(rows: list[list[str]]) -> str:
    body = [row for row in rows[1:] if not all(set(cell) <= set("-: ") for cell in row)]
    parts = [
        '<div class="scroll"><table>',
        "<thead><tr>" + "".join(f"<th>{_inline(cell)}</th>" for cell in rows[0]) + "</tr></thead>",
    ]
    parts.append("<tbody>")
    for row in body:
        cells = "".join(
            f'<td class="number">{_inline(cell)}</td>' if _NUMBER.match(cell) else f"<td>{_inline(cell)}</td>"
            for cell in row
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _inline(content: str) -> str:
    escaped = text(content)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _CODE.sub(r"<code>\1</code>", escaped)
