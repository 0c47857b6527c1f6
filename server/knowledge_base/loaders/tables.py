"""Tables as text: one 'header: value; header: value' paragraph per row, so every row keeps its headers.

Rows are separated by blank lines, so the splitter cuts a table between rows, and each chunk of a
large table repeats the headers in every row it holds. The rendered table records where each row
starts and its number in the file ("row_spans"), which the splitter turns into a chunk's row range.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.knowledge_base.types import LoadedDoc, loaded_doc

ROW_SEPARATOR = "\n\n"


def table_of(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """Which table a chunk of rows belongs to, by its metadata: its file, sheet and headings."""
    return (str(metadata.get("source")), str(metadata.get("sheet")), *map(str, metadata.get("heading_path") or []))


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
    # The titles above the table, outermost first (``render_sheet``); the loader makes them its heading path.
    caption: list[str] = field(default_factory=list)

    def doc(self, source: str, title: str | None = None, **location: int | str) -> LoadedDoc:
        doc = loaded_doc(self.text, source, title, **location)
        if self.row_spans:
            doc.metadata["row_spans"] = self.row_spans
        if self.caption:
            doc.metadata["heading_path"] = list(self.caption)
        return doc


def _row_line(keys: Sequence[str], row: Sequence[str]) -> str:
    """A row as 'key: value; ...' over its non-empty cells; a cell without a key is 'column N: value', except in
    the first column, where it labels the row ('Zone NA; Sales: 12553')."""
    cells = []
    for c, cell in enumerate(row):
        if not cell:
            continue
        key = keys[c] if c < len(keys) else ""
        cells.append(cell if c == 0 and not key else f"{key or f'column {c + 1}'}: {cell}")
    return "; ".join(cells)


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
    titles = [_joined(row) for row in rows[:start]]
    header, body = rows[start], numbered[start + 1 :]
    if not body:
        return RenderedTable(ROW_SEPARATOR.join([*titles, _joined(header)]))
    width = max(len(header), max(len(row) for _, row in body))
    keys = [header[i] if i < len(header) else "" for i in range(width)]
    parts = list(titles)
    offset = sum(len(t) + len(ROW_SEPARATOR) for t in titles)
    spans = []
    for number, row in body:
        line = _row_line(keys, row)
        spans.append([offset, number])
        parts.append(line)
        offset += len(line) + len(ROW_SEPARATOR)
    return RenderedTable(ROW_SEPARATOR.join(parts), spans)


# A cell holding a figure: a number, maybe signed, bracketed, with thousands separators, a currency, a percent or
# a Chinese unit ("120万元", "5天").
_FIGURE = re.compile(r"[-+−(（]?[$€£¥￥]?\d[\d,.\s]*(?:[%‰]|[\u4e00-\u9fff]{1,2})?[)）]?")
# A year as a column name: "2023", "2023年", "2023 est".
_YEAR = re.compile(r"(?:19|20)\d\d(?:年|\s*[A-Za-z]{1,3})?")
# The unit a table's figures are in, as a title or a header band's first cell says it: "单位：万元", "In millions".
_UNIT_NOTE = re.compile(r"\s*(?:(?:金额)?单位|units?\b|in (?:thousands|millions|billions)|\(in )", re.I)
# A note under a table: "(a) ...", "* ...", "Note: ...", "Source: ...".
_NOTE = re.compile(r"\s*(?:\([a-z0-9]{1,2}\)|[*†‡¹²³]|notes?\b|sources?\b)", re.I)

# At most this many title rows and header rows above a table: longer runs without figures are text, not a table's
# head (and the search for the next table stays linear in the sheet's rows).
MAX_TITLE_ROWS = 8
MAX_HEADER_ROWS = 4

Rows = list[tuple[int, list[str]]]


@dataclass
class _Block:
    """One table of a sheet: the rows above its header (titles), its header rows, and its body."""

    titles: Rows
    header: Rows
    body: Rows = field(default_factory=list)


def render_sheet(table: Sequence[Sequence[object]], first_row: int = 1) -> list[RenderedTable]:
    """A spreadsheet's tables, each rendered like ``render_table``, with its title rows as its ``caption``.

    A sheet often stacks tables (this year's figures, then last year's), each under its own title rows and header,
    and the period is only in the title: a new table starts where, after an empty row, rows without figures come
    before rows with them again. A header may span two rows (a band of group labels over the column names); each
    column's key then leads with its group's label, and a band of one label is a title. Titles go to the
    caption, not the text, so that every chunk of the table carries them; the first table's titles above an empty
    row, the sheet's own, head the captions of the tables below it. A sheet without figures is one table, read by
    ``render_table``."""
    numbered = [(first_row + i, [format_value(v) for v in row]) for i, row in enumerate(table)]
    numbered = [(n, row) for n, row in numbered if any(row)]
    blocks = _blocks(numbered)
    if not blocks:
        rendered = render_table([row for _, row in numbered], numbered[0][0] if numbered else first_row)
        return [rendered] if rendered.text else []
    first = blocks[0]
    first_own = _own_titles(first)
    sheet_titles = [_joined(row) for _, row in first.titles[:len(first.titles) - len(first_own)]]
    out = []
    for block in blocks:
        rendered, band_titles = _render_block(block)
        own = first_own if block is first else block.titles
        rendered.caption = [*sheet_titles, *(_joined(row) for _, row in own), *band_titles]
        out.append(rendered)
    return out


def _own_titles(block: _Block) -> Rows:
    """The title rows right above the first table's header, without an empty row between: the table's own; the
    titles above an empty row head the sheet, and every table's caption."""
    own: Rows = []
    below = block.header[0][0]
    for number, row in reversed(block.titles):
        if number != below - 1:
            break
        own.insert(0, (number, row))
        below = number
    return own


