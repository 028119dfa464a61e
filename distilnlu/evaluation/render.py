"""Formatting and rendering of report content: one document model, three outputs.

A report is a list of :class:`Section` s holding text, :class:`Table` s and :class:`Image` s;
:func:`markdown`, :func:`html_page` and :func:`text_table` render the same content, so the
Markdown page, the HTML page and the terminal summary never disagree.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DASH = "—"
MINUS = "−"


def is_number(value: Any) -> bool:
    """A finite int or float (bools and NaN/inf excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- formatting


def fmt_pct(value: float) -> str:
    """A fraction as a percentage without the sign: 0.912 -> "91.2"."""
    return DASH if math.isnan(value) else f"{100 * value:.1f}".replace("-", MINUS)


def fmt_change(value: float) -> str:
    """A signed relative change: -0.123 -> "−12.3%"."""
    if math.isnan(value):
        return DASH
    text = f"{100 * value:+.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text.replace("-", MINUS)


def fmt_rho(value: float) -> str:
    """A rank correlation to 3 decimals, "—" when undefined."""
    return DASH if math.isnan(value) else f"{value:.3f}".replace("-", MINUS)


def fmt_float(value: float, digits: int = 2) -> str:
    return DASH if math.isnan(value) else f"{value:,.{digits}f}".replace("-", MINUS)


def fmt_count(value: Any) -> str:
    """A parameter count, compact: 625440 -> "625.4K"."""
    if not is_number(value):
        return DASH
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return str(int(value))


def fmt_int(value: Any) -> str:
    return f"{int(value):,}" if is_number(value) else DASH


def fmt_seconds(seconds: float) -> str:
    if math.isnan(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return (
        f"{minutes} min {secs:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------- document model


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]

    def left(self) -> list[bool]:
        """Per column: left-aligned (names, kinds) or right-aligned (numbers, so digits line up).

        A column is text when a cell of it (the header aside) starts with a letter."""
        return [
            i == 0 or any(row[i][:1].isalpha() for row in self.rows)
            for i in range(len(self.header))
        ]


@dataclass(frozen=True)
class Image:
    file: str
    caption: str


Block = str | Table | Image


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


def with_dash_note(table: Table) -> list[Block]:
    """The table, plus the meaning of "—" when a cell uses it."""
    if any(cell.startswith(DASH) for row in table.rows for cell in row[1:]):
        return [table, f"{DASH}: not available (not measured, not finished, or not a number)."]
    return [table]


# --------------------------------------------------------------------------- rendering


def _md_text(text: str) -> str:
    """Literal text for Markdown: "*" would start a list item or emphasis, "|" a table cell."""
    return text.replace("*", "\\*").replace("|", "\\|")


def markdown(title: str, sections: Sequence[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += ["#" * section.level + " " + section.title, ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(_md_text(h) for h in block.header) + " |")
                lines.append("|" + "".join(":---|" if x else "---:|" for x in block.left()))
                lines += ["| " + " | ".join(_md_text(c) for c in row) + " |" for row in block.rows]
            elif isinstance(block, Image):
                lines += [f"![{block.caption}]({block.file})", "", f"*{block.caption}*"]
            else:
                lines.append(_md_text(block))
            lines.append("")
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222;
       padding: 0 1em; line-height: 1.45; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: .25em .45em; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; white-space: normal; vertical-align: bottom; }
.l { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 14px; }
"""


def _html_row(tag: str, cells: Sequence[str], left: Sequence[bool]) -> str:
    return (
        "<tr>"
        + "".join(
            f"<{tag}{' class=l' if x else ''}>{html.escape(c)}</{tag}>"
            for c, x in zip(cells, left, strict=True)
        )
        + "</tr>"
    )


def _html_table(table: Table) -> str:
    left = table.left()
    head = _html_row("th", table.header, left)
    body = "".join(_html_row("td", row, left) for row in table.rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        caption = html.escape(block.caption)
        src = html.escape(block.file, quote=True)
        return (
            f'<figure><img src="{src}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
        )
    return f"<p>{html.escape(block)}</p>"


def html_page(title: str, sections: Sequence[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        level = section.level
        parts.append(f"<h{level}>{html.escape(section.title)}</h{level}>")
        parts += [_html_block(block) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def text_table(table: Table) -> str:
    """A plain-text table for the terminal, aligned like the Markdown and HTML ones."""
    widths = [max(len(r[i]) for r in [table.header, *table.rows]) for i in range(len(table.header))]
    left = table.left()

    def line(row: Sequence[str]) -> str:
        cells = [c.ljust(w) if x else c.rjust(w) for c, w, x in zip(row, widths, left, strict=True)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table.header), rule, *[line(r) for r in table.rows]])
