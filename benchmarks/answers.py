"""Answer quality of knowledge-base chat end to end with a built-in local model.

    python -m benchmarks.answers [--n 100] [--model qwen2.5-coder-1.5b] [--quick] [--tuning]
                                 [--prompt-template NAME] [--out PATH]
    python -m benchmarks.answers --everyday [--split heldout|tuning|all] [--configs before,default] [--n N]

--everyday asks the colloquial sets over real documents instead (benchmarks/everyday_answers.py), with
several chat configurations in one run, streaming, and reports time to sources and to first token.

Per language, a knowledge base holds the passages of a judging set (CMRC 2018 dev for Chinese,
SQuAD articles 24-47 for English; --quick: 150 passages of each), ingested through the real pipeline
with the default settings. `kbchat llm serve` serves the model and kbchat's API runs in a child
process; each question goes to `POST /chat/kb` (stream=false) with the default retrieval settings,
temperature 0 and no history. --tuning asks the tuning halves instead (CMRC 2018 trial, SQuAD
articles 0-23): prompts are tuned there, never on the judging questions. Per answer:

* contains answer: a gold answer string occurs in the answer (NFKC, case-folded, spaces removed);
* gold retrieved: a source handed to the model is a chunk of the question's gold passage;
* cites gold: the answer cites [n] for such a source;
* cites any: the answer carries at least one [n] citation.

This is slow on CPU (several seconds per question): --n sets questions per language (default 100,
--quick 20).
"""

from __future__ import annotations

import logging
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import datasets
from benchmarks.common import (
    base_parser,
    builtin_gguf,
    free_port,
    print_table,
    require_shared_data,
    scratch_dir,
    setup_logging,
    write_result,
)
from benchmarks.datasets import RetrievalSet
from benchmarks.kbtools import ingest_passages, open_manager, passage_file_name
from benchmarks.metrics import contains_answer
from benchmarks.procs import api_server, model_server

logger = logging.getLogger("benchmarks.answers")

SETS = {"zh": "cmrc-dev", "en": "squad-judge"}
TUNING_SETS = {"zh": "cmrc-trial", "en": "squad-tune"}
QUICK_PASSAGES = 150
_CITATION = re.compile(r"\[(\d{1,3})\]")


def prepare_sets(n: int, quick: bool, seed: int, tuning: bool = False) -> dict[str, RetrievalSet]:
    out = {}
    for lang, name in (TUNING_SETS if tuning else SETS).items():
        out[lang] = datasets.sample(datasets.load(name), n, seed, QUICK_PASSAGES if quick else None)
    return out


def score_answer(body: dict[str, Any], question: Any) -> dict[str, Any]:
    answer = body.get("answer") or ""
    gold_files = {passage_file_name(g) for g in question.gold}
    gold_indexes = {s.get("index") for s in body.get("sources", []) if s.get("file") in gold_files}
    cited = {int(m) for m in _CITATION.findall(answer)}
    return {
        "contains_answer": contains_answer([answer], question.answers),
        "gold_retrieved": bool(gold_indexes),
        "cites_gold": bool(cited & gold_indexes),
        "cites_any": bool(cited),
    }


def ask_all(api_url: str, kb: str, rset: RetrievalSet, model: str,
            prompt_template: str | None = None) -> list[dict[str, Any]]:
    rows = []
    with httpx.Client(base_url=api_url, timeout=900.0, trust_env=False) as client:
        for i, question in enumerate(rset.questions, 1):
            payload = {"query": question.text, "kb_name": kb, "model": model, "temperature": 0.0,
                       "history_turns": 0, "stream": False, "store": False, "prompt_template": prompt_template}
            start = time.perf_counter()
            response = client.post("/chat/kb", json=payload)
            seconds = time.perf_counter() - start
            if response.status_code != 200:
                rows.append({"qid": question.qid, "error": f"HTTP {response.status_code}: {response.text[:200]}",
                             "seconds": seconds})
                continue
            body = response.json()
            row = {"qid": question.qid, "seconds": round(seconds, 2), "error": body.get("error"),
                   "completion_tokens": (body.get("usage") or {}).get("completion_tokens"),
                   **score_answer(body, question)}
            rows.append(row)
            logger.info("%s %d/%d %.1fs contains=%s cites_gold=%s", rset.name, i, len(rset.questions), seconds,
                        row["contains_answer"], row["cites_gold"])
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if not r.get("error")]
    share = (lambda key: round(sum(bool(r.get(key)) for r in ok) / len(ok), 4) if ok else None)
    return {
        "questions": len(rows),
        "answered": len(ok),
        "errors": len(rows) - len(ok),
        "contains_answer": share("contains_answer"),
        "gold_retrieved": share("gold_retrieved"),
        "cites_gold": share("cites_gold"),
        "cites_any": share("cites_any"),
        "mean_seconds": round(statistics.fmean(r["seconds"] for r in rows), 2) if rows else None,
    }


