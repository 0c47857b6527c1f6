"""Readers for the public QA sets in ../shared/data, turned into retrieval sets.

A retrieval set is a corpus of unique passages plus questions, each with the indexes of its gold
passages and its answer strings. Tuning and judging halves are fixed here so that nothing tuned
ever sees a judging question:

| set | file | half |
| --- | --- | --- |
| cmrc-trial | qa/zh/cmrc2018/cmrc2018_trial.json | tuning |
| cmrc-dev | qa/zh/cmrc2018/cmrc2018_dev.json | judging |
| squad-tune | qa/en/squad_v1.1/dev-v1.1.json.zip, articles 0-23 | tuning |
| squad-judge | same file, articles 24-47 | judging |
| drcd-dev | qa/zh/drcd/DRCD_dev.json (zh-Hant) | judging |
| rgb-zh | qa/rag_nc/rgb/zh_refine.json (JSONL, CC BY-NC-SA: measurement only) | judging |
| rgb-en | qa/rag_nc/rgb/en_fact.json (JSONL, CC BY-NC-SA: measurement only) | judging |
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.common import SHARED_DATA


@dataclass
class Question:
    """One question with the indexes of its gold passages in the set's corpus."""

    qid: str
    text: str
    answers: list[str]
    gold: list[int]
    # Hard distractors written for this question (RGB); kept together with it when sampling.
    negatives: list[int] = field(default_factory=list)


@dataclass
class RetrievalSet:
    """Unique passages plus questions over them."""

    name: str
    lang: str  # "zh" or "en"
    half: str  # "tuning" or "judging"
    passages: list[str]
    questions: list[Question]
    source: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lang": self.lang,
            "half": self.half,
            "passages": len(self.passages),
            "questions": len(self.questions),
            "source": self.source,
            **self.notes,
        }


def _read_squad_json(path: Path) -> dict[str, Any]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.endswith(".json"))
            return json.loads(archive.read(member).decode("utf-8"))
    return json.loads(path.read_text(encoding="utf-8"))


def squad_format(
    name: str, path: Path, lang: str, half: str, articles: slice | None = None
) -> RetrievalSet:
    """A SQuAD-format file (SQuAD, CMRC 2018, DRCD): corpus = unique contexts, gold = own context."""
    data = _read_squad_json(path)["data"]
    if articles is not None:
        data = data[articles]
    passages: list[str] = []
    index: dict[str, int] = {}
    questions: list[Question] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            if context not in index:
                index[context] = len(passages)
                passages.append(context)
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text")))
                if not qa["question"].strip():
                    continue  # CMRC 2018 has a few blank questions; nothing can be asked with them
                questions.append(Question(str(qa["id"]), qa["question"], answers, [index[context]]))
    return RetrievalSet(name, lang, half, passages, questions, source=str(path.relative_to(path.parents[3])))


def _flatten_answers(answer: Any) -> list[str]:
    # RGB answers are a string, a list of alternatives, or a list of lists (one list per required item).
    if isinstance(answer, str):
        return [answer]
    out: list[str] = []
    for item in answer or []:
        out.extend(_flatten_answers(item))
    return out


def rgb(name: str, path: Path, lang: str) -> RetrievalSet:
    """An RGB JSONL file: corpus = every positive and negative passage of every query, deduplicated."""
    passages: list[str] = []
    index: dict[str, int] = {}
    questions: list[Question] = []

    def add(text: str) -> int:
        if text not in index:
            index[text] = len(passages)
            passages.append(text)
        return index[text]

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        gold = [add(p) for p in row.get("positive", []) if p.strip()]
        negatives = [add(p) for p in row.get("negative", []) if p.strip()]
        if gold:
            answers = _flatten_answers(row.get("answer"))
            questions.append(Question(str(row["id"]), row["query"], answers, gold, negatives))
    return RetrievalSet(
        name, lang, "judging", passages, questions, source=str(path.relative_to(path.parents[3])),
        notes={"licence": "CC BY-NC-SA 4.0, measurement only"},
    )


def _data(root: Path | None) -> Path:
    return root or SHARED_DATA


LOADERS: dict[str, Callable[[Path | None], RetrievalSet]] = {
    "cmrc-trial": lambda root: squad_format(
        "cmrc-trial", _data(root) / "qa/zh/cmrc2018/cmrc2018_trial.json", "zh", "tuning"
    ),
    "cmrc-dev": lambda root: squad_format(
        "cmrc-dev", _data(root) / "qa/zh/cmrc2018/cmrc2018_dev.json", "zh", "judging"
    ),
    "squad-tune": lambda root: squad_format(
        "squad-tune", _data(root) / "qa/en/squad_v1.1/dev-v1.1.json.zip", "en", "tuning", slice(0, 24)
    ),
    "squad-judge": lambda root: squad_format(
        "squad-judge", _data(root) / "qa/en/squad_v1.1/dev-v1.1.json.zip", "en", "judging", slice(24, 48)
    ),
    "drcd-dev": lambda root: squad_format("drcd-dev", _data(root) / "qa/zh/drcd/DRCD_dev.json", "zh", "judging"),
    "rgb-zh": lambda root: rgb("rgb-zh", _data(root) / "qa/rag_nc/rgb/zh_refine.json", "zh"),
    "rgb-en": lambda root: rgb("rgb-en", _data(root) / "qa/rag_nc/rgb/en_fact.json", "en"),
}
TUNING_SETS = ("cmrc-trial", "squad-tune")
JUDGING_SETS = ("cmrc-dev", "squad-judge", "drcd-dev", "rgb-zh", "rgb-en")


def load(name: str, root: Path | None = None) -> RetrievalSet:
    """Load one named set (see LOADERS)."""
    if name not in LOADERS:
        raise KeyError(f"unknown set {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name](root)


def sample(rset: RetrievalSet, n_questions: int | None, seed: int, max_passages: int | None = None) -> RetrievalSet:
    """A seeded, smaller version of a set: at most max_passages passages and n_questions questions.

    Sets with per-question distractors (RGB) take whole questions in seeded order, each with its
    positive and negative passages, while they fit in max_passages. The other sets draw
    max_passages passages and keep only questions whose gold passages were all drawn, so the
    smaller corpus is built like the full one (every passage is some question's gold).
    """
    rng = random.Random(seed)
    questions = list(rset.questions)
    keep: list[int] = list(range(len(rset.passages)))
    if max_passages is not None and max_passages < len(rset.passages):
        if any(q.negatives for q in questions):
            rng.shuffle(questions)
            chosen: list[Question] = []
            own: set[int] = set()
            for q in questions:
                needed = own | set(q.gold) | set(q.negatives)
                if len(needed) <= max_passages:
                    chosen.append(q)
                    own = needed
            questions, keep = chosen, sorted(own)
        else:
            keep = sorted(rng.sample(range(len(rset.passages)), max_passages))
            kept = set(keep)
            questions = [q for q in questions if set(q.gold) <= kept]
    if n_questions is not None and n_questions < len(questions):
        questions = rng.sample(questions, n_questions)
    remap = {old: new for new, old in enumerate(keep)}
    return replace(
        rset,
        passages=[rset.passages[i] for i in keep],
        questions=[
            replace(q, gold=[remap[g] for g in q.gold], negatives=[remap[g] for g in q.negatives if g in remap])
            for q in questions
        ],
        notes={
            **rset.notes,
            "sampled_from": {"passages": len(rset.passages), "questions": len(rset.questions)},
            "seed": seed,
        },
    )
