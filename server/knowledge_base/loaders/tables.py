"""Tables as text: one 'header: value; header: value' paragraph per row, so every row keeps its headers.

Rows are separated by blank lines, so the splitter cuts a table between rows, and each chunk of a
large table repeats the headers in every row it holds. The rendered table records where each row
starts and its number in the file ("row_spans"), which the splitter turns into a chunk's row range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from server.knowledge_base.types import LoadedDoc, loaded_doc

ROW_SEPARATOR = "\n\n"


def format_value(value: object) -> str:
    """Render a cell value on one line: whole floats without '.0', dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        text = str(value.isoformat())
        return text[:-9] if text.endswith("T00:00:00") else text
    return " ".join(str(value).split())


@dataclass
class RenderedTable:
    """A table's text and, for each row line, [character offset, row number in the file]."""

    text: str = ""
    row_spans: list[list[int]] = field(default_factory=list)

    def doc(self, source: str, title: str | None = None, **location: int | str) -> LoadedDoc:
        doc = loaded_doc(self.text, source, title, **location)
        if self.row_spans:
            doc.metadata["row_spans"] = self.row_spans
        return doc


def render_table(table: Sequence[Sequence[object]], first_row: int = 1) -> RenderedTable:
    """Render rows (the first non-empty one, or the first wide one after title rows, is the header) as
    'header: value; ...' paragraphs; first_row is the number of table[0] in the file."""
    numbered = [(first_row + i, [format_value(v) for v in row]) for i, row in enumerate(table)]
    numbered = [(n, row) for n, row in numbered if any(row)]
    if not numbered:
        return RenderedTable()
    rows = [row for _, row in numbered]
    # Sheets often open with a title row (one merged cell) above the real header: take as header
    # the first row at least half as wide as the widest of the first rows; rows above it are titles.
    widths = [sum(1 for cell in row if cell) for row in rows[:10]]
    start = next(i for i, w in enumerate(widths) if w * 2 >= max(widths))
    titles = ["; ".join(cell for cell in row if cell) for row in rows[:start]]
    header, body = rows[start], numbered[start + 1 :]
    if not body:
        return RenderedTable(ROW_SEPARATOR.join([*titles, "; ".join(cell for cell in header if cell)]))
    width = max(len(header), max(len(row) for _, row in body))
    keys = [header[i] if i < len(header) and header[i] else f"column {i + 1}" for i in range(width)]
    parts = list(titles)
    offset = sum(len(t) + len(ROW_SEPARATOR) for t in titles)
    spans = []
    for number, row in body:
        line = "; ".join(f"{keys[i]}: {cell}" for i, cell in enumerate(row) if cell)
        spans.append([offset, number])
        parts.append(line)
        offset += len(line) + len(ROW_SEPARATOR)
    return RenderedTable(ROW_SEPARATOR.join(parts), spans)
