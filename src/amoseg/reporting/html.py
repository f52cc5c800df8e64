"""Small pure builders for the report's HTML: escaped text, tables, embedded PNGs, sections, the page.

Every function returns a string of HTML. Text given to them is escaped here, so callers pass plain
text; only arguments named ``body`` or ``cells_html`` are taken as HTML already.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# One small inline style sheet: the report must open anywhere, offline, as a single file.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
section { margin: 2.5em 0; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: .8em 0; }
.missing { color: #8a4b00; background: #fff6e5; border-left: 4px solid #e0a030; padding: .4em .8em; }
code { background: #f4f4f4; padding: 0 .2em; }
nav ul { display: flex; flex-wrap: wrap; gap: 1.2em; list-style: none; padding: 0; }
"""

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?( ± \d+(\.\d*)?)?%?$|^–$")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def text(value: object) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, table_id: str | None = None, caption: str = ""
) -> str:
    """A ``<table>`` with one header row; cells are escaped and numbers are right-aligned."""
    id_attribute = f' id="{text(table_id)}"' if table_id else ""
    parts = [f"<table{id_attribute}>"]
    if caption:
        parts.append(f"<caption>{text(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{text(cell)}</th>" for cell in header) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _cell(value: object) -> str:
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


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG embedded."""
    return f'<img src="{png_data_uri(png)}" alt="{text(alt)}">'


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


def page(title: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: a title, a list of links to the sections, then each (id, title, body)."""
    links = "".join(f'<li><a href="#{text(sid)}">{text(name)}</a></li>' for sid, name, _ in sections)
    content = "\n".join(section(sid, name, body) for sid, name, body in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{text(title)}</h1>\n<nav><ul>{links}</ul></nav>\n{content}\n</body>\n</html>\n"
    )


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
        "<table>",
        "<thead><tr>" + "".join(f"<th>{_inline(cell)}</th>" for cell in rows[0]) + "</tr></thead>",
    ]
    parts.append("<tbody>")
    for row in body:
        cells = "".join(
            f'<td class="number">{_inline(cell)}</td>' if _NUMBER.match(cell) else f"<td>{_inline(cell)}</td>"
            for cell in row
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _inline(content: str) -> str:
    escaped = text(content)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _CODE.sub(r"<code>\1</code>", escaped)
