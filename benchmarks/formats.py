"""Formats and OCR: every file of the parity and Chinese sets through the real loaders, and OCR accuracy.

    python -m benchmarks.formats [--quick] [--out PATH]

Part 1, per file of ../shared/data/docs/parity and ../shared/data/docs/zh/files: the loader used, the
seconds to load and split it (default chunk size and overlap, OCR on), the chunks it gives, and for the
parity set (one English/Spanish text in 14 formats) the overlap of its word set with the .txt version's:
recall (share of the .txt's distinct words found) and Jaccard (shared / all distinct words of both).
Words are lower-cased \\w+ runs.

Part 2, OCR against a ground truth: pages of PDFs that have a text layer are rendered by pdftoppm exactly
as the loader renders scanned pages, read by OCR, and compared with the page's own text layer, with all
whitespace removed: character accuracy = 1 - edit distance / length of the text layer (reading order
counts), and bag-of-characters F1 (reading order does not). Pages/s counts rendering and OCR.
--quick reads one page per PDF.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import base_parser, print_table, require_shared_data, setup_logging, write_result

logger = logging.getLogger("benchmarks.formats")

FOLDERS = ("docs/parity", "docs/zh/files")
PARITY_REFERENCE = "unstructured_eng_spa_mult.txt"
# Text PDFs with a ground truth: (file, language, pages in a full run)
OCR_PDFS = (
    ("docs/zh/files/pymupdf_chinese-tables.pdf", "zh", 1),
    ("docs/zh/files/pypdf_multilang.pdf", "mixed", 1),
    ("docs/en/files/pdfplumber_scotus-transcript-p1.pdf", "en", 1),
    ("docs/en/files/pdfplumber_federal-register-2020-17221.pdf", "en", 3),
    ("docs/en/files/unstructured_layout-parser-paper-fast.pdf", "en", 2),
)
_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def bag_f1(ocr: str, truth: str) -> float:
    common = sum((Counter(ocr) & Counter(truth)).values())
    if not common:
        return 0.0
    precision, recall = common / len(ocr), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def file_rows(data: Path) -> list[dict[str, Any]]:
    from server.knowledge_base.loaders import load_file, loader_name
    from server.knowledge_base.splitter import split_documents

    reference = words((data / FOLDERS[0] / PARITY_REFERENCE).read_text(encoding="utf-8"))
    rows = []
    for folder in FOLDERS:
        for path in sorted((data / folder).iterdir()):
            start = time.perf_counter()
            row: dict[str, Any] = {"file": f"{folder.split('/')[-1]}/{path.name}", "loader": loader_name(path.suffix)}
            try:
                docs = load_file(path)
                chunks = split_documents(docs, 500, 50)
            except Exception as exc:  # noqa: BLE001 - a failure is a result of the benchmark
                row.update(seconds=time.perf_counter() - start, chunks=0, error=str(exc))
                rows.append(row)
                continue
            row.update(seconds=time.perf_counter() - start, chunks=len(chunks), error="")
            row["ocr_pages"] = sum(1 for d in docs if d.metadata.get("ocr"))
            if folder == FOLDERS[0]:
                found = words("\n".join(d.text for d in docs))
                row["recall"] = len(found & reference) / len(reference)
                row["jaccard"] = len(found & reference) / len(found | reference)
            rows.append(row)
            logger.info("%s: %s, %.2f s, %d chunks", row["file"], row["loader"], row["seconds"], row["chunks"])
    return rows


def ocr_rows(data: Path, quick: bool) -> list[dict[str, Any]]:
    from pypdf import PdfReader

    from server.knowledge_base.loaders.ocr import ocr_image
    from server.knowledge_base.loaders.pdf import RENDER_PX

    rows = []
    with tempfile.TemporaryDirectory(prefix="kbchat-bench-ocr-") as tmp:
        for relative, language, pages in OCR_PDFS:
            path = data / relative
            reader = PdfReader(str(path))
            for number in range(1, (1 if quick else pages) + 1):
                truth = "".join((reader.pages[number - 1].extract_text() or "").split())
                start = time.perf_counter()
                subprocess.run(["pdftoppm", "-f", str(number), "-l", str(number), "-scale-to", str(RENDER_PX),
                                "-png", "-singlefile", str(path), f"{tmp}/page"], check=True)
                text = "".join(ocr_image(Path(f"{tmp}/page.png").read_bytes()).split())
                seconds = time.perf_counter() - start
                accuracy = 1 - edit_distance(text, truth) / max(len(truth), 1)
                rows.append({"file": path.name, "page": number, "language": language, "chars": len(truth),
                             "seconds": seconds, "char_accuracy": accuracy, "bag_f1": bag_f1(text, truth)})
                logger.info("OCR %s p.%d: %.2f s, accuracy %.3f", path.name, number, seconds, accuracy)
    return rows


def cpu_facts() -> dict[str, Any]:
    flags = ""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and not model:
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line.split(":", 1)[1]
    present = sorted({f for f in flags.split() if f == "avx2" or f.startswith("avx512")})
    return {"cpu_model": model, "simd_flags": present}


def main(argv: list[str] | None = None) -> int:
    args = base_parser(__doc__.splitlines()[0]).parse_args(argv)
    setup_logging(args.verbose)
    data = require_shared_data()
    from server.knowledge_base.loaders.ocr import ocr_image

    ocr_image(Path(data / "docs/zh/files/chatchat_ocr_test.jpg").read_bytes())  # load the models before timing
    files = file_rows(data)
    print_table("Formats: loader, seconds, chunks, parity word-set overlap with the .txt", [
        "file", "loader", "seconds", "chunks", "OCR'd docs", "recall", "jaccard", "error"],
        [[r["file"], r["loader"], r["seconds"], r["chunks"], r.get("ocr_pages"), r.get("recall"), r.get("jaccard"),
          r["error"][:60]] for r in files], digits=3)
    ocr = ocr_rows(data, args.quick)
    print_table("OCR of rendered text-layer pages", ["file", "page", "language", "chars", "seconds",
                                                     "char accuracy", "bag-of-chars F1"],
                [[r["file"], r["page"], r["language"], r["chars"], r["seconds"], r["char_accuracy"], r["bag_f1"]]
                 for r in ocr])
    summary = []
    for language in ("zh", "en", "mixed", "all"):
        chosen = [r for r in ocr if language in ("all", r["language"])]
        if chosen:
            seconds = sum(r["seconds"] for r in chosen)
            chars = sum(r["chars"] for r in chosen)
            weighted = sum(r["char_accuracy"] * r["chars"] for r in chosen) / chars
            summary.append({"language": language, "pages": len(chosen), "pages_per_s": len(chosen) / seconds,
                            "char_accuracy": weighted,
                            "bag_f1": sum(r["bag_f1"] * r["chars"] for r in chosen) / chars})
    cpu = cpu_facts()
    print_table(f"OCR speed and accuracy ({cpu['cpu_model']}; {', '.join(cpu['simd_flags']) or 'no AVX2'})",
                ["language", "pages", "pages/s", "char accuracy", "bag-of-chars F1"],
                [[s["language"], s["pages"], s["pages_per_s"], s["char_accuracy"], s["bag_f1"]] for s in summary])
    write_result("formats", {"quick": args.quick, "cpu": cpu, "files": files, "ocr_pages": ocr, "ocr": summary},
                 args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