def run(n: int, model: str, quick: bool, seed: int, work: Path, tuning: bool = False,
        prompt_template: str | None = None) -> dict[str, Any]:
    from configs import load_settings

    started = time.perf_counter()
    sets = prepare_sets(n, quick, seed, tuning)
    data_root = work / "data"
    ingest = {}
    with open_manager(data_root) as manager:
        defaults = manager.settings.kb
        for lang, rset in sets.items():
            report = ingest_passages(manager, f"answers-{lang}", rset.passages,
                                     embed_model=defaults.default_embed_model, chunk_size=defaults.chunk_size,
                                     chunk_overlap=defaults.chunk_overlap)
            ingest[lang] = report.as_dict()
    settings = load_settings()
    model_dir = settings.paths.model_dir
    builtin_gguf(model, settings)
    port = free_port()
    env = {"KBCHAT_PATHS__MODEL_DIR": str(model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port),
           "KBCHAT_LLM__DEFAULT_MODEL": model, "KBCHAT_PATHS__DATA_ROOT": str(data_root)}
    serve = model_server(model, port, work, env)
    results = {}
    with serve, api_server(data_root, work, env) as api:
        for lang, rset in sets.items():
            rows = ask_all(api.base_url, f"answers-{lang}", rset, model, prompt_template)
            results[lang] = {"set": rset.summary(), "summary": summarise(rows), "rows": rows}
    result = {"quick": quick, "tuning": tuning, "model": model, "n": n,
              "prompt_template": prompt_template or settings.chat.kb_prompt_template, "ingest": ingest, "results": results,
              "seconds": round(time.perf_counter() - started, 1)}
    result["tables"] = print_table(
        f"KB chat answer quality ({model}, default retrieval settings, temperature 0)",
        ["language", "set", "questions", "contains answer", "gold retrieved", "cites gold", "cites any",
         "errors", "s/answer"],
        [[lang, r["set"]["name"], r["summary"]["questions"], r["summary"]["contains_answer"],
          r["summary"]["gold_retrieved"], r["summary"]["cites_gold"], r["summary"]["cites_any"],
          r["summary"]["errors"], r["summary"]["mean_seconds"]] for lang, r in results.items()])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="questions per language (default 100, --quick 20)")
    parser.add_argument("--model", default=None, help="built-in model (default: the default chat model)")
    parser.add_argument("--tuning", action="store_true", help="ask the tuning halves instead of the judging ones")
    parser.add_argument("--prompt-template", default=None, help="KB prompt template name (default: the setting)")
    parser.add_argument("--everyday", action="store_true",
                        help="everyday questions over the laws and English files (benchmarks/everyday_answers.py)")
    parser.add_argument("--split", choices=("heldout", "tuning", "all"), default="tuning",
                        help="--everyday: which part of the question sets")
    parser.add_argument("--sets", default="laws_zh,files_en", help="--everyday: comma-separated sets")
    parser.add_argument("--configs", default="before,default", help="--everyday: comma-separated chat configurations")
    parser.add_argument("--skip", type=int, default=0,
                        help="--everyday: leave out the first this many questions of each set's part (then --n)")
    parser.add_argument("--only", default="",
                        help="--everyday: comma-separated question ids: ask only these (of the chosen part)")
    parser.add_argument("--unanswerable", action="store_true",
                        help="--everyday: ask the questions the documents do not answer (sets/*_unanswerable.jsonl)")
    parser.add_argument("--followups", action="store_true",
                        help="--everyday: ask the two-question conversations (sets/*_followups.jsonl), scoring the "
                        "follow-ups")
    parser.add_argument("--as-ui", type=float, default=None, metavar="SECONDS",
                        help="--everyday: each question starts a stored conversation, as in the web UI (so its title "
                        "is written), and the next one follows SECONDS after the answer")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="--everyday: keep the knowledge bases in this folder and reuse them in later runs "
                        "(delete it after changing how files are read or split)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    require_shared_data()
    from configs import load_settings

    model = args.model or load_settings().llm.default_model
    if args.everyday:
        return _everyday(args, model)
    n = args.n or (20 if args.quick else 100)
    with scratch_dir("answers", args.keep) as work:
        result = run(n, model, args.quick, args.seed, work, args.tuning, args.prompt_template)
    write_result("answers", result, args.out)
    return 0


def _everyday(args: Any, model: str) -> int:
    from benchmarks import everyday_answers
    from configs import load_settings

    settings = load_settings()
    for name in {model, *(everyday_answers.CONFIGS[c].get("LLM__DEFAULT_MODEL", model)
                          for c in args.configs.split(","))}:
        builtin_gguf(name, settings)
    n = args.n or (5 if args.quick else None)
    with scratch_dir("answers-everyday", args.keep) as work:
        result = everyday_answers.run(model, args.split, n, args.sets.split(","), args.configs.split(","), work,
                                      settings.paths.model_dir, args.unanswerable, args.skip, args.as_ui,
                                      args.followups, args.data_root, frozenset(filter(None, args.only.split(","))))
    write_result("answers_everyday", result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
