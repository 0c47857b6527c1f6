"""PDF loader: the text layer of each page through pypdf; OCR for pages without one and for pictures.

A page whose text layer holds a ruled table is read by pdfplumber instead, the table as rows (pdf_tables.py),
and so is a page set in columns, one column after the other (pdf_columns.py); other pages keep pypdf's text.
A page with no text layer (a scan) is rendered by poppler's pdftoppm and read by OCR; on a page that has
text, pictures large enough to hold text are OCRed too and their text follows the page's.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections import Counter
from collections.abc import Collection
from pathlib import Path

from pypdf import PageObject, PdfReader
from pypdf.errors import FileNotDecryptedError, PyPdfError

from server.knowledge_base.loaders.ocr import ocr_image, ocr_picture
from server.knowledge_base.loaders.pdf_layout import laid_out_pages
from server.knowledge_base.loaders.tools import find_tool, run_tool
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

logger = logging.getLogger(__name__)
# pypdf logs a warning for every font quirk of every page (missing fontTools, wrong xref offsets)
# while still extracting the text; only its errors are worth a line in kbchat's log.
logging.getLogger("pypdf").setLevel(logging.ERROR)

RENDER_PX = 2000
# A page's content stream this short draws nothing that could be text (a blank page's is empty or a few ops).
_EMPTY_CONTENT_BYTES = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Running heads and feet are looked for in documents of at least this many pages with text.
RUNNING_MIN_PAGES = 3
_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")
_LEADING_NUMBER = re.compile(r"^#+ ")
_TRAILING_NUMBER = re.compile(r" #+$")


def load_pdf(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """One LoadedDoc per page that has text, with metadata 'page' (1-based) and 'ocr' where OCR read it."""
    from server.knowledge_base.loaders import UnreadableFile

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile(source, "the PDF is password-protected")
        pages = list(reader.pages)
    except FileNotDecryptedError as exc:
        raise UnreadableFile(source, "the PDF is password-protected") from exc
    except PyPdfError as exc:
        raise UnreadableFile(source, f"corrupt PDF ({exc})") from exc
    title = _title(reader)
    texts = [_page_text(page, number, source) for number, page in enumerate(pages, start=1)]
    with_text = [n for n, t in enumerate(texts, start=1) if t]
    laid_out = laid_out_pages(path, source, with_text, tables=options.pdf_tables)
    for number, page in laid_out.items():
        texts[number - 1] = page.text
    texts = without_running_lines(texts, [number for number, page in laid_out.items() if page.in_columns])
    ocr_texts: dict[int, str] = {}
    if options.ocr:
        ocr_texts = _ocr_pages(path, source, pages, texts, options)
    docs = []
    for number, text in enumerate(texts, start=1):
        extra = ocr_texts.get(number, "").strip()
        full = "\n\n".join(part for part in (text, extra) if part)
        if not full:
            continue
        doc = loaded_doc(full, source, title, page=number)
        if extra:
            doc.metadata["ocr"] = True
        docs.append(doc)
    if not docs:
        hint = "OCR found no text in it" if options.ocr else "it needs OCR, which is turned off for this upload"
        raise UnreadableFile(
            source, f"the PDF has no text layer ({len(pages)} page(s) of images, e.g. a scan); {hint}")
    return docs


def _line_key(line: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("#", line)).strip()


def _unnumbered(key: str) -> str:
    """A line key less a number it starts with, or else one it ends with: the page number of a running head."""
    return _LEADING_NUMBER.sub("", key) if _LEADING_NUMBER.match(key) else _TRAILING_NUMBER.sub("", key)


def without_running_lines(texts: list[str], in_columns: Collection[int] = ()) -> list[str]:
    """The page texts without their running heads and feet: lines that recur, digits aside, on at least half
    of the pages with text (and on three or more), such as "Federal Register / Vol. 85, No. 152 / ...", page
    numbers and typesetting codes. The text layer puts them wherever the page drew them, often mid-sentence,
    where they would split a sentence in two for the search and the model. A line made of two such lines run
    together goes too. On pages read in columns (numbers 1-based) a head goes also when it has its page
    number at the other end: read by position, the number stands where the page shows it, not where the
    text layer drew it."""
    pages = [t for t in texts if t]
    if len(pages) < RUNNING_MIN_PAGES:
        return texts
    counts: Counter[str] = Counter()
    for text in pages:
        counts.update({key for key in map(_line_key, text.splitlines()) if key})
    running = {key for key, n in counts.items() if n >= max(RUNNING_MIN_PAGES, len(pages) / 2)}
    if not running:
        return texts

    unnumbered = {_unnumbered(key) for key in running}
    columns = set(in_columns)

    def is_running(key: str, number: int) -> bool:
        if key in running or any(key.startswith(r) and key[len(r):].strip() in running
                                 for r in running if len(r) >= 20):
            return True
        return number in columns and _unnumbered(key) != key and _unnumbered(key) in unnumbered

    return ["\n".join(line for line in text.splitlines() if not is_running(_line_key(line), number)).strip()
            for number, text in enumerate(texts, start=1)]


def _page_text(page: PageObject, number: int, source: str) -> str:
    try:
        text = page.extract_text() or ""
    except (PyPdfError, KeyError, ValueError, TypeError) as exc:
        # One broken page should not cost the rest of the document.
        logger.warning("%s: page %d has unreadable text (%s); skipped", source, number, exc)
        return ""
    return _CONTROL.sub("", text).strip()


def _ocr_pages(path: Path, source: str, pages: list[PageObject], texts: list[str],
               options: LoadOptions) -> dict[int, str]:
    """OCR text by page number: whole rendered pages where there is no text layer, else their pictures."""
    blank = [number for number, text in enumerate(texts, start=1) if not text and _drawn(pages[number - 1])]
    pictured = [number for number, text in enumerate(texts, start=1) if text and _has_pictures(pages[number - 1])]
    todo = sorted(blank + pictured)
    found: dict[int, str] = {}
    if not todo:
        return found
    pdftoppm = find_tool("pdftoppm", "poppler-utils", source) if blank else ""
    with tempfile.TemporaryDirectory(prefix="kbchat-ocr-") as tmp:
        for done, number in enumerate(todo):
            options.ocr_page(done, len(todo))
            if number in blank:
                found[number] = ocr_image(_render(pdftoppm, path, number, Path(tmp), source))
            else:
                found[number] = "\n".join(t for t in map(ocr_picture, _pictures(pages[number - 1], source)) if t)
        options.ocr_page(len(todo), len(todo))
    return found


def _render(pdftoppm: str, path: Path, number: int, tmp: Path, source: str) -> bytes:
    # The longest side at RENDER_PX matches the OCR detector's input limit: larger costs time, not accuracy.
    run_tool([pdftoppm, "-f", str(number), "-l", str(number), "-scale-to", str(RENDER_PX), "-png",
              "-singlefile", str(path), str(tmp / "page")], source)
    out = tmp / "page.png"
    data = out.read_bytes()
    out.unlink()
    return data


def _drawn(page: PageObject) -> bool:
    """Whether a page without text shows anything: a picture, or drawing (outlined glyphs are paths).
    An empty page is not worth rendering and OCR."""
    if _has_pictures(page):
        return True
    try:
        contents = page.get_contents()
        return contents is not None and len(contents.get_data().strip()) > _EMPTY_CONTENT_BYTES
    except (PyPdfError, KeyError, ValueError, TypeError, AttributeError):
        return True


def _has_pictures(page: PageObject) -> bool:
    try:
        resources = page.get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        if xobjects is None:
            return False
        return any(x.get_object().get("/Subtype") == "/Image" for x in xobjects.get_object().values())
    except (PyPdfError, KeyError, ValueError, TypeError, AttributeError):
        return False


def _pictures(page: PageObject, source: str) -> list[bytes]:
    try:
        return [image.data for image in page.images]
    except Exception as exc:  # noqa: BLE001 - pypdf's image decoders raise anything on odd filters
        logger.warning("%s: pictures of a page could not be extracted (%r)", source, exc)
        return []


def _title(reader: PdfReader) -> str | None:
    try:
        meta = reader.metadata
        title = meta.title if meta else None
    except (PyPdfError, KeyError, ValueError, TypeError):
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None