def _width(row: list[str]) -> int:
    return sum(1 for cell in row if cell)


def _joined(row: list[str]) -> str:
    return "; ".join(cell for cell in row if cell)


def _has_figure(row: list[str]) -> bool:
    return any(_FIGURE.fullmatch(cell) for cell in row[1:] if cell)


def _blocks(rows: Rows) -> list[_Block]:
    """The sheet's rows as stacked tables; [] when no row below a header holds a figure. A table's body runs to
    the next table: a row after an empty row, no note, where a table's titles and header start."""
    blocks: list[_Block] = []
    start, found = 0, _table_at(rows, 0, first=True)
    while found is not None:
        j, k = found
        block = _Block(titles=rows[start:j], header=rows[j:k])
        blocks.append(block)
        m, found = k, None
        while m < len(rows):
            if (m > k and rows[m][0] > rows[m - 1][0] + 1 and not _NOTE.match(_joined(rows[m][1]))
                    and (found := _table_at(rows, m, first=False)) is not None):
                break
            block.body.append(rows[m])
            m += 1
        start = m
    return blocks


def _table_at(rows: Rows, i: int, first: bool) -> tuple[int, int] | None:
    """(header start, body start) of a table whose titles start at rows[i]: rows of one cell (titles), then header
    rows of several cells without figures, then a row with figures. The first header row may hold figures (years
    as column names). Below another table, a table needs a title or a two-row header (a row of words between rows
    of figures is a row of the table), and its header holds figures only when they are years or a row of column
    names follows it."""
    j = i
    while j < len(rows) and j - i < MAX_TITLE_ROWS and _width(rows[j][1]) == 1:
        j += 1
    k = j + 1
    while k < len(rows) and k - j < MAX_HEADER_ROWS and _width(rows[k][1]) > 1 and not _has_figure(rows[k][1]):
        k += 1
    if k >= len(rows) or not _has_figure(rows[k][1]) or _width(rows[j][1]) < 2:
        return None
    if first:
        return j, k
    if j == i and k == j + 1:
        return None
    return (j, k) if k > j + 1 or not _has_figure(rows[j][1]) or _years(rows[j][1]) else None


def _years(row: list[str]) -> bool:
    """Whether the figures of a row are all years (2021, 2022, ...): column names, not values."""
    cells = [cell for cell in row[1:] if cell]
    return len(cells) >= 2 and all(_YEAR.fullmatch(cell) for cell in cells)


def _runs(columns: list[int]) -> list[list[int]]:
    """Consecutive columns in runs: the column groups of a header, split at empty spacer columns."""
    runs: list[list[int]] = []
    for c in columns:
        if runs and runs[-1][-1] == c - 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def _band_label(band: list[str], labelled: list[int], runs: list[list[int]], c: int) -> str:
    """The band's label over column c: the one label within c's column group, else the nearest one at or left of c
    (a merged cell's value sits in its first column)."""
    inside = [b for run in runs if c in run for b in labelled if b in run]
    if len(inside) == 1:
        return band[inside[0]]
    return band[max((b for b in labelled if b <= c), default=labelled[0])]


def _render_block(block: _Block) -> tuple[RenderedTable, list[str]]:
    """The block's body as 'key: value' rows (a row of one cell without figures, a note, as it is; the header
    repeated, left out) and its one-label bands as titles."""
    *bands, (_, header) = block.header
    width = max(len(row) for _, row in [*block.header, *block.body])
    keys = [header[c] if c < len(header) else "" for c in range(width)]
    titles: list[str] = []
    for _, band in bands:
        # Over a header-less first column, the band's first cell names that column (the rows' labels: "In
        # millions of CHF"); over a named one it is a group label like the others, unless it gives the unit.
        grouped = bool(keys[0]) and not _UNIT_NOTE.match(band[0])
        labelled = [c for c in range(0 if grouped else 1, len(band)) if band[c]]
        if len(labelled) < 2:
            titles.append(_joined(band))
            continue
        runs = _runs([c for c in range(width) if keys[c]])
        for c in range(width):
            if c == 0 and not grouped:
                label = "" if keys[0] else band[0]
            else:
                label = _band_label(band, labelled, runs, c)
            keys[c] = f"{label} {keys[c]}".strip()
    parts: list[str] = []
    spans: list[list[int]] = []
    offset = 0
    for number, row in block.body:
        if _joined(row) == _joined(header):
            continue  # the header again, as a printed page repeats it
        line = _joined(row) if _width(row) == 1 and not _has_figure(row) else _row_line(keys, row)
        spans.append([offset, number])
        parts.append(line)
        offset += len(line) + len(ROW_SEPARATOR)
    return RenderedTable(ROW_SEPARATOR.join(parts), spans), titles
