"""Structure-preserving, Chinese-aware text splitter.

A document is cut first by structure: Markdown headings (and 第X编/章/节 lines) open sections whose
path goes to chunk metadata, and within a section each 第X条 article of a law is an atomic unit;
several short articles share a chunk, a long one is split like any other text. Other text is
split recursively: paragraphs, sentences, lines, clauses, then a hard cut as the last resort.
Overlap repeats the tail of the previous chunk, cut at a sentence or clause boundary where
possible, and only between chunks of one unit, never across headings or articles.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from server.errors import InvalidInput
from server.knowledge_base import boundaries as bd
from server.knowledge_base.types import Chunk, LoadedDoc

Unit = Literal["chars", "tokens"]

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_NUMERAL = r"[零〇一二三四五六七八九十百千万两\d０-９]+"
# Levels on the Markdown scale so both kinds of heading nest in one stack.
_CN_LEVELS = {"编": 2, "分编": 3, "章": 4, "节": 5}
_CN_HEADING = re.compile(rf"^[ \t\u3000]*(?:\*\*)?(第{_NUMERAL}(分编|编|章|节))(?:\*\*)?(?:[ \t\u3000]+(.*?))?[ \t\u3000]*$")
_ARTICLE = re.compile(rf"^[ \t\u3000]*(?:\*\*)?第{_NUMERAL}条(?:之[一二三四五六七八九十]+)?(?:\*\*)?(?=[ \t\u3000\n]|$)", re.M)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def splitter_name(chunk_size: int, chunk_overlap: int, unit: Unit = "chars") -> str:
    """Identifier of the splitter and its parameters, stored with every ingested file."""
    return f"structure-recursive:{chunk_size}/{chunk_overlap}:{unit}"


def chunk_text_with_headings(chunk: Chunk) -> str:
    """The chunk text preceded by its heading path ('A > B' line), for indexing with context."""
    path = chunk.metadata.get("heading_path") or []
    return f"{' > '.join(path)}\n{chunk.text}" if path else chunk.text


def article_at(text: str, offset: int) -> str | None:
    """The 第X条 label of the law article that ``text`` is in at ``offset``: the last one opening a line at or
    before it, without its markup; None when none does (a chunk that starts inside an article, or no law)."""
    label = None
    for match in _ARTICLE.finditer(text):
        if match.start() > offset:
            break
        label = match.group().strip(" \t\u3000*")
    return label


def split_documents(
    docs: list[LoadedDoc],
    chunk_size: int,
    chunk_overlap: int,
    unit: Unit = "chars",
    token_counter: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Split the LoadedDocs of one file into chunks no longer than chunk_size (in chars or tokens)."""
    if unit not in ("chars", "tokens"):
        raise InvalidInput(f"chunk unit must be 'chars' or 'tokens', not {unit!r}")
    if unit == "tokens" and token_counter is None:
        raise InvalidInput("chunk unit 'tokens' needs a token counter")
    if chunk_size < 1:
        raise InvalidInput(f"chunk_size must be at least 1, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise InvalidInput(f"chunk_overlap must be between 0 and chunk_size - 1, got {chunk_overlap}")
    chunks: list[Chunk] = []
    for doc in docs:
        spans = doc.metadata.get("row_spans") or []
        # A table row carries its own headers, so a chunk of a table needs no overlap; a partial row
        # carried over would be a value cut from its header.
        overlap = 0 if spans else chunk_overlap
        splitter = _DocSplitter(doc.text, chunk_size, overlap, token_counter if unit == "tokens" else None)
        base = {k: v for k, v in doc.metadata.items() if k not in ("row_spans", "heading_path")}
        outer = list(doc.metadata.get("heading_path") or [])  # a loader's (a table's titles)
        offsets = [offset for offset, _ in spans]
        for start, end, path in splitter.split():
            text = _normalize(doc.text[start:end])
            if not text:
                continue
            metadata = {**base, "chunk_index": len(chunks), "heading_path": [*outer, *path], "start": start}
            rows = _row_range(spans, offsets, start, end)
            if rows:
                metadata["rows"] = rows
            chunks.append(Chunk(text=text, metadata=metadata))
    return chunks


def _row_range(spans: list[list[int]], offsets: list[int], start: int, end: int) -> list[int] | None:
    """[first, last] row number of the table rows a chunk [start, end) touches (see types.LoadedDoc)."""
    if not spans:
        return None
    first = max(bisect.bisect_right(offsets, start) - 1, 0)
    last = max(bisect.bisect_left(offsets, end) - 1, first)
    if offsets[first] >= end:  # a chunk of title rows above the table
        return None
    return [spans[first][1], spans[last][1]]


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@dataclass
class _Section:
    path: tuple[str, ...]
    level: int  # of its own heading; 0 for text before the first heading
    start: int
    end: int
    heading: tuple[int, int] | None  # span of the heading title, for sections with no body


def _sections(text: str) -> list[_Section]:
    """Cut the text at heading lines; each section's body excludes its heading line."""
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    body_start, level, heading_span, in_fence = 0, 0, None, False
    pos = 0
    for line in text.splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        content = line.rstrip("\r\n")
        if _FENCE.match(content):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _heading(content)
        if heading is None:
            continue
        new_level, title, title_offset = heading
        sections.append(_Section(tuple(t for _, t in stack), level, body_start, line_start, heading_span))
        while stack and stack[-1][0] >= new_level:
            stack.pop()
        stack.append((new_level, title))
        body_start, level = pos, new_level
        heading_span = (line_start + title_offset, line_start + len(content))
    sections.append(_Section(tuple(t for _, t in stack), level, body_start, len(text), heading_span))
    return sections


def _heading(line: str) -> tuple[int, str, int] | None:
    """(level, title, offset of the title in the line) when the line is a heading."""
    match = _MD_HEADING.match(line)
    if match:
        title = match.group(2).strip().strip("*").strip()
        if title:
            return len(match.group(1)), " ".join(title.split()), match.start(2)
        return None
    if len(line) > 60:
        return None
    match = _CN_HEADING.match(line)
    if match and not (match.group(3) or "").endswith(("。", "；", "，", ";", ",")):
        title = " ".join(filter(None, [match.group(1), match.group(3)]))
        return _CN_LEVELS[match.group(2)], " ".join(title.split()), match.start(1)
    return None


class _DocSplitter:
    """Splits one document's text into (start, end, heading_path) spans."""

    def __init__(self, text: str, size: int, overlap: int, counter: Callable[[str], int] | None) -> None:
        self.text, self.size, self.overlap, self.counter = text, size, overlap, counter

    def measure(self, start: int, end: int) -> int:
        return end - start if self.counter is None else self.counter(self.text[start:end])

    def split(self) -> list[tuple[int, int, tuple[str, ...]]]:
        out: list[tuple[int, int, tuple[str, ...]]] = []
        sections = _sections(self.text)
        for i, section in enumerate(sections):
            if bd.trim(self.text, section.start, section.end) is None:
                following = sections[i + 1].level if i + 1 < len(sections) else 0
                # A heading with neither body nor sub-sections would vanish from the index.
                if section.heading and following <= section.level:
                    out.extend((s, e, section.path) for s, e in self.split_unit(*section.heading))
                continue
            out.extend((s, e, section.path) for s, e in self.split_section(section.start, section.end))
        return out

    def split_section(self, start: int, end: int) -> list[tuple[int, int]]:
        """Articles are atomic and packed together; text around them is split with overlap."""
        bounds = [m.start() for m in _ARTICLE.finditer(self.text, start, end)]
        units: list[tuple[int, int, bool]] = []
        for a, b, is_article in zip([start, *bounds], [*bounds, end], [False] + [True] * len(bounds)):
            span = bd.trim(self.text, a, b)
            if span:
                units.append((*span, is_article))
        out: list[tuple[int, int]] = []
        pack: tuple[int, int] | None = None
        for s, e, is_article in units:
            if is_article and self.measure(s, e) <= self.size:
                if pack and self.measure(pack[0], e) <= self.size:
                    pack = (pack[0], e)
                    continue
                if pack:
                    out.append(pack)
                pack = (s, e)
                continue
            if pack:
                out.append(pack)
                pack = None
            out.extend(self.split_unit(s, e))
        if pack:
            out.append(pack)
        return out

    def split_unit(self, start: int, end: int) -> list[tuple[int, int]]:
        """Greedy packing of atoms (pieces that fit) with overlap between consecutive chunks."""
        atoms = self.atomize(start, end, 0)
        out: list[tuple[int, int]] = []
        current: tuple[int, int] | None = None
        for s, e in atoms:
            if current is None:
                current = (s, e)
            elif self.measure(current[0], e) <= self.size:
                current = (current[0], e)
            else:
                out.append(current)
                head = self.overlap_start(current, e)
                current = (head if head is not None else s, e)
        if current:
            out.append(current)
        return out

    _LEVELS = (bd.paragraph_starts, bd.sentence_starts, bd.line_starts, bd.clause_starts)

    def atomize(self, start: int, end: int, level: int) -> list[tuple[int, int]]:
        """Cut a span at ever finer boundaries until every piece fits."""
        if self.measure(start, end) <= self.size:
            return [(start, end)]
        if level == len(self._LEVELS):
            return self.hard_cut(start, end)
        parts = bd.pieces(self.text, self._LEVELS[level](self.text, start, end), start, end)
        if len(parts) <= 1:
            return self.atomize(start, end, level + 1)
        return [atom for s, e in parts for atom in self.atomize(s, e, level + 1)]

    def hard_cut(self, start: int, end: int) -> list[tuple[int, int]]:
        """Last resort: cut at the longest prefix that fits, at a word boundary when there is one."""
        out = []
        while start < end:
            cut = self.longest_fit(start, end)
            if cut < end:
                words = [p for p in bd.word_starts(self.text, start, cut + 1) if p > start]
                if words and words[-1] - start >= (cut - start) // 2:
                    cut = words[-1]
            span = bd.trim(self.text, start, cut)
            if span:
                out.append(span)
            start = cut
        return out

    def longest_fit(self, start: int, end: int) -> int:
        if self.counter is None:
            return min(end, start + self.size)
        # Grow the probe geometrically first so a huge span never goes whole to the token counter.
        lo, probe = start + 1, start + self.size  # a single character always goes, even if it counts as more tokens
        while probe < end and self.measure(start, probe) <= self.size:
            lo, probe = probe, start + (probe - start) * 2
        hi = min(probe, end)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.measure(start, mid) <= self.size:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def overlap_start(self, previous: tuple[int, int], next_end: int) -> int | None:
        """Where the next chunk starts inside the previous one so that it repeats up to `overlap` of its tail."""
        if not self.overlap:
            return None
        p_start, p_end = previous
        window = self.overlap if self.counter is None else self.overlap * 8
        lo = max(p_start + 1, p_end - window)
        candidates_by_preference = (
            bd.sentence_starts(self.text, lo - 1, p_end) + bd.line_starts(self.text, lo - 1, p_end),
            bd.clause_starts(self.text, lo - 1, p_end),
            bd.word_starts(self.text, lo - 1, p_end),
        )
        for candidates in candidates_by_preference:
            found = self.first_fitting(sorted(p for p in set(candidates) if p >= lo), p_end, next_end)
            if found is not None:
                return found
        if bd.has_cjk(self.text[lo:p_end]):
            return self.first_fitting(list(range(lo, p_end)), p_end, next_end)
        return None

    def first_fitting(self, positions: list[int], p_end: int, next_end: int) -> int | None:
        """Earliest position whose tail fits in the overlap and leaves the next chunk within size."""
        lo, hi = 0, len(positions)
        while lo < hi:  # both conditions only get easier as the position moves right
            mid = (lo + hi) // 2
            p = positions[mid]
            if self.measure(p, p_end) <= self.overlap and self.measure(p, next_end) <= self.size:
                hi = mid
            else:
                lo = mid + 1
        if lo == len(positions) or bd.trim(self.text, positions[lo], p_end) is None:
            return None
        return positions[lo]
