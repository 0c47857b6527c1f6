"""KB chat answers to everyday questions, streamed, under several chat configurations in one run.

Run through ``python -m benchmarks.answers --everyday`` (see that module). The laws and the English
files are indexed once with the default settings; the model server and kbchat's API then start once
per configuration (configurations differ in ``KBCHAT_*`` settings, the model included) and each question goes
to ``POST /chat/kb`` streaming, temperature 0, no history. Per answer it records:

* sources_s: seconds from sending to the ``sources`` event (the evidence on screen);
* ttft_s: seconds to the first answer text; total_s: to the end;
* prompt tokens as the API counts them, and prompt tokens/s = prompt tokens / ttft_s (upper bound of
  the time spent reading: it includes retrieval and queueing);
* contains answer: a short answer string occurs in the answer (normalised);
* cites gold: the answer cites [n] for a source that holds the gold evidence;
* right language: a Chinese question got an answer with CJK characters, an English one without;
* figures noted, names noted: the answer states a figure (or a capitalised name) that neither its sources nor
  the question hold, so KB chat notes it after the answer (``chat.check_figures``; reported apart for answers
  with and without the short answer).

With ``--as-ui SECONDS`` each question starts a stored conversation, as the web UI's questions do, so kbchat
has the model write the conversation's title after the answer; the next question follows SECONDS after the
answer ended, as a reader's would. Without it answers are not stored and no titles are written.

With ``--followups`` it asks each set's two-question conversations (``sets/<set>_followups.jsonl``, the first
``FOLLOWUPS_HELDOUT`` held out): a standalone question, then, ``--as-ui`` seconds (default 3) after its answer,
a follow-up that only makes sense after it ("那签一年的呢？"), stored as one conversation as the web UI stores
them. The follow-up is rewritten to stand alone before the search, and its row is scored: the gold must reach
its passages and its answer; ``standalone_question`` is what the search used.

With ``--unanswerable`` it asks each set's questions that its documents do not answer instead
(``sets/<set>_unanswerable.jsonl``) and reports how many KB chat declined before asking the model
(``chat.refuse_unsupported``) and, of those the model answered, how many answers carry a figure note.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import free_port, percentile, print_table
from benchmarks.everyday import (EMBEDDING_CACHE, SETS, SETS_DIR, EverydayQuestion, EverydaySet, build_kb,
                                 load_questions)
from benchmarks.kbtools import open_manager
from benchmarks.metrics import contains_answer
from benchmarks.procs import api_server, model_server
from benchmarks.unsupported import unanswerable
from server.chat.figures import unsupported_figures
from server.chat.names import unsupported_names

logger = logging.getLogger("benchmarks.everyday_answers")

_CITATION = re.compile(r"\[(\d{1,3})\]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# An answer that says the passages do not answer the question (the model's own words, not kbchat's decline).
_ADMITS = re.compile(r"does not say|do not say|does not (?:contain|provide|mention|specify)|"
                     r"(?:do|does) not (?:answer|include)|no information|not (?:mentioned|provided|specified)|"
                     r"没有找到|没有提到|未提及|没有相关|没有涉及|未涉及|没有规定|无法回答|没有说明|未说明")

# name -> settings as KBCHAT_* environment values (LLM__DEFAULT_MODEL picks the model). "before" is the
# layout before evidence selection: five whole passages in the system prompt, no weight repacking.
BEFORE = {"CHAT__KB_PASSAGES": "5", "CHAT__EVIDENCE_TOKENS": "0", "CHAT__KB_PROMPT_TEMPLATE": "kb_classic",
          "LLM__LOCAL__EXTRA_BUFFERS": "false"}
# The defaults before sentence vectors: chunk vectors and BM25 fused 2:1 at k=60, evidence by shared words.
BEFORE_SENTENCES = {"KB__HYBRID_SENTENCE_WEIGHT": "0", "KB__HYBRID_VECTOR_WEIGHT": "2", "KB__RRF_K": "60",
                    "CHAT__EVIDENCE_MEANING_WEIGHT": "0"}
CONFIGS: dict[str, dict[str, str]] = {
    "before": BEFORE,
    "before sentences": BEFORE_SENTENCES,
    "default": {},
    "no lead": {"CHAT__ANSWER_LEAD": "false"},
    "sentence ranking only": {"CHAT__EVIDENCE_MEANING_WEIGHT": "0"},
    "rewrite": {"CHAT__REWRITE_QUERY": "true"},
    "no rewrite": {"CHAT__REWRITE_QUERY": "false"},
    # The search's top 10 reordered by the chat model's query likelihood (kb.rerank.kind chat_model).
    "chat-model rerank": {"KB__RERANK__KIND": "chat_model"},
    # The evidence's best sentences ordered by the chat model's query likelihood (chat.evidence_scoring), at the
    # full evidence budget and at smaller ones; "no evidence scoring" is the default before it.
    "no evidence scoring": {"CHAT__EVIDENCE_SCORING": "false"},
    "scored evidence 320": {"CHAT__EVIDENCE_SCORING": "true", "CHAT__SCORED_EVIDENCE_TOKENS": "320"},
    "scored evidence 100": {"CHAT__EVIDENCE_SCORING": "true", "CHAT__SCORED_EVIDENCE_TOKENS": "100"},
    "scored evidence of 6": {"CHAT__EVIDENCE_SCORING": "true", "CHAT__SCORED_SENTENCES": "6"},
    "evidence 160": {"CHAT__EVIDENCE_SCORING": "false", "CHAT__EVIDENCE_TOKENS": "160"},
    "chat-model rerank and scored evidence": {"KB__RERANK__KIND": "chat_model", "CHAT__EVIDENCE_SCORING": "true"},
    # Answers begun with the kb_answer_lead template alone, before chat.quote_evidence quoted the best sentence;
    # and the path of a slow CPU (no evidence scoring), with and without the quote.
    "no quote": {"CHAT__QUOTE_EVIDENCE": "[]"},
    # The answer quoting one evidence sentence without the scoring, as before chat.quoted_sentences was 2.
    "one quote without evidence scoring": {"CHAT__QUOTED_SENTENCES": "1", "CHAT__EVIDENCE_SCORING": "false"},
    "evidence scoring": {"CHAT__EVIDENCE_SCORING": "true"},
    "no quote or evidence scoring": {"CHAT__QUOTE_EVIDENCE": "[]", "CHAT__EVIDENCE_SCORING": "false"},
    "quote en": {"CHAT__QUOTE_EVIDENCE": '["zh","en"]'},
    # Before chat.lead_once: the model may begin the lead again after its first sentence, citing another passage.
    "lead twice": {"CHAT__LEAD_ONCE": "false"},
    # Before chat.question_word_penalty: the question's own words keep their chances.
    "no question-word penalty": {"CHAT__QUESTION_WORD_PENALTY": "0"},
    "question-word penalty 6": {"CHAT__QUESTION_WORD_PENALTY": "6"},
    # The rewrite's own prompt displaces the answer's cached system prompt in llama.cpp's one KV slot; a RAM
    # prompt cache keeps both.
    "rewrite prompt cache": {"CHAT__REWRITE_QUERY": "true", "LLM__LOCAL__PROMPT_CACHE_MB": "1024"},
    "no-repack": {"LLM__LOCAL__EXTRA_BUFFERS": "false"},
    "5 passages": {"CHAT__KB_PASSAGES": "5"},
    "5 passages 6 scored": {"CHAT__KB_PASSAGES": "5", "CHAT__SCORED_SENTENCES": "6"},
    "5 passages without evidence scoring": {"CHAT__KB_PASSAGES": "5", "CHAT__EVIDENCE_SCORING": "false"},
    "4 passages without evidence scoring": {"CHAT__KB_PASSAGES": "4", "CHAT__EVIDENCE_SCORING": "false"},
    "2 passages": {"CHAT__KB_PASSAGES": "2"},
    "1 passage": {"CHAT__KB_PASSAGES": "1"},
    "5 passages evidence 400": {"CHAT__KB_PASSAGES": "5", "CHAT__EVIDENCE_TOKENS": "400"},
    "evidence 200": {"CHAT__EVIDENCE_TOKENS": "200"},
    "evidence 120": {"CHAT__EVIDENCE_TOKENS": "120"},
    # The evidence as it was before chat.first_token_seconds cut it to the model's measured prompt speed.
    "no first-token cut": {"CHAT__FIRST_TOKEN_SECONDS": "0"},
    "min evidence 160": {"CHAT__MIN_EVIDENCE_TOKENS": "160"},
    # English questions cut too, with the first-token time scaled so that a model server reading about 200 prompt
    # tokens/s gets the evidence one reading 33 tokens/s gets in 4.5 s.
    "English cut as at 33 tok/s": {"CHAT__FIRST_TOKEN_LANGUAGES": '["zh","en"]', "CHAT__FIRST_TOKEN_SECONDS": "0.75"},
    # The model server's threads as they were before adaptive threads with a brief spin became the default.
    "passive threads": {"LLM__LOCAL__OMP_WAIT_POLICY": "PASSIVE", "LLM__LOCAL__ADAPTIVE_THREADS": "false"},
    "evidence 480": {"CHAT__EVIDENCE_TOKENS": "480"},
    "prompt cache": {"LLM__LOCAL__PROMPT_CACHE_MB": "1024"},
    # llama_cpp.server's own default: the logits of every prompt token.
    "logits all": {"LLM__LOCAL__LOGITS_ALL": "true"},
    "no flash attention": {"LLM__LOCAL__FLASH_ATTN": "false"},
    "lookup decoding": {"LLM__LOCAL__DRAFT_LOOKUP_TOKENS": "8"},
    "0.5b": {"LLM__DEFAULT_MODEL": "qwen2.5-coder-0.5b"},
    "0.5b before": {**BEFORE, "LLM__DEFAULT_MODEL": "qwen2.5-coder-0.5b"},
    # Conversations keep the question as their title; the model writes none (with --as-ui).
    "no titles": {"CHAT__LLM_TITLES": "false"},
    # A follow-up rewritten to stand alone is answered with the history too, as before (with --followups).
    "answer history": {"CHAT__KB_ANSWER_HISTORY": "true"},
}


WARM_UP = EverydayQuestion("warm-up", "这个知识库里有哪些内容？", None, None)
# Held-out conversations at the start of each follow-up set.
FOLLOWUPS_HELDOUT = 8
FOLLOWUP_PAUSE = 3.0


@dataclass(frozen=True)
class FollowUp(EverydayQuestion):
    """A follow-up (``question``, with its gold) asked after ``first`` in one conversation."""

    first: str = ""


def load_followups(spec: EverydaySet, split: str) -> list[FollowUp]:
    rows = [json.loads(line) for line in (SETS_DIR / f"{spec.name}_followups.jsonl").read_text(encoding="utf-8")
            .splitlines() if line.strip()]
    rows = rows[:FOLLOWUPS_HELDOUT] if split == "heldout" else rows[FOLLOWUPS_HELDOUT:] if split == "tuning" else rows
    return [FollowUp(r["id"], r["question"], r["file"], r["evidence"], tuple(r["answers"]), spec.lang,
                     first=r["history"][0]) for r in rows]


def ask(client: httpx.Client, kb: str, question: EverydayQuestion, model: str, store: bool = False,
        conversation_id: str | None = None) -> dict[str, Any]:
    """One question streamed through ``POST /chat/kb``: a new conversation, or the next question of
    ``conversation_id`` (with its history, as the settings give it)."""
    payload: dict[str, Any] = {"query": question.question, "kb_name": kb, "model": model, "temperature": 0.0,
                               "stream": True, "store": store or conversation_id is not None}
    if conversation_id:
        payload["conversation_id"] = conversation_id
    else:
        payload["history_turns"] = 0
    started = time.perf_counter()
    row: dict[str, Any] = {"qid": question.qid, "sources_s": None, "ttft_s": None}
    parts: list[str] = []
    sources: list[dict[str, Any]] = []
    with client.stream("POST", "/chat/kb", json=payload) as response:
        if response.status_code != 200:
            return {**row, "error": f"HTTP {response.status_code}: {response.read()[:200]!r}"}
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            now = time.perf_counter() - started
            if event["type"] == "start":
                row["conversation_id"] = event["conversation_id"]
            elif event["type"] == "sources":
                row["sources_s"] = row["sources_s"] or round(now, 2)
                sources = event["sources"]
            elif event["type"] == "delta":
                row["ttft_s"] = row["ttft_s"] or round(now, 2)
                parts.append(event["text"])
            elif event["type"] == "done":
                row["prompt_tokens"] = event["usage"]["prompt_tokens"]
                row["completion_tokens"] = event["usage"]["completion_tokens"]
            elif event["type"] == "error":
                row["error"] = event["code"]
    row["total_s"] = round(time.perf_counter() - started, 2)
    answer = "".join(parts)
    gold = {s["index"] for s in sources if question.is_hit(s["file"], s["text"])}
    cited = {int(m) for m in _CITATION.findall(answer)}
    has_cjk = bool(_CJK.search(answer))
    row.update(answer=answer, contains_answer=contains_answer([answer], question.answers),
               admits=bool(row.get("completion_tokens")) and bool(_ADMITS.search(answer)),
               gold_retrieved=bool(gold), cites_gold=bool(cited & gold),
               right_language=has_cjk if question.lang == "zh" else not has_cjk,
               passages=[s["text"] for s in sources])
    # The answer as shown, kbchat's own note included: the note repeats what it names, so the counts are the same.
    grounds = [question.question, *row["passages"]]
    row.update(unsupported_figures=unsupported_figures(answer, grounds),
               unsupported_names=unsupported_names(answer, grounds))
    return row


def ask_followup(client: httpx.Client, kb: str, question: FollowUp, model: str, pause: float) -> dict[str, Any]:
    """``question.first`` in a new conversation, then, ``pause`` seconds after its answer, the follow-up; the row
    is the follow-up's, with the first answer's TTFT and the question the search used."""
    first = ask(client, kb, EverydayQuestion(f"{question.qid}-first", question.first, None, None, (), question.lang),
                model, store=True)
    if first.get("error") or not first.get("conversation_id"):
        return {"qid": question.qid, "error": f"first question: {first.get('error')}"}
    time.sleep(pause)
    row = ask(client, kb, question, model, conversation_id=first["conversation_id"])
    stored = client.get(f"/conversations/{first['conversation_id']}").json()["messages"][-1]
    row.update(first_ttft_s=first["ttft_s"], standalone_question=(stored.get("meta") or {}).get("standalone_question"))
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if not r.get("error")]

    def share(key: str) -> float | None:
        return round(sum(bool(r.get(key)) for r in ok) / len(ok), 3) if ok else None

    def p(key: str, q: float) -> float | None:
        values = [r[key] for r in ok if r.get(key) is not None]
        return round(percentile(values, q), 2) if values else None

    def noted(right: bool, key: str = "unsupported_figures") -> float | None:
        among = [r for r in ok if bool(r.get("contains_answer")) == right]
        return round(sum(bool(r.get(key)) for r in among) / len(among), 3) if among else None

    prompt = [r["prompt_tokens"] for r in ok if r.get("prompt_tokens")]
    speed = [r["prompt_tokens"] / r["ttft_s"] for r in ok if r.get("prompt_tokens") and r.get("ttft_s")]
    return {
        "questions": len(rows), "errors": len(rows) - len(ok),
        "contains_answer": share("contains_answer"), "gold_retrieved": share("gold_retrieved"),
        "cites_gold": share("cites_gold"), "right_language": share("right_language"), "admits": share("admits"),
        "prompt_tokens_p50": round(statistics.median(prompt)) if prompt else None,
        "sources_s_p50": p("sources_s", 50), "ttft_s_p50": p("ttft_s", 50), "ttft_s_p90": p("ttft_s", 90),
        "total_s_p50": p("total_s", 50), "total_s_p90": p("total_s", 90),
        "prompt_tok_per_s_p50": round(statistics.median(speed), 1) if speed else None,
        "figures_noted_wrong": noted(False), "figures_noted_right": noted(True),
        "names_noted_wrong": noted(False, "unsupported_names"), "names_noted_right": noted(True, "unsupported_names"),
    }


def summarise_unanswerable(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Declined without the model (no completion tokens), and figure notes among the answers the model wrote."""
    ok = [r for r in rows if not r.get("error")]
    answered = [r for r in ok if r.get("completion_tokens")]
    declined = len(ok) - len(answered)
    admitted = sum(bool(r.get("admits")) for r in answered)
    return {"questions": len(rows), "errors": len(rows) - len(ok),
            "declined": round(declined / len(ok), 3) if ok else None,
            "answered": len(answered),
            "says_so": round((declined + admitted) / len(ok), 3) if ok else None,
            "figures_noted": round(sum(bool(r.get("unsupported_figures")) for r in answered) / len(answered), 3)
            if answered else None,
            "names_noted": round(sum(bool(r.get("unsupported_names")) for r in answered) / len(answered), 3)
            if answered else None}


