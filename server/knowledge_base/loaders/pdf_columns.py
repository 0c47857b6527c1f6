"""Reading order of PDF pages set in columns, worked out from where their words sit.

A page's text layer holds its lines in the order they were drawn or, read by position, row by row across the
page; on a page set in two or three columns either way can interleave the columns line by line, so half a
line of the right column cuts every sentence of the left one. Here the words of a page (from pdfplumber) are
grouped into rows, and a gutter is an x position that most rows leave empty while holding words on both sides
of it. The rows are then cut into horizontal bands: a run of rows that cross no gutter is read column by
column, left first, each column top to bottom; rows that cross one (titles, headings across the page,
footers) are read as they are, in their place between those bands. A page with no gutter, or whose columns
look like a table's (narrow, or mostly short lines), gets None: its caller keeps the text it has.
"""

from __future__ import annotations

import math
import re
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from statistics import median
from typing import Any

# A page with fewer words than this (a CJK character counts as one) is not worth reordering.
MIN_WORDS = 40
# A row crosses an x position when a word covers it or it lies in a gap narrower than this many (median)
# word heights. A gutter is a stretch crossed by at most MAX_CROSSING_SHARE of the page's rows, where at
# least MIN_SIDE_SHARE of them, and MIN_SIDE_ROWS, have words on its left and as many on its right.
MIN_GUTTER_HEIGHTS = 0.8
MAX_CROSSING_SHARE = 0.5
MIN_SIDE_SHARE = 0.3
MIN_SIDE_ROWS = 6
# Once gutters are found, a row crosses one unless its gap there is at least this many heights of its largest
# words wide (less than the width asked of a gutter, so that a line running into the gutter does not cut a
# column).
OPEN_GAP_HEIGHTS = 0.4
# A run of fewer rows than this between rows that cross a gutter is read row by row (a line of two cells).
MIN_BAND_ROWS = 3
# Each column spans at least this share of the text's width, and its lines (the median one) fill at least
# this share of the column: narrow or ragged "columns" are a table's, a list's or a line-number margin's.
MIN_COLUMN_SHARE = 0.18
MIN_LINE_FILL = 0.6
# ...and holds at least this many words (a CJK character counts as one) on its median line: a table's
# column of figures or names fills its width with a word or two.
MIN_LINE_WORDS = 4
# Consecutive lines this many times further apart than the page's usual line pitch start a new paragraph.
PARAGRAPH_PITCH = 1.4
# Letters further apart than this share of their font size are in different words.
WORD_GAP_SIZE = 0.15
# Words closer than this (in points) are parts of one word (a drop cap and the rest).
TOUCHING_GAP = 0.5
# Words overlapping a row's first word by this share of the lower one's height are in that row.
ROW_OVERLAP = 0.3
# More than this share of words set sideways (rotated pages, vertical CJK) is left to the text layer.
MAX_SIDEWAYS_SHARE = 0.1

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A block of text ending like this ends a paragraph; otherwise its sentence runs on in the next block.
_SENTENCE_END = re.compile(r"[.!?。！？…][\"'”’)\]）】」』]*$")


@dataclass(frozen=True)
class Word:
    """A word on a page: its text and box in points, top down."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float


@dataclass
class _Line:
    """Words that share a row, left to right once complete."""

    words: list[Word] = field(default_factory=list)
    top: float = 0.0
    bottom: float = 0.0

    @property
    def x0(self) -> float:
        return min(w.x0 for w in self.words)

    @property
    def x1(self) -> float:
        return max(w.x1 for w in self.words)


@dataclass(frozen=True)
class _Band:
    """Consecutive rows of the page: read column by column, or row by row when full_width."""

    rows: list[_Line]
    full_width: bool


def column_text(page: Any) -> str | None:
    """The text of a pdfplumber page in reading order when it is set in columns, else None. Words set
    sideways (margin notes, typesetting codes) follow the page's text."""
    words: list[Word] = []
    sideways: list[dict[str, Any]] = []
    # Letters closer than a share of their size are one word: many PDFs draw no space characters and set
    # words apart by less than pdfplumber's default of 3 points.
    for raw in page.extract_words(x_tolerance_ratio=WORD_GAP_SIZE):
        text = _CONTROL.sub("", str(raw["text"])).strip()
        if not text:
            continue
        if raw.get("upright", True):
            words.append(Word(text, float(raw["x0"]), float(raw["x1"]), float(raw["top"]), float(raw["bottom"])))
        else:
            sideways.append(raw)
    if len(sideways) > MAX_SIDEWAYS_SHARE * (len(words) + len(sideways)):
        return None
    ordered = columns_in_order(words)
    if ordered is None or not sideways:
        return ordered
    return f"{ordered}\n\n{_sideways_text(sideways, page.chars)}"


