"""Loaders for HTML and EPUB: markup to text, headings kept as Markdown '#' lines."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, ProcessingInstruction, Tag, XMLParsedAsHTMLWarning

from server.knowledge_base.loaders.encoding import BOMS, detect_and_decode
from server.knowledge_base.loaders.office import check_zip
from server.knowledge_base.loaders.tables import render_table
from server.knowledge_base.types import LoadedDoc, loaded_doc

_DROP = ("script", "style", "nav", "noscript", "template", "svg", "head", "iframe", "object", "button", "select")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "pre", "form", "fieldset", "figure", "figcaption", "address", "hr", "body", "html",
    "center", "details", "summary", "caption", "tbody", "thead",
}  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.I)
# The WHATWG encoding standard maps these labels to their supersets; browsers do the same.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs",
                    "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}  # fmt: skip


def decode_html(data: bytes, name: str) -> str:
    """Decode HTML bytes: BOM, valid UTF-8, a declared charset that really decodes, then detection."""
    if not any(data.startswith(bom) for bom, _ in BOMS):
        try:
            # Non-ASCII text that is valid UTF-8 by accident does not occur in practice, while
            # pages saved as UTF-8 that still declare their old charset are common.
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        head = data[:4096]
        match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
        if match:
            label = match.group(1).decode("ascii").lower()
            try:
                return data.decode(_CHARSET_ALIASES.get(label, label))
            except (LookupError, UnicodeDecodeError):
                pass  # a wrong declaration is common; fall back to detection
    return detect_and_decode(data, name)[0]


def html_to_text(markup: str | bytes) -> tuple[str, str | None]:
    """Return (text, title) for an HTML document; headings become '#' lines, tables '| a | b |' rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(markup, "lxml")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag else None
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(style=_HIDDEN_STYLE):
        tag.decompose()
    for tag in soup.find_all(hidden=True):
        tag.decompose()
    parts: list[str] = []
    _walk(soup, parts)
    text = _clean("".join(parts))
    if not title:
        match = re.search(r"^#+ (.+)$", text, re.M)
        title = match.group(1) if match else None
    return text, title or None


def _walk(root: Tag, out: list[str]) -> None:
    """Depth-first walk with an explicit stack: real-world HTML nests deeper than Python's recursion limit."""
    stack: list[object] = list(reversed(list(root.children)))
    while stack:
        node = stack.pop()
        if isinstance(node, str) and not isinstance(node, NavigableString):
            out.append(node)  # a closing marker pushed below
            continue
        if isinstance(node, (Comment, Doctype, ProcessingInstruction)):
            continue
        if isinstance(node, NavigableString):
            out.append(re.sub(r"\s+", " ", str(node)))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.split(":")[-1].lower()
        if name in _HEADINGS:
            heading = " ".join(node.get_text(" ").split())
            if heading:
                out.append(f"\n\n{'#' * _HEADINGS[name]} {heading}\n\n")
        elif name == "table":
            out.append(f"\n\n{_table(node)}\n\n")
        elif name == "br":
            out.append("\n")
        elif name == "pre":
            out.append("\n\n" + node.get_text() + "\n\n")
        else:
            opening, closing = ("\n- ", "") if name == "li" else ("\n\n", "\n\n") if name in _BLOCKS else ("", "")
            out.append(opening)
            stack.append(closing)
            stack.extend(reversed(list(node.children)))


def _table(table: Tag) -> str:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # rows of nested tables are part of their cell's text
        rows.append([cell.get_text(" ") for cell in tr.find_all(["td", "th"], recursive=False)])
    return render_table(rows).text


def _clean(text: str) -> str:
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"^-\n+(?=[^\n])", "- ", text, flags=re.M)  # list item whose text sits in a <p>
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_html(path: Path, source: str) -> list[LoadedDoc]:
    """An HTML page as one LoadedDoc."""
    text, title = html_to_text(decode_html(path.read_bytes(), source))
    return [loaded_doc(text, source, title)]


def load_epub(path: Path, source: str) -> list[LoadedDoc]:
    """An EPUB book: one LoadedDoc per spine document (chapter), in reading order."""
    import ebooklib
    from ebooklib import epub

    check_zip(path, source, "epub")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ebooklib warns about its own future defaults
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    docs = []
    for chapter, (item_id, _linear) in enumerate(book.spine, start=1):
        item = book.get_item_with_id(item_id)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        text, page_title = html_to_text(item.get_content())
        if not text.strip():
            continue
        # A chapter's <title> is usually the book title; its first heading names the chapter.
        match = re.search(r"^#+ (.+)$", text, re.M)
        title = match.group(1) if match else page_title
        docs.append(loaded_doc(text, source, title, chapter=chapter))
    return docs