def run(model: str, split: str, n: int | None, set_names: list[str], configs: list[str], work: Path,
        model_dir: Path, unanswerable_only: bool = False, skip: int = 0, ui_pause: float | None = None,
        followups: bool = False, data_root: Path | None = None, only: frozenset[str] = frozenset()
        ) -> dict[str, Any]:
    data_root = data_root or work / "data"
    builds = {}
    questions: dict[str, list[EverydayQuestion]] = {}
    with open_manager(data_root, cache_dir=EMBEDDING_CACHE) as manager:
        for name in set_names:
            spec = SETS[name]
            builds[name] = build_kb(manager, spec)
            if unanswerable_only:
                questions[name] = [EverydayQuestion(qid, text, None, None, (), spec.lang)
                                   for qid, text in unanswerable(spec, split)][skip:][:n]
            elif followups:
                questions[name] = list(load_followups(spec, split)[skip:][:n])
            else:
                questions[name] = load_questions(spec, split)[skip:][:n]
            if only:
                questions[name] = [q for q in questions[name] if q.qid in only]
    results: dict[str, Any] = {}
    table = []
    for config in configs:
        port = free_port()
        env = {"KBCHAT_PATHS__MODEL_DIR": str(model_dir), "KBCHAT_LLM__LOCAL__PORT": str(port),
               "KBCHAT_LLM__DEFAULT_MODEL": model, "KBCHAT_PATHS__DATA_ROOT": str(data_root),
               **{f"KBCHAT_{k}": v for k, v in CONFIGS[config].items()}}
        served = env["KBCHAT_LLM__DEFAULT_MODEL"]
        serve = model_server(served, port, work, env, name=f"model-server-{config}")
        with serve, api_server(data_root, work, env) as api, \
                httpx.Client(base_url=api.base_url, timeout=900.0, trust_env=False) as client:
            # One unmeasured question, asked by no set, loads the encoder and the model's system prompt as a
            # user's first question would.
            ask(client, set_names[0], WARM_UP, served)
            for name in set_names:
                rows = []
                for i, question in enumerate(questions[name], 1):
                    if isinstance(question, FollowUp):
                        row = ask_followup(client, name, question, served,
                                           FOLLOWUP_PAUSE if ui_pause is None else ui_pause)
                    else:
                        row = ask(client, name, question, served, store=ui_pause is not None)
                    rows.append(row)
                    if ui_pause is not None:
                        time.sleep(ui_pause)
                    logger.info("%s %s %d/%d ttft %.1fs total %.1fs contains=%s lang=%s", config, name, i,
                                len(questions[name]), row.get("ttft_s") or -1, row.get("total_s") or -1,
                                row.get("contains_answer"), row.get("right_language"))
                if unanswerable_only:
                    summary = summarise_unanswerable(rows)
                    results[f"{config}/{name}"] = {"config": config, "set": name, "model": served,
                                                   "settings": CONFIGS[config], "summary": summary, "rows": rows}
                    table.append([config, name, summary["questions"], summary["declined"], summary["answered"],
                                  summary["says_so"], summary["figures_noted"], summary["names_noted"]])
                    continue
                summary = summarise(rows)
                results[f"{config}/{name}"] = {"config": config, "set": name, "model": served,
                                               "settings": CONFIGS[config],
                                               "summary": summary, "rows": rows}
                table.append([config, name, summary["questions"], summary["contains_answer"],
                              summary["cites_gold"], summary["right_language"], summary["admits"],
                              summary["gold_retrieved"],
                              summary["prompt_tokens_p50"], summary["sources_s_p50"], summary["ttft_s_p50"],
                              summary["total_s_p50"], summary["total_s_p90"], summary["prompt_tok_per_s_p50"],
                              summary["figures_noted_wrong"], summary["figures_noted_right"],
                              summary["names_noted_wrong"], summary["names_noted_right"]])
    if unanswerable_only:
        tables = print_table(
            f"KB chat on questions the documents do not answer ({model}, {split}, temperature 0)",
            ["config", "set", "questions", "declined before the model", "answered by the model",
             "says the KB does not say (declined or in the answer)", "figures noted in those answers",
             "names noted in those answers"], table)
        return {"model": model, "split": split, "as_ui": ui_pause, "builds": builds, "configs": {c: CONFIGS[c] for c in configs},
                "results": results, "tables": tables}
    tables = print_table(
        f"KB chat on everyday questions ({model}, {split}, temperature 0)",
        ["config", "set", "questions", "contains answer", "cites gold", "right language",
         "says the passages do not answer", "gold retrieved",
         "prompt tokens p50", "sources s p50", "TTFT s p50", "total s p50", "total s p90", "prompt tok/s p50",
         "figures noted, wrong answers", "figures noted, right answers", "names noted, wrong answers",
         "names noted, right answers"],
        table)
    return {"model": model, "split": split, "as_ui": ui_pause, "builds": builds, "configs": {c: CONFIGS[c] for c in configs},
            "results": results, "tables": tables}
