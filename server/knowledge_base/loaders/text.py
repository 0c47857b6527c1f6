"""Loaders for plain-text formats: txt, Markdown, CSV, JSON and JSON Lines."""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from server.knowledge_base.loaders.encoding import read_text
from server.knowledge_base.types import LoadedDoc, loaded_doc

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FIRST_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)

# Spreadsheet-like CSVs hold long cells (whole answers, descriptions); the default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def load_txt(path: Path, source: str) -> list[LoadedDoc]:
    """A whole text file as one LoadedDoc."""
    return [LoadedDoc(text=read_text(path), metadata={"source": source})]


def load_markdown(path: Path, source: str) -> list[LoadedDoc]:
    """A whole Markdown file as one LoadedDoc; HTML comments are dropped since they never render."""
    text = _HTML_COMMENT.sub("", read_text(path))
    match = _FIRST_HEADING.search(text)
    return [loaded_doc(text, source, match.group(1) if match else None)]


def format_value(value: object) -> str:
    """Render a cell value: whole floats without '.0', dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        text = str(value.isoformat())
        return text[:-9] if text.endswith("T00:00:00") else text
    return str(value).strip()


def render_rows(table: Sequence[Sequence[object]]) -> str:
    """Render table rows as 'header: value; header: value' lines, the first non-empty row being the header."""
    rows = [[format_value(v) for v in row] for row in table]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    # Sheets often open with a title row (one merged cell) above the real header: take as header
    # the first row at least half as wide as the widest of the first rows; rows above it are titles.
    widths = [sum(1 for cell in row if cell) for row in rows[:10]]
    start = next(i for i, w in enumerate(widths) if w * 2 >= max(widths))
    titles = ["; ".join(cell for cell in row if cell) for row in rows[:start]]
    header, body = rows[start], rows[start + 1 :]
    if not body:
        return "\n".join([*titles, "; ".join(cell for cell in header if cell)])
    width = max(len(header), max(len(row) for row in body))
    keys = [header[i] if i < len(header) and header[i] else f"column {i + 1}" for i in range(width)]
    lines = list(titles)
    for row in body:
        pairs = [f"{keys[i]}: {cell}" for i, cell in enumerate(row) if cell]
        lines.append("; ".join(pairs))
    return "\n".join(lines)


def load_csv(path: Path, source: str) -> list[LoadedDoc]:
    """A CSV file as one LoadedDoc of 'column: value; ...' lines, one per row."""
    text = read_text(path)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    return [LoadedDoc(text=render_rows(rows), metadata={"source": source})]


def load_json(path: Path, source: str) -> list[LoadedDoc]:
    """A JSON file pretty-printed, keeping non-ASCII text readable."""
    from server.knowledge_base.loaders import UnreadableFile

    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UnreadableFile(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return [LoadedDoc(text=_pretty(data), metadata={"source": source})]


def load_jsonl(path: Path, source: str) -> list[LoadedDoc]:
    """A JSON Lines file: each record pretty-printed, records separated by blank lines."""
    from server.knowledge_base.loaders import UnreadableFile

    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_pretty(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UnreadableFile(source, f"invalid JSON on line {number}: {exc.msg}") from exc
    return [LoadedDoc(text="\n\n".join(records), metadata={"source": source})]


def _pretty(data: object) -> str:
    if isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, indent=2)
