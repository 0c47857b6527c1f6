"""PDF loader: the text layer of each page through pypdf (no OCR)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PyPdfError

from server.knowledge_base.types import LoadedDoc, loaded_doc

logger = logging.getLogger(__name__)
# pypdf logs a warning for every font quirk of every page (missing fontTools, wrong xref offsets)
# while still extracting the text; only its errors are worth a line in kbchat's log.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def load_pdf(path: Path, source: str) -> list[LoadedDoc]:
    """One LoadedDoc per page that has text, with metadata 'page' (1-based)."""
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
    docs = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except (PyPdfError, KeyError, ValueError, TypeError) as exc:
            # One broken page should not cost the rest of the document.
            logger.warning("%s: page %d has unreadable text (%s); skipped", source, number, exc)
            continue
        text = _CONTROL.sub("", text).strip()
        if not text:
            continue
        docs.append(loaded_doc(text, source, title, page=number))
    if not docs:
        raise UnreadableFile(
            source,
            f"the PDF has no text layer ({len(pages)} page(s) of images, e.g. a scan); it needs OCR before it can be indexed",
        )
    return docs


def _title(reader: PdfReader) -> str | None:
    try:
        meta = reader.metadata
        title = meta.title if meta else None
    except (PyPdfError, KeyError, ValueError, TypeError):
        return None
    return title.strip() if isinstance(title, str) and title.strip() else None
