"""Loaders for lightweight markup and marked-up text: RTF, reStructuredText, Org mode and XML."""

from __future__ import annotations

import re
from pathlib import Path

from server.knowledge_base.loaders.encoding import read_text
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

# reStructuredText section adornments: a line of one repeated punctuation character.
_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+[\w-]+::.*$", re.M)
_ORG_HEADING = re.compile(r"^(\*+)\s+(?:(?:TODO|DONE)\s+)?(.*?)(?:\s+:[\w:@]+:)?\s*$")
_ORG_KEYWORD = re.compile(r"^#\+(\w+):\s*(.*)$")


def load_rtf(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An RTF document's text through striprtf; \\'xx escapes are decoded with the document's code page."""
    from striprtf.striprtf import rtf_to_text

    from server.knowledge_base.loaders import UnreadableFile

    raw = path.read_bytes()
    if not raw.lstrip().startswith(b"{\\rtf"):
        raise UnreadableFile(source, "not a valid rtf file (it does not start with '{\\rtf')")
    match = re.search(rb"\\ansicpg(\d+)", raw[:4096])
    encoding = f"cp{match.group(1).decode()}" if match else "cp1252"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "cp1252"
    # RTF is 7-bit: anything else is written as an escape, so latin-1 never fails and changes nothing.
    text = rtf_to_text(raw.decode("latin-1"), encoding=encoding, errors="replace")
    return [loaded_doc(_paragraphs(text), source)]


def _paragraphs(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def load_rst(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A reStructuredText file, its section titles turned into '#' headings (levels in order of first use)."""
    lines = read_text(path, source).splitlines()
    styles: list[str] = []
    out: list[str] = []
    title = None
    i = 0
    while i < len(lines):
        line = lines[i]
        overline = _RST_ADORNMENT.match(line) and i + 2 < len(lines) and _RST_ADORNMENT.match(lines[i + 2])
        if overline and lines[i + 1].strip() and lines[i + 2][:1] == line[:1]:
            style, text, i = "over" + line[0], lines[i + 1].strip(), i + 3
        elif (line.strip() and i + 1 < len(lines) and _RST_ADORNMENT.match(lines[i + 1])
              and len(lines[i + 1].rstrip()) >= len(line.rstrip())):
            style, text, i = lines[i + 1][0], line.strip(), i + 2
        else:
            out.append(line)
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        title = title or text
        out.append(f"{'#' * min(styles.index(style) + 1, 6)} {text}")
    text = _RST_DIRECTIVE.sub("", "\n".join(out))
    return [loaded_doc(text, source, title)]


def load_org(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An Org-mode file: '*' headings become '#' headings, #+TITLE names the document, other #+ lines go."""
    out: list[str] = []
    title = None
    for line in read_text(path, source).splitlines():
        keyword = _ORG_KEYWORD.match(line)
        if keyword:
            if keyword.group(1).upper() == "TITLE" and keyword.group(2).strip():
                title = keyword.group(2).strip()
            continue
        heading = _ORG_HEADING.match(line)
        if heading and heading.group(2):
            out.append(f"{'#' * min(len(heading.group(1)), 6)} {heading.group(2)}")
        else:
            out.append(line)
    return [loaded_doc("\n".join(out), source, title)]


def load_xml(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """An XML document's text content, one paragraph per element that holds text (markup dropped)."""
    from lxml import etree

    from server.knowledge_base.loaders import UnreadableFile

    # No DTD loading, no entity expansion, no network: an upload must not make the server fetch or explode.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as exc:
        raise UnreadableFile(source, f"invalid XML ({exc})") from exc
    blocks = []
    for element in root.iter():
        # An unexpanded entity reference shows as '&name;': only the text after it is content.
        text = element.text if isinstance(element.tag, str) else None
        for piece in (text, element.tail if element is not root else None):
            if piece and piece.strip():
                blocks.append(" ".join(piece.split()))
    return [loaded_doc("\n\n".join(blocks), source)]