def _sideways_text(words: list[dict[str, Any]], chars: list[dict[str, Any]]) -> str:
    """Words set sideways, a line of them per x. pdfplumber spells them top down; text turned counter-clockwise
    reads bottom up, so its lines are turned around."""
    turned = [c for c in chars if not c.get("upright", True)]
    bottom_up = sum(1 for c in turned if c.get("matrix", (0, 0))[1] > 0) * 2 > len(turned)
    lines: dict[int, list[str]] = {}
    for word in sorted(words, key=lambda w: (round(float(w["x0"])), float(w["top"]))):
        text = _CONTROL.sub("", str(word["text"])).strip()
        lines.setdefault(round(float(word["x0"])), []).append(text[::-1] if bottom_up else text)
    return "\n".join(" ".join(reversed(line) if bottom_up else line) for line in lines.values())


def columns_in_order(words: Sequence[Word]) -> str | None:
    """The words as text, columns read one after the other within each band, or None when the words are
    not set in columns."""
    if sum(map(_word_count, words)) < MIN_WORDS:
        return None
    height = median(w.bottom - w.top for w in words)
    if height <= 0:
        return None
    rows = _rows(words)
    gutters = _gutters(rows, height)
    if not gutters:
        return None
    bands = _bands(rows, gutters, height)
    blocks = _blocks(bands, gutters, height)
    if blocks is None:
        return None
    pitches = [b.top - a.top for block in blocks for a, b in zip(block, block[1:]) if b.top > a.top]
    pitch = median(pitches) if pitches else height * 1.2
    texts = [_block_text(block, pitch) for block in blocks]
    return _joined([t for t in texts if t])


def _rows(words: Sequence[Word]) -> list[_Line]:
    """Group words into rows across the whole page, top to bottom: a word joins the row whose first word it
    overlaps by a third of the lower one's height, so lines of two columns set a little off each other's
    baselines still share a row."""
    rows: list[_Line] = []
    for word in sorted(words, key=lambda w: (w.top, w.x0)):
        row = rows[-1] if rows else None
        if row is not None:
            overlap = min(word.bottom, row.bottom) - max(word.top, row.top)
            if overlap >= ROW_OVERLAP * min(word.bottom - word.top, row.bottom - row.top):
                row.words.append(word)
                continue
        rows.append(_Line([word], word.top, word.bottom))
    for row in rows:
        row.words.sort(key=lambda w: w.x0)
    return rows


def _lines(words: Sequence[Word], height: float) -> list[_Line]:
    """Group words into lines top to bottom: a word joins the line above when its top is level with the
    line's or it sits within the line's height (superscripts, a fraction's digits)."""
    tolerance = 0.3 * height
    lines: list[_Line] = []
    for word in sorted(words, key=lambda w: (w.top, w.x0)):
        line = lines[-1] if lines else None
        if line is not None and (
            abs(word.top - line.top) <= tolerance
            or (word.top >= line.top - tolerance and word.bottom <= line.bottom + tolerance)
        ):
            line.words.append(word)
            if abs(word.top - line.top) <= tolerance:
                line.bottom = max(line.bottom, word.bottom)
        else:
            lines.append(_Line([word], word.top, word.bottom))
    for line in lines:
        line.words.sort(key=lambda w: w.x0)
    return lines


def _blocks_of(row: _Line, min_gap: float) -> list[tuple[float, float]]:
    """The x ranges a row's words cover, those closer than min_gap joined into one (a line's word spaces)."""
    spans: list[tuple[float, float]] = []
    for word in row.words:
        if spans and word.x0 - spans[-1][1] < min_gap:
            spans[-1] = (spans[-1][0], max(spans[-1][1], word.x1))
        else:
            spans.append((word.x0, word.x1))
    return spans


def _gutters(rows: list[_Line], height: float) -> list[float]:
    """The x of each gutter: a stretch that few rows cross while many rows have words clear of it on its left
    and many on its right (not necessarily the same rows: the columns' lines need not be level)."""
    left = math.floor(min(r.x0 for r in rows))
    size = math.ceil(max(r.x1 for r in rows)) - left
    if size <= 0:
        return []
    min_gap = MIN_GUTTER_HEIGHTS * height
    # Counts per 1-point bin, through difference arrays: rows crossing it; rows with words before it, and
    # those of them crossing it; rows with words after it, and those of them crossing it.
    crossing, before, before_crossing, after, after_crossing = ([0] * (size + 1) for _ in range(5))
    for row in rows:
        spans = [(int(x0) - left, math.ceil(x1) - left) for x0, x1 in _blocks_of(row, min_gap)]
        for n, (a, b) in enumerate(spans):
            crossing[a] += 1
            crossing[b] -= 1
            if n > 0:
                before_crossing[a] += 1
                before_crossing[b] -= 1
            if n < len(spans) - 1:
                after_crossing[a] += 1
                after_crossing[b] -= 1
        before[spans[0][1]] += 1
        after[0] += 1
        after[spans[-1][0]] -= 1
    crossing, before, before_crossing, after, after_crossing = (
        list(accumulate(d[:size])) for d in (crossing, before, before_crossing, after, after_crossing))
    most_crossing = MAX_CROSSING_SHARE * len(rows)
    least_sided = max(MIN_SIDE_SHARE * len(rows), MIN_SIDE_ROWS)
    ok = [crossing[i] <= most_crossing and before[i] - before_crossing[i] >= least_sided
          and after[i] - after_crossing[i] >= least_sided for i in range(size)]
    found: list[float] = []
    i = 0
    while i < size:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < size and ok[j]:
            j += 1
        found.append(left + _emptiest_middle(crossing, i, j))
        i = j
    return found


