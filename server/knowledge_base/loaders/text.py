"""Loaders for plain-text formats: txt, Markdown, CSV, JSON and JSON Lines."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

from server.knowledge_base.loaders.encoding import read_text
from server.knowledge_base.loaders.tables import render_sheet, render_table
from server.knowledge_base.types import LoadedDoc, loaded_doc

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FIRST_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)

# Spreadsheet-like CSVs hold long cells (whole answers, descriptions); the default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def load_txt(path: Path, source: str) -> list[LoadedDoc]:
    """A whole text file as one LoadedDoc."""
    return [LoadedDoc(text=read_text(path, source), metadata={"source": source})]


def load_markdown(path: Path, source: str) -> list[LoadedDoc]:
    """A whole Markdown file as one LoadedDoc; HTML comments are dropped since they never render."""
    text = _HTML_COMMENT.sub("", read_text(path, source))
    match = _FIRST_HEADING.search(text)
    return [loaded_doc(text, source, match.group(1) if match else None)]


def load_csv(path: Path, source: str) -> list[LoadedDoc]:
    """A CSV file as 'column: value; ...' paragraphs, one per row, a LoadedDoc per table (``render_sheet``: a CSV
    saved from a spreadsheet may stack several under their own titles)."""
    text = read_text(path, source)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    return [table.doc(source) for table in render_sheet(rows)] or [render_table(rows).doc(source)]


def load_json(path: Path, source: str) -> list[LoadedDoc]:
    """A JSON file pretty-printed, keeping non-ASCII text readable."""
    from server.knowledge_base.loaders import UnreadableFile

    try:
        data = json.loads(read_text(path, source))
    except json.JSONDecodeError as exc:
        raise UnreadableFile(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return [LoadedDoc(text=_pretty(data), metadata={"source": source})]


def load_jsonl(path: Path, source: str) -> list[LoadedDoc]:
    """A JSON Lines file: each record pretty-printed, records separated by blank lines."""
    from server.knowledge_base.loaders import UnreadableFile

    records = []
    for number, line in enumerate(read_text(path, source).splitlines(), start=1):
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
