"""Loaders for HTML and EPUB: markup to text, headings kept as Markdown '#' lines.

A saved web page is read from its main content when it marks one (<main>), without the site's menus,
search boxes, footers and lists of the page in other languages."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, ProcessingInstruction, Tag, XMLParsedAsHTMLWarning

from server.knowledge_base.loaders.encoding import BOMS, detect_and_decode
from server.knowledge_base.loaders.mojibake import repair_mojibake
from server.knowledge_base.loaders.office import check_zip
from server.knowledge_base.loaders.tables import ROW_SEPARATOR, render_table
from server.knowledge_base.types import LoadedDoc, loaded_doc

_DROP = ("script", "style", "nav", "noscript", "template", "svg", "head", "iframe", "object", "button", "select")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "pre", "form", "fieldset", "figure", "figcaption", "address", "hr", "body", "html",
    "center", "details", "summary", "caption", "tbody", "thead",
}  # fmt: skip
# Page chrome by its ARIA landmark role: menus, site banners, footers and search boxes.
_CHROME_ROLES = re.compile(r"^(navigation|banner|contentinfo|search)$", re.I)
# A page whose <main> (or role="main") holds at least this share of its text is read from there alone:
# the rest is menus, language lists and footers. Below it, <main> is taken for a widget, not the page.
MAIN_SHARE = 0.3
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.I)
# The WHATWG encoding standard maps these labels to their supersets; browsers do the same.
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs",
                    "iso-8859-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252"}  # fmt: skip


def decode_html(data: bytes, name: str) -> str:
    """Decode HTML bytes: BOM, valid UTF-8, a declared charset that really decodes, then detection; UTF-8
    once read as Latin-1 or cp1252 is repaired on every path (detection repairs its own)."""
    if not any(data.startswith(bom) for bom, _ in BOMS):
        try:
            # Non-ASCII text that is valid UTF-8 by accident does not occur in practice, while
            # pages saved as UTF-8 that still declare their old charset are common.
            return repair_mojibake(data.decode("utf-8"), name)
        except UnicodeDecodeError:
            pass
        head = data[:4096]
        match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
        if match:
            label = match.group(1).decode("ascii").lower()
            try:
                return repair_mojibake(data.decode(_CHARSET_ALIASES.get(label, label)), name)
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
    for tag in soup.find_all(role=_CHROME_ROLES):
        if not tag.decomposed:
            tag.decompose()
    for tag in soup.find_all(["ul", "ol"]):
        if not tag.decomposed and _language_switcher(tag):
            tag.decompose()
    parts: list[str] = []
    _walk(_content_root(soup), parts)
    text = _clean("".join(parts))
    if not title:
        match = re.search(r"^#+ (.+)$", text, re.M)
        title = match.group(1) if match else None
    return text, title or None


def _text_size(tag: Tag) -> int:
    return sum(len(piece.strip()) for piece in tag.find_all(string=True)
               if not isinstance(piece, (Comment, Doctype, ProcessingInstruction)))


def _language_switcher(tag: Tag) -> bool:
    """A list of links to the page in other languages (links with hreflang): the page's words in 100
    languages match nothing a reader asks."""
    items = tag.find_all("li", recursive=False)
    linked = sum(1 for item in items if item.find("a", hreflang=True))
    return len(items) >= 3 and linked >= 0.8 * len(items)


def _content_root(soup: BeautifulSoup) -> Tag:
    """The page's main content: its one <main> (or role="main") element when that holds at least
    MAIN_SHARE of the page's text, else the whole page. A page saved from a site keeps its menus,
    language lists and footers outside <main>; read whole, they become chunks that match any question."""
    mains = soup.find_all(lambda tag: tag.name == "main" or str(tag.get("role", "")).lower() == "main")
    ids = {id(tag) for tag in mains}
    outermost = [tag for tag in mains if not any(id(parent) in ids for parent in tag.parents)]
    if len(outermost) != 1:
        return soup
    total = _text_size(soup)
    return outermost[0] if total and _text_size(outermost[0]) >= MAIN_SHARE * total else soup


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
    rows: list[list[Tag]] = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # rows of nested tables are part of their cell's text
        rows.append(tr.find_all(["td", "th"], recursive=False))
    texts = [[" ".join(cell.get_text(" ").split()) for cell in row] for row in rows]
    if _key_value(rows, texts):
        return ROW_SEPARATOR.join(_key_value_line(row) for row in texts if any(row))
    return render_table(texts).text


def _key_value(rows: list[list[Tag]], texts: list[list[str]]) -> bool:
    """A table of labelled values (an infobox, a data sheet): no row wider than two cells, no header row
    of two <th>, and the rows of two name their value in the first, a <th> or a label ending in a colon.
    Read with a header row, such a table would label every value with the first row's cells."""
    if any(len(row) > 2 for row in rows):
        return False
    first = next((row for row in rows if row), [])
    if len(first) == 2 and all(cell.name == "th" for cell in first):
        return False  # a header row over two columns ("Year", "Sales"), each row headed by its own <th>
    pairs = [(row, text) for row, text in zip(rows, texts) if len(row) == 2 and all(text)]
    labelled = sum(1 for row, text in pairs if row[0].name == "th" or text[0].endswith((":", "：")))
    return len(pairs) >= 2 and labelled >= 0.8 * len(pairs)


def _key_value_line(cells: list[str]) -> str:
    """'label: value' for a labelled row, the text alone for a heading row of one cell."""
    cells = [cell for cell in cells if cell]
    if len(cells) == 2:
        return f"{cells[0].rstrip(':：').strip()}: {cells[1]}"
    return "; ".join(cells)


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
