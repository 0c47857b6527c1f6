"""Which row of a table a superlative question asks for: "Which team has won the most Stanley Cups?".

A small model reading a table's rows tends to answer from the first or the last one it reads, not from the one
with the largest figure. When a question asks for the most or the least of something (most, highest, lowest,
最多, 最低 ...) and a table has a numeric column that the question names ("Stanley Cups", "sales"), the row
the question asks for is what the model reads of that table: knowledge-base chat puts the chunk holding it first
among the passages, fetched from the table when the search did not find it (a long row is a chunk of its own, and
a search ranks rows by their words, not their figures), in place of the table's other chunks, and the evidence
holds that row alone of it. Measured: shown the rows of a sales table by sales, the 1.5B model still named a
lower row as the highest; shown the one row, it named it.

Rows are the loaders' ``header: value; header: value`` lines (server/knowledge_base/loaders/tables.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from server.chat.figures import arabic_value
from server.knowledge_base.bm25 import query_tokens, tokenize
from server.knowledge_base.loaders.tables import ROW_SEPARATOR, table_of
from server.knowledge_base.schemas import SearchHit

_MOST = re.compile(r"\b(?:most|highest|largest|biggest|greatest|maximum|max|top)\b|最多|最高|最大|最长|最贵|最重|最快",
                   re.IGNORECASE)
_LEAST = re.compile(r"\b(?:least|fewest|lowest|smallest|minimum|min)\b|最少|最低|最小|最短|最便宜|最轻|最慢",
                    re.IGNORECASE)
_CELL_SEPARATOR = "; "
_KEY_SEPARATOR = ": "
# A row that adds up the others is not one of them: "Total", "Subtotal", 「合计」.
_TOTAL = re.compile(r"^\s*(?:grand\s+|sub)?totals?\b|^\s*sum\b|合计|总计|小计|总额|共计", re.IGNORECASE)
# Words of a date or period (years and other numbers, months, quarters, halves; 年, 月, 季 in a Chinese bigram).
_DATE_TOKEN = re.compile(
    r"^\d+$|^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*$|^[qh][1-4]$|^fy\d*$"
    r"|^(?:year|quarter|half|month)$|[年月季]")


def descending(question: str) -> bool | None:
    """True when ``question`` asks for the most of something, False for the least, None for neither (or both)."""
    most, least = bool(_MOST.search(question)), bool(_LEAST.search(question))
    return most if most != least else None


def _number(value: str) -> float | None:
    """A cell's value as a number ("12,553", "(81)", "−4.5", "$300"), None when it is none."""
    text = value.strip()
    negative = text.startswith("(") and text.endswith(")") or text.startswith(("-", "−"))
    number = arabic_value(text.strip("()-−+$€£¥￥% "))
    if number is None:
        return None
    return -float(number) if negative else float(number)


def _label(row: str) -> str:
    """What a row is about: its first cell's value ("Zone NA" of "Zone NA; Sales: 12553", "Blues" of "Team: Blues;
    ...")."""
    first = row.split(_CELL_SEPARATOR, 1)[0]
    return first.partition(_KEY_SEPARATOR)[2] or first


def _cells(row: str) -> dict[str, float]:
    """The numeric cells of a row line, by header."""
    cells: dict[str, float] = {}
    for cell in row.split(_CELL_SEPARATOR):
        key, sep, value = cell.partition(_KEY_SEPARATOR)
        number = _number(value) if sep else None
        if number is not None:
            cells[key.strip()] = number
    return cells


def _column(question: str, rows: list[dict[str, float]]) -> str | None:
    """The numeric column the question names: the header sharing most of its words (none when two tie). Dates do not
    name a column: in a table whose columns are periods ("January–June 2023"), the question's own period says which
    table it means, not what to compare."""
    counts: dict[str, int] = {}
    for cells in rows:
        for key in cells:
            counts[key] = counts.get(key, 0) + 1
    numeric = [key for key, n in counts.items() if n >= 2]
    asked = {token for token in query_tokens(question) if not _DATE_TOKEN.search(token)}
    shared = {key: len(asked & set(tokenize(key))) for key in numeric}
    best = max(shared.values(), default=0)
    named = [key for key, n in shared.items() if n == best]
    return named[0] if best > 0 and len(named) == 1 else None


def rows_asked_for(question: str, rows: Sequence[str]) -> list[int] | None:
    """Indexes of ``rows`` (a table passage's row lines), the row the superlative ``question`` asks for first, by the
    value of the column it names (by size where every value is negative, as costs are often written); total rows and
    rows without that column last, in their order. None when the question asks for no most or least, or no column
    fits."""
    direction = descending(question)
    if direction is None:
        return None
    cells = [_cells(row) for row in rows]
    column = _column(question, cells)
    if column is None:
        return None
    valued = [i for i, c in enumerate(cells) if column in c and not _TOTAL.search(_label(rows[i]))]
    values = {i: cells[i][column] for i in valued}
    if all(v <= 0 for v in values.values()):
        # A column of costs written as negatives ("(44)"): the lowest cost is the one nearest zero.
        values = {i: -v for i, v in values.items()}
    valued.sort(key=lambda i: -values[i] if direction else values[i])
    return valued + [i for i in range(len(rows)) if i not in values] if valued else None


def chunk_asked_for(question: str, chunks: Sequence[str]) -> int | None:
    """Which of ``chunks`` (the chunks of one table, in order) holds the row the superlative ``question`` asks for;
    None as for ``rows_asked_for``."""
    rows = [(n, row) for n, text in enumerate(chunks) for row in text.split(ROW_SEPARATOR) if row.strip()]
    order = rows_asked_for(question, [row for _, row in rows])
    return rows[order[0]][0] if order else None


def _table(hit: SearchHit) -> tuple[str, ...]:
    """Which table a chunk of rows belongs to: its knowledge base, then its file, sheet and headings."""
    return (str(hit.metadata.get("kb")), *table_of(hit.metadata))


def with_row_asked_for(question: str, hits: list[SearchHit],
                       table_chunks: Callable[[SearchHit], list[SearchHit]]) -> list[SearchHit]:
    """``hits`` with the chunk holding the row the superlative ``question`` asks for first, taken from the first table
    among the hits with a column the question names (``table_chunks`` gives a hit's table), and no other chunk of
    that table; unchanged when no hit's table has such a column."""
    if descending(question) is None:
        return hits
    seen: set[tuple[str, ...]] = set()
    for hit in hits:
        table = _table(hit)
        if not hit.metadata.get("rows") or table in seen:
            continue
        seen.add(table)
        chunks = table_chunks(hit)
        n = chunk_asked_for(question, [chunk.text for chunk in chunks])
        if n is not None:
            # The table's other rows would only give a small model other rows to answer from.
            return [chunks[n], *(h for h in hits if not (h.metadata.get("rows") and _table(h) == table))][:len(hits)]
    return hits
