"""Turn a file of a supported format into LoadedDocs, or fail with a LoaderError that says why."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from server.errors import AppError, InvalidInput, UnsupportedMediaType
from server.knowledge_base.types import LoadedDoc, LoadOptions

logger = logging.getLogger(__name__)


class LoaderError(AppError):
    """A file could not be turned into text; the message names the file and the reason."""

    status = 422
    code = "unreadable_file"

    def __init__(self, file_name: str, reason: str) -> None:
        super().__init__(f"cannot load {file_name!r}: {reason}")
        self.file_name = file_name
        self.reason = reason


class UnsupportedFileType(LoaderError, UnsupportedMediaType):
    """The file extension has no loader (HTTP 415)."""

    status = 415
    code = "unsupported_file_type"


class UnreadableFile(LoaderError, InvalidInput):
    """The file is corrupt, undecodable or holds no text (HTTP 422)."""

    status = 422
    code = "unreadable_file"


# Imported after the error classes because the format modules raise them.
from server.knowledge_base.loaders import images, legacy, mail, markup, odf, office, pdf, text, web  # noqa: E402
from server.knowledge_base.loaders.archive import check_archive  # noqa: E402
from server.knowledge_base.loaders.encoding import read_text  # noqa: E402

Loader = Callable[[Path, str, LoadOptions], list[LoadedDoc]]
PlainLoader = Callable[[Path, str], list[LoadedDoc]]


def _plain(loader: PlainLoader) -> Loader:
    """A loader of a format that holds no pictures takes no options."""
    return lambda path, source, options: loader(path, source)


# extension -> (loader name reported in file listings, loader function)
_LOADERS: dict[str, tuple[str, Loader]] = {
    ".txt": ("text", _plain(text.load_txt)),
    ".md": ("markdown", _plain(text.load_markdown)),
    ".markdown": ("markdown", _plain(text.load_markdown)),
    ".csv": ("csv", _plain(text.load_csv)),
    ".json": ("json", _plain(text.load_json)),
    ".jsonl": ("jsonl", _plain(text.load_jsonl)),
    ".html": ("html:bs4-lxml", _plain(web.load_html)),
    ".htm": ("html:bs4-lxml", _plain(web.load_html)),
    ".epub": ("epub:ebooklib", _plain(web.load_epub)),
    ".pdf": ("pdf:pypdf+rapidocr", pdf.load_pdf),
    ".docx": ("docx:python-docx", office.load_docx),
    ".xlsx": ("xlsx:openpyxl", office.load_xlsx),
    ".pptx": ("pptx:python-pptx", office.load_pptx),
    ".doc": ("doc:catdoc", legacy.load_doc),
    ".ppt": ("ppt:catppt", legacy.load_ppt),
    ".odt": ("odt:odfpy", odf.load_odt),
    ".odp": ("odp:odfpy", odf.load_odp),
    ".ods": ("ods:odfpy", odf.load_ods),
    ".rtf": ("rtf:striprtf", markup.load_rtf),
    ".rst": ("rst", markup.load_rst),
    ".org": ("org", markup.load_org),
    ".xml": ("xml:lxml", markup.load_xml),
    ".eml": ("eml:email", mail.load_eml),
    ".msg": ("msg:extract-msg", mail.load_msg),
    **{ext: ("image:rapidocr", images.load_image) for ext in images.IMAGE_EXTENSIONS},
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_LOADERS)


def _extension(path: Path | str) -> str:
    return Path(path).suffix.lower()


def loader_name(ext: str) -> str:
    """Name of the loader used for an extension (with or without the dot), e.g. 'pdf:pypdf'."""
    key = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if key not in _LOADERS:
        raise UnsupportedFileType(f"*{key}", _unsupported_reason(key))
    return _LOADERS[key][0]


def _unsupported_reason(ext: str) -> str:
    shown = ext or "(no extension)"
    return f"unsupported file type {shown}; supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"


def load_file(path: Path, source: str | None = None, options: LoadOptions | None = None) -> list[LoadedDoc]:
    """Load one file into LoadedDocs; every LoadedDoc has non-empty text and metadata 'source' and 'format'.
    Options say whether pictures are OCRed (by default they are) and who hears of OCR progress."""
    path = Path(path)
    source = source or path.name
    ext = _extension(path)
    if ext not in _LOADERS:
        raise UnsupportedFileType(source, _unsupported_reason(ext))
    if not path.is_file():
        raise UnreadableFile(source, "file not found")
    _, loader = _LOADERS[ext]
    try:
        check_archive(path, source)
        docs = loader(path, source, options or LoadOptions())
    except LoaderError as exc:
        if exc.file_name == source:
            raise
        # A loader names the file it read, which may be a staged copy under another name.
        raise type(exc)(source, exc.reason) from exc
    except AppError as exc:
        raise UnreadableFile(source, exc.message) from exc
    except (OSError, MemoryError, RecursionError) as exc:
        raise UnreadableFile(source, f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - third-party parsers raise anything on corrupt input
        logger.warning("%s loader failed on %s: %r", ext, source, exc)
        logger.debug("loader traceback", exc_info=True)
        raise UnreadableFile(source, f"corrupt or unreadable {ext[1:]} file ({type(exc).__name__}: {exc})") from exc
    docs = [doc for doc in docs if doc.text.strip()]
    if not docs:
        raise UnreadableFile(source, "the file contains no text")
    for doc in docs:
        doc.metadata.setdefault("source", source)
        doc.metadata.setdefault("format", ext[1:])
    return docs


__all__ = [
    "SUPPORTED_EXTENSIONS",
    "LoadOptions",
    "LoaderError",
    "UnreadableFile",
    "UnsupportedFileType",
    "load_file",
    "loader_name",
    "read_text",
]
