"""Bad uploads over HTTP: each one gets a 4xx with a code, and what the knowledge base held before stays as it was."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from tests.api.kb_support import LEASE, NOTE, assert_error


def _pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _docx() -> bytes:
    import docx

    document = docx.Document()
    for n in range(50):
        document.add_paragraph(f"第{n}段：租金每月一日支付。")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xlsx() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for n in range(200):
        sheet.append([f"item {n}", n, n * 1.5])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _zip_bomb(member: str) -> bytes:
    """A small zip whose one member unpacks to 64 MiB of zeros (a ratio only a bomb has)."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("[Content_Types].xml", "<Types/>")
        bomb.writestr(member, b"\0" * (64 * 1024 * 1024))
    assert len(packed.getvalue()) < 1024 * 1024
    return packed.getvalue()


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_FILES = {
    "empty.txt": lambda: b"",
    "zero.pdf": lambda: b"",
    "truncated.pdf": lambda: _half(_pdf()),
    "blank-pages.pdf": _pdf,  # a valid PDF without any text
    "truncated.docx": lambda: _half(_docx()),
    "truncated.xlsx": lambda: _half(_xlsx()),
    "broken.epub": lambda: b"PK\x03\x04" + bytes(200),
    "bomb.docx": lambda: _zip_bomb("word/document.xml"),
    "bomb.xlsx": lambda: _zip_bomb("xl/worksheets/sheet1.xml"),
    "picture.pdf": lambda: b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(4000),  # wrong extension
    "spreadsheet.docx": lambda: _xlsx(),  # a zip of another Office kind
    "junk.txt": lambda: random.Random(2).randbytes(8000),
}


def _state(client) -> tuple:
    """What the knowledge base holds: its files (name, status, chunks), its counts and the hits for NOTE's words."""
    files = sorted((f["file_name"], f["status"], f["chunk_count"]) for f in client.get("/kbs/docs/files").json())
    info = client.get("/kbs/docs").json()
    hits = client.post("/kbs/docs/search", json={"query": "试用期最长多久", "top_k": 2, "score_threshold": 0}).json()
    return files, info["chunk_count"], [(h["metadata"]["source"], h["text"]) for h in hits]


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_a_422_naming_it_and_changes_nothing_stored(client, kb, name):
    before_files, before_chunks, before_hits = _state(client)
    error = assert_error(client.post("/kbs/docs/files", files=[("files", (name, BAD_FILES[name]()))]), 422,
                         "unreadable_file")
    assert name in error["message"]
    files, chunks, hits = _state(client)
    assert chunks == before_chunks and hits == before_hits
    # The failure stays visible as an error row; every file stored before is as it was.
    assert [f for f in files if f[0] != name] == before_files
    assert [f[1] for f in files if f[0] == name] in ([], ["error"])
    uploads = client.app.state.settings.paths.cache_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_a_bad_replacement_keeps_the_stored_version(client, kb):
    before = _state(client)
    error = assert_error(client.post("/kbs/docs/files", files=[("files", ("lease.txt", BAD_FILES["junk.txt"]()))],
                                     data={"override": "true"}), 422, "unreadable_file")
    assert "lease.txt" in error["message"]
    assert _state(client) == before
    assert client.get("/kbs/docs/files/lease.txt/download").content == LEASE


def test_one_bad_file_among_good_ones_is_listed_in_a_200(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("junk.txt", BAD_FILES["junk.txt"]())),
                                                     ("files", ("rent.txt", b"Rent is due on the first."))])
    assert response.status_code == 200
    results = {r["file_name"]: r for r in response.json()["results"]}
    assert results["rent.txt"]["status"] == "indexed" and results["rent.txt"]["code"] == ""
    assert results["junk.txt"]["status"] == "error" and results["junk.txt"]["code"] == "unreadable_file"


def test_files_failing_for_different_reasons_are_one_422_naming_each(client, kb):
    response = client.post("/kbs/docs/files", files=[("files", ("junk.txt", BAD_FILES["junk.txt"]())),
                                                     ("files", ("note.txt", NOTE))])  # unchanged: skipped
    assert response.status_code == 200  # a skipped file is no failure
    error = assert_error(client.post("/kbs/docs/files", files=[("files", ("a.txt", b"")),
                                                                ("files", ("b.pdf", b"%PDF-1.4 broken"))]), 422)
    assert "a.txt" in error["message"] and "b.pdf" in error["message"]


def test_ten_thousand_tiny_files_in_one_request_are_refused_and_nothing_is_kept(client, kb):
    before = _state(client)
    files = [("files", (f"tiny{n}.txt", b"x")) for n in range(10_000)]
    error = assert_error(client.post("/kbs/docs/files", files=files), 422)
    assert "too many files" in error["message"]
    assert _state(client) == before
    uploads = client.app.state.settings.paths.cache_dir / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
