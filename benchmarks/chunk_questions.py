"""Questions each chunk answers, written by the chat model at index time ("doc2query"), as a search lead.

    python -m benchmarks.chunk_questions [--sets laws_zh] [--split tuning,heldout] [--model qwen2.5-coder-1.5b]
        [--only 劳动法,劳动合同法]

For every chunk of the set's knowledge base the built-in chat model writes a few questions a person
might ask that the chunk answers (kept in ``benchmarks/results/chunk-questions/``, so a second run only
searches). The questions are embedded as queries; a chunk's score is its best question's cosine with the
user's question. That ranking is fused by reciprocal rank with the default hybrid search, at several
weights, and scored as ``benchmarks.everyday`` scores (hit@1/3/5, MRR@10). The generation time per chunk
is reported too: it is what adding files would cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, base_parser, print_table, require_shared_data, scratch_dir, setup_logging, write_result
from benchmarks.everyday import EMBEDDING_CACHE, SETS, EverydaySet, build_kb, evaluate, load_questions
from benchmarks.kbtools import open_manager

logger = logging.getLogger("benchmarks.chunk_questions")

CACHE_DIR = RESULTS_DIR / "chunk-questions"
PROMPTS = {
    "zh": ("下面是一段资料。写出四个普通人遇到这类事时会问、而这段资料能回答的问题：用日常口语，"
           "不照抄条文用语，尽量各问资料里不同的规定。每行一个问题，不要编号，不要回答。"),
    "en": ("Below is a passage. Write four questions an ordinary person might ask that this passage answers: "
           "in everyday words, not copying the passage's phrasing, each about a different point of it. One "
           "question per line, no numbering, no answers."),
}
FUSION_K = 10
WEIGHTS = (0.5, 1.0, 2.0, 4.0)
_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.、)）]|[（(]\d+[)）])\s*")


def parse_questions(text: str) -> list[str]:
    lines = [_NUMBERING.sub("", line).strip(" *") for line in text.splitlines()]
    return [line for line in lines if len(line) >= 4 and not line.endswith(("：", ":"))][:6]


class Writer:
    """The built-in chat model in process, writing questions for chunk texts; cached per text."""

    def __init__(self, model: str, lang: str) -> None:
        import llama_cpp

        from benchmarks.common import builtin_gguf
        from server.llm.local.llama_server import choose_extra_buffers

        choose_extra_buffers()
        self.llm = llama_cpp.Llama(model_path=str(builtin_gguf(model)), n_ctx=2048, n_threads=2, verbose=False)
        self.prompt = PROMPTS[lang]
        self.cache_path = CACHE_DIR / f"{model}-{lang}.json"
        self.cache: dict[str, list[str]] = (json.loads(self.cache_path.read_text(encoding="utf-8"))
                                            if self.cache_path.exists() else {})
        self.seconds: list[float] = []
        self.completion_tokens: list[int] = []

    def questions(self, text: str) -> list[str]:
        key = hashlib.sha1(text.encode("utf-8")).hexdigest()
        if key not in self.cache:
            started = time.perf_counter()
            out: Any = self.llm.create_chat_completion(
                messages=[{"role": "system", "content": self.prompt}, {"role": "user", "content": text}],
                temperature=0.0, max_tokens=160, stream=False)
            self.seconds.append(time.perf_counter() - started)
            self.completion_tokens.append(int(out["usage"]["completion_tokens"]))
            self.cache[key] = parse_questions(str(out["choices"][0]["message"]["content"] or ""))
            if len(self.seconds) % 20 == 0:
                self.save()
                logger.info("%d chunks written, %.1f s p50 each", len(self.seconds), statistics.median(self.seconds))
        return self.cache[key]

    def save(self) -> None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        self.cache_path.write_text(json.dumps(self.cache, ensure_ascii=False), encoding="utf-8")


def chunk_texts(manager: Any, kb: str) -> list[Any]:
    return [c for f in manager.list_files(kb) for c in manager.list_chunks(kb, f.file_name)]


def rrf(rankings: list[tuple[float, list[str]]], k: int = FUSION_K) -> list[str]:
    scores: dict[str, float] = {}
    for weight, ids in rankings:
        for rank, doc_id in enumerate(ids, 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda d: -scores[d])


def subset(spec: EverydaySet, only: list[str], work: Path) -> EverydaySet:
    """The set over only the documents whose names contain one of ``only`` (linked into ``work``)."""
    folder = work / f"{spec.name}-docs"
    folder.mkdir(parents=True, exist_ok=True)
    for path in spec.docs.iterdir():
        if any(part in path.name for part in only):
            (folder / path.name).symlink_to(path)
    return dataclasses.replace(spec, docs=folder)


def run(set_names: list[str], splits: list[str], model: str, work: Path, limit: int | None,
        only: list[str]) -> dict[str, Any]:
    from server.knowledge_base.schemas import SearchHit

    out: dict[str, Any] = {"model": model, "only": only, "runs": []}
    rows = []
    with open_manager(work, cache_dir=EMBEDDING_CACHE) as manager:
        for name in set_names:
            spec = subset(SETS[name], only, work) if only else SETS[name]
            build_kb(manager, spec)
            files = {p.name for p in spec.docs.iterdir()}
            chunks = chunk_texts(manager, name)
            writer = Writer(model, spec.lang)
            title = {c.doc_id: str(c.metadata.get("title") or c.metadata.get("source") or "") for c in chunks}
            owners: list[str] = []
            texts: list[str] = []
            for chunk in chunks:
                for question in writer.questions(chunk.text):
                    owners.append(chunk.doc_id)
                    texts.append(question)
            writer.save()
            logger.info("%s: %d chunks, %d questions; %d written this run", name, len(chunks), len(texts),
                        len(writer.seconds))
            vectors = np.asarray(manager.embed(texts, is_query=True), dtype=np.float32)
            by_id = {c.doc_id: c for c in chunks}

            def hit(doc_id: str, rank: int) -> SearchHit:
                chunk = by_id[doc_id]
                return SearchHit(doc_id=doc_id, text=chunk.text, score=0.0, metadata=chunk.metadata, rank=rank)

            def question_ranking(query: str) -> list[str]:
                q = np.asarray(manager.embed([query], is_query=True)[0], dtype=np.float32)
                best: dict[str, float] = {}
                for owner, score in zip(owners, vectors @ q):
                    best[owner] = max(best.get(owner, -1.0), float(score))
                return sorted(best, key=lambda d: -best[d])[:30]

            configs: list[tuple[str, float | None]] = [("hybrid (default)", 0.0), ("chunk questions alone", None)]
            configs += [(f"hybrid + chunk questions x{w}", w) for w in WEIGHTS]
            for split in splits:
                questions = [q for q in load_questions(spec, split) if q.file in files][:limit]
                for label, weight in configs:
                    def search(text: str, weight: float | None = weight) -> list[SearchHit]:
                        ids = question_ranking(text) if weight != 0.0 else []
                        if weight is None:
                            fused = ids
                        else:
                            base = [h.doc_id for h in manager.search(name, text, top_k=30, score_threshold=0.0)]
                            fused = rrf([(1.0, base), (weight, ids)]) if weight else base
                        return [hit(d, i) for i, d in enumerate(fused[:10], 1)]

                    metrics = evaluate(search, questions)
                    out["runs"].append({"set": name, "split": split, "config": label, **metrics})
                    rows.append([name, split, label, metrics["questions"], metrics["hit@1"], metrics["hit@3"],
                                 metrics["hit@5"], metrics["MRR@10"], metrics["p50_ms"]])
                    logger.info("%s %s %s: hit@1 %.3f hit@5 %.3f", name, split, label, metrics["hit@1"],
                                metrics["hit@5"])
            out.setdefault("writing", {})[name] = {
                "chunks": len(chunks), "questions": len(texts), "written": len(writer.seconds),
                "p50_s": round(statistics.median(writer.seconds), 2) if writer.seconds else None,
                "completion_tokens_p50": statistics.median(writer.completion_tokens) if writer.completion_tokens else None,
                "samples": {title[c.doc_id]: writer.questions(c.text) for c in chunks[:5]}}
    out["tables"] = print_table("Chunk questions fused with hybrid search",
                                ["set", "split", "search", "questions", "hit@1", "hit@3", "hit@5", "MRR@10", "p50 ms"],
                                rows)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--split", default="tuning", help="comma-separated parts: heldout, tuning, all")
    parser.add_argument("--sets", default="laws_zh", help="comma-separated set names")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="built-in chat model that writes the questions")
    parser.add_argument("--n", type=int, default=None, help="at most this many questions per set and part")
    parser.add_argument("--only", default="", help="comma-separated parts of document names: a smaller KB of "
                        "those documents, asked only the questions whose gold is among them")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    with scratch_dir("chunk_questions", args.keep) as work:
        result = run(args.sets.split(","), args.split.split(","), args.model, work, args.n,
                     [part for part in args.only.split(",") if part])
    write_result("chunk_questions", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
