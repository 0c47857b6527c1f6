"""Old binary Office files (.doc, .ppt) through catdoc/catppt; OOXML files saved under an old extension
(a .doc that is really a .docx, as Word and many converters write) go to the OOXML loaders."""

from __future__ import annotations

import zipfile
from pathlib import Path

from server.knowledge_base.loaders import office
from server.knowledge_base.loaders.tools import find_tool, run_tool
from server.knowledge_base.types import LoadedDoc, LoadOptions, loaded_doc

# Compound File Binary (OLE2) signature, shared by every pre-2007 Office format.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# catdoc, catppt and xls2csv ship in one Debian package.
CATDOC_PACKAGE = "catdoc"


def load_doc(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A Word 97-2003 document as one LoadedDoc (paragraphs kept), or an OOXML one through load_docx."""
    if zipfile.is_zipfile(path):
        return office.load_docx(path, source, options)
    _check_ole(path, source, "doc")
    text = run_tool([find_tool("catdoc", CATDOC_PACKAGE, source), "-d", "utf-8", "-w", str(path)], source)
    return [loaded_doc(_clean(text), source)]


def load_ppt(path: Path, source: str, options: LoadOptions) -> list[LoadedDoc]:
    """A PowerPoint 97-2003 deck as one LoadedDoc, or an OOXML one through load_pptx (a LoadedDoc per slide)."""
    if zipfile.is_zipfile(path):
        return office.load_pptx(path, source, options)
    _check_ole(path, source, "ppt")
    text = run_tool([find_tool("catppt", CATDOC_PACKAGE, source), "-d", "utf-8", str(path)], source)
    return [loaded_doc(_clean(text), source)]


def _check_ole(path: Path, source: str, kind: str) -> None:
    from server.knowledge_base.loaders import UnreadableFile

    with open(path, "rb") as handle:
        if handle.read(len(OLE_MAGIC)) != OLE_MAGIC:
            raise UnreadableFile(source, f"not a valid {kind} file (neither an OLE2 Office file nor OOXML)")


def _clean(raw: bytes) -> str:
    # catdoc marks page breaks with form feeds and keeps Word's cell separators as control characters.
    text = raw.decode("utf-8", "replace").replace("\f", "\n\n")
    return "".join(ch if ch in "\n\t" or ch >= " " else " " for ch in text).strip()