def _emptiest_middle(counts: list[int], start: int, end: int) -> float:
    """The middle of the longest stretch of [start, end) where counts are lowest."""
    least = min(counts[start:end])
    best_start, best_len, run_start = start, 0, -1
    for i in range(start, end + 1):
        if i < end and counts[i] == least:
            run_start = i if run_start < 0 else run_start
        elif run_start >= 0:
            if i - run_start > best_len:
                best_start, best_len = run_start, i - run_start
            run_start = -1
    return best_start + best_len / 2


def _crosses(row: _Line, x: float, height: float) -> bool:
    """Whether the row runs across x: a word covers it, or it falls in a gap too narrow for the row's largest
    words to leave between two words of a line (a title's spaces are wider than the body's)."""
    open_gap = OPEN_GAP_HEIGHTS * max(height, max(w.bottom - w.top for w in row.words))
    return any(x0 < x < x1 for x0, x1 in _blocks_of(row, open_gap))


def _bands(rows: list[_Line], gutters: list[float], height: float) -> list[_Band]:
    """Rows cut into bands: runs of rows that cross no gutter, and the rows between them read across."""
    kinds = [any(_crosses(row, x, height) for x in gutters) for row in rows]
    bands: list[_Band] = []
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and kinds[j] == kinds[i]:
            j += 1
        full = kinds[i] or j - i < MIN_BAND_ROWS
        if bands and bands[-1].full_width and full:
            bands[-1].rows.extend(rows[i:j])
        else:
            bands.append(_Band(list(rows[i:j]), full))
        i = j
    return bands


def _blocks(bands: list[_Band], gutters: list[float], height: float) -> list[list[_Line]] | None:
    """Lines in reading order as blocks: a full-width band, then each column of a column band in turn.
    None when no band is in columns or the columns look like a table's."""
    blocks: list[list[_Line]] = []
    columns: list[list[_Line]] = [[] for _ in range(len(gutters) + 1)]
    for band in bands:
        if band.full_width:
            blocks.append(band.rows)
            continue
        slots: list[list[Word]] = [[] for _ in columns]
        for row in band.rows:
            for word in row.words:
                slots[bisect(gutters, (word.x0 + word.x1) / 2)].append(word)
        for column, words in zip(columns, slots):
            lines = _lines(words, height)
            column.extend(lines)
            blocks.append(lines)
    if not all(columns):
        return None
    text_width = max(line.x1 for column in columns for line in column) - min(
        line.x0 for column in columns for line in column)
    for lines in columns:
        width = max(line.x1 for line in lines) - min(line.x0 for line in lines)
        if (width < MIN_COLUMN_SHARE * text_width
                or median((line.x1 - line.x0) / width for line in lines) < MIN_LINE_FILL
                or median(sum(map(_word_count, line.words)) for line in lines) < MIN_LINE_WORDS):
            return None
    return [block for block in blocks if block]


def _word_count(word: Word) -> int:
    """One for a word, one per character for CJK text, which sets no spaces between words."""
    return max(1, len(_CJK_CHAR.findall(word.text)))


def _block_text(lines: list[_Line], pitch: float) -> str:
    """Lines one to a line of text, with a blank line where the gap to the next says a paragraph ends."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if i and line.top - lines[i - 1].top > PARAGRAPH_PITCH * pitch:
            out.append("")
        out.append(_line_text(line.words))
    return "\n".join(out).strip()


def _line_text(words: Sequence[Word]) -> str:
    """Words left to right, a space between them except between CJK characters and where words touch."""
    parts: list[str] = []
    previous: Word | None = None
    for word in words:
        if previous is not None:
            touching = word.x0 - previous.x1 < TOUCHING_GAP
            cjk = _CJK_CHAR.match(previous.text[-1]) and _CJK_CHAR.match(word.text[0])
            if not (touching or cjk):
                parts.append(" ")
        parts.append(word.text)
        previous = word
    return "".join(parts)


def _joined(texts: list[str]) -> str:
    """Blocks in order: a blank line after one that ends a sentence, a line break where it runs on."""
    out = ""
    for text in texts:
        if out:
            out += "\n\n" if _SENTENCE_END.search(out) else "\n"
        out += text
    return out
