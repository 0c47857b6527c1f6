"""Choosing the sentences of retrieved passages that bear on a question.

A small model answers best, and a CPU answers fastest, from a short prompt holding only what
matters. Each passage is cut into sentences; a sentence scores by the question's terms it holds
(BM25 tokens, so Chinese bigrams and English stems alike), each term weighted by how rare it is
among the passages' sentences, and, where the store holds sentence vectors, by its cosine with the
question as well: an everyday question often shares no word with the sentence that answers it.
Both parts are scaled to [0, 1] over the passages' sentences, and the cosine is weighted by the
``chat.evidence_meaning_weight`` setting (at 2, the chosen sentences held the gold evidence for 90% of
the tuning questions over the laws whose passage was retrieved, against 74% by terms alone; see
``benchmarks/everyday_evidence.py``).
Sentences are then taken, best first, within a token budget; a
passage's first sentence gets a small bonus because it names what the passage is about (a law
article's number, a section's opening). A chosen list item ("（五）在本单位连续工作满十五年……") is then
joined by the sentence that introduces its list ("……用人单位不得解除劳动合同:"), without which the item says
nothing, where room remains. Room left then goes to the sentence after each chosen one, where the answer
to a matching sentence often stands. The chosen sentences are what the model reads and what the user
sees highlighted in the sources.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from server.chat.superlatives import rows_asked_for
from server.knowledge_base.bm25 import query_tokens, tokenize
from server.knowledge_base.loaders.tables import ROW_SEPARATOR
from server.knowledge_base.sentences import NUMBERED_MARKER, sentence_spans

FIRST_SENTENCE_BONUS = 0.15
GAP = " … "
# A list item's marker: （五） (5) 5. 5、 (e) e) or a bullet (not a rule of dashes). A list's lead-in ends with a colon.
_LIST_ITEM = re.compile(rf"\s*(?:{NUMBERED_MARKER}|[（(](?:[一二三四五六七八九十]{{1,3}}|[a-zA-Z])[)）]|[a-z]\)"
                        r"|[-*•·]\s+(?![-*•·]))")
_LEAD_IN_END = ("：", ":")


@dataclass
class Passage:
    """One retrieved passage and the sentences chosen from it, as (start, end) offsets into ``text``."""

    text: str
    rank: int
    spans: list[tuple[int, int]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)  # indexes into spans, in text order
    # Whether the sentences are a table's rows, each standing alone under its headers: its first row names no
    # subject, the row after a matching one holds no more of its answer, and the model reads the best rows first.
    table: bool = False
    picked: list[int] = field(default_factory=list)  # the chosen, in the order they were chosen

    @property
    def highlights(self) -> list[tuple[int, int]]:
        return [self.spans[i] for i in self.chosen]

    def sentence(self, i: int) -> str:
        start, end = self.spans[i]
        return self.text[start:end].strip()

    def lead_in(self, i: int) -> int | None:
        """The sentence introducing the list that sentence ``i`` is an item of ("有下列情形之一的，……:"), or None
        when ``i`` is no list item or its list has no lead-in ending in a colon."""
        if self.table or not is_list_item(self.sentence(i)):
            return None
        for j in range(i - 1, -1, -1):
            sentence = self.sentence(j)
            if not is_list_item(sentence):
                return j if sentence.endswith(_LEAD_IN_END) else None
        return None

    def excerpt(self) -> str:
        """The chosen sentences in text order; runs of neighbours keep their text, gaps get a mark. A table's
        chosen rows, best first, one per paragraph."""
        if not self.table:
            return self._joined(self.chosen)
        rows: dict[int, list[int]] = {}  # a row's start: its chosen sentences (a long row is cut in several)
        for i in [*self.picked, *self.chosen]:
            row = rows.setdefault(self.text.rfind(ROW_SEPARATOR, 0, self.spans[i][0]), [])
            if i not in row:
                row.append(i)
        return ROW_SEPARATOR.join(self._joined(sorted(chosen)) for chosen in rows.values())

    def _joined(self, chosen: list[int]) -> str:
        runs: list[tuple[int, int]] = []
        for i in chosen:
            start, end = self.spans[i]
            if runs and i - 1 in chosen:
                runs[-1] = (runs[-1][0], end)
            else:
                runs.append((start, end))
        return GAP.join(self.text[s:e].strip() for s, e in runs)


def is_list_item(text: str) -> bool:
    """Whether ``text`` opens with a list item's marker."""
    return _LIST_ITEM.match(text) is not None


@dataclass(frozen=True)
class Candidate:
    """One sentence that bears on the question: its score, its passage's rank and its index in that passage."""

    score: float
    rank: int
    index: int


def split_passages(texts: Sequence[str], tables: Sequence[bool] = ()) -> list[Passage]:
    """The passages (best first), each cut into sentences, none chosen yet; ``tables`` says which are table rows."""
    flags = [*tables, *[False] * (len(texts) - len(tables))]
    return [Passage(text=t, rank=r, spans=sentence_spans(t), table=f) for r, (t, f) in enumerate(zip(texts, flags))]


def rank_sentences(question: str, passages: list[Passage],
                   similarities: Sequence[Sequence[float] | None] | None = None,
                   meaning_weight: float = 2.0) -> list[Candidate]:
    """The passages' sentences that bear on ``question``, best first (sentences scoring zero are left out).

    ``similarities`` holds, per passage, the cosine of each of its sentences with the question (None where the
    passage has no sentence vectors); ``meaning_weight`` weighs it against shared terms.
    """
    query = set(query_tokens(question))
    sentence_tokens = [[set(tokenize(p.text[s:e])) for s, e in p.spans] for p in passages]
    df: Counter[str] = Counter()
    for per_passage in sentence_tokens:
        for tokens in per_passage:
            df.update(tokens & query)
    n = sum(len(x) for x in sentence_tokens) or 1
    idf = {t: math.log(1 + n / df[t]) for t in df}
    terms = [[sum(idf.get(t, 0.0) for t in tokens & query) for tokens in per_passage]
             for per_passage in sentence_tokens]
    top_terms = max((x for per_passage in terms for x in per_passage), default=0.0) or 1.0
    semantic = _scaled(similarities, passages)
    candidates: list[Candidate] = []
    for p, passage_terms in zip(passages, terms):
        for i, term in enumerate(passage_terms):
            score = term / top_terms + meaning_weight * semantic[p.rank][i]
            if score <= 0:
                continue
            # Better-ranked passages win ties; a passage's opening sentence names its subject.
            score *= 1.0 - 0.1 * p.rank
            if i == 0 and not p.table:
                score += FIRST_SENTENCE_BONUS * score
            candidates.append(Candidate(score, p.rank, i))
    candidates.sort(key=lambda c: (-c.score, c.rank, c.index))
    for p in passages:
        if p.table:
            _only_row_asked_for(question, p, candidates)
    return candidates


def _only_row_asked_for(question: str, table: Passage, candidates: list[Candidate]) -> None:
    """Keep of ``table``'s sentences among ``candidates`` only the row a superlative question asks for
    (superlatives.py), all its sentences in the place of the table's best: a small model shown several rows
    answers from any of them. Unchanged for other questions."""
    order = rows_asked_for(question, [table.sentence(i) for i in range(len(table.spans))])
    places = [k for k, c in enumerate(candidates) if c.rank == table.rank]
    if not order or not places:
        return
    row_of = [table.text.rfind(ROW_SEPARATOR, 0, start) for start, _ in table.spans]
    score = candidates[places[0]].score
    row = [Candidate(score, table.rank, i) for i in range(len(table.spans)) if row_of[i] == row_of[order[0]]]
    for k in reversed(places):
        del candidates[k]
    candidates[places[0]:places[0]] = row


def fill(passages: list[Passage], candidates: Sequence[Candidate], budget: int,
         count: Callable[[str], int]) -> list[Passage]:
    """Choose sentences in ``candidates``' order within ``budget`` tokens, then the lead-in of each chosen list
    item, then the sentence after each chosen one where room remains, then the first sentence of a passage with
    none chosen. A budget of 0 or less chooses every sentence (whole passages)."""
    if budget <= 0:
        for p in passages:
            p.chosen = list(range(len(p.spans)))
        return passages
    used = 0

    def cost_of(p: Passage, i: int) -> int:
        start, end = p.spans[i]
        return count(p.text[start:end])

    def add_if_room(p: Passage, i: int | None) -> None:
        nonlocal used
        if i is None or i in p.chosen:
            return
        cost = cost_of(p, i)
        if used + cost <= budget:
            used += cost
            p.chosen.append(i)

    for c in candidates:
        p = passages[c.rank]
        cost = cost_of(p, c.index)
        if used + cost > budget and (used or cost > budget * 2):
            continue
        p.chosen.append(c.index)
        p.picked.append(c.index)
        used += cost
    # A list item means little without the sentence that opens its list ("……不得解除劳动合同:").
    for c in candidates:
        p = passages[c.rank]
        if c.index in p.chosen:
            add_if_room(p, p.lead_in(c.index))
    # The sentence after a matching one often holds the answer ("... is represented by:" then the name).
    for c in candidates:
        p, i = passages[c.rank], c.index
        if not p.table and i in p.chosen and i + 1 < len(p.spans):
            add_if_room(p, i + 1)
    for p in passages:
        if not p.chosen and p.spans:
            add_if_room(p, 0)
        p.chosen.sort()
    return passages


def choose(
    question: str,
    texts: Sequence[str],
    budget: int,
    count: Callable[[str], int],
    similarities: Sequence[Sequence[float] | None] | None = None,
    meaning_weight: float = 2.0,
    preferred: Sequence[tuple[int, int]] = (),
    tables: Sequence[bool] = (),
) -> list[Passage]:
    """The passages (best first) with the sentences that fit ``budget`` tokens chosen in each.

    Sentences are taken by score (``rank_sentences``), those named in ``preferred`` ((passage rank, sentence
    index) pairs, say in the order a model scored them) first; a passage none of whose sentences scores above zero
    keeps its first sentence when room remains, so every passage still says what it is. A budget of 0 or
    less chooses every sentence (whole passages).
    """
    passages = split_passages(texts, tables)
    candidates = rank_sentences(question, passages, similarities, meaning_weight) if budget > 0 else []
    if preferred:
        first = {(r, i): place for place, (r, i) in enumerate(preferred)}
        candidates.sort(key=lambda c: first.get((c.rank, c.index), len(first)))
    return fill(passages, candidates, budget, count)


def openings(texts: Sequence[str], budget: int, count: Callable[[str], int],
             tables: Sequence[bool] = ()) -> list[Passage]:
    """The passages with the sentences that fit ``budget`` tokens chosen from their starts, one passage after the
    other in turn (every first sentence, then every second ...): for a question about the documents as a whole,
    which no sentence answers better than another. A budget of 0 or less chooses every sentence."""
    passages = split_passages(texts, tables)
    longest = max((len(p.spans) for p in passages), default=0)
    in_turn = [Candidate(0.0, p.rank, i) for i in range(longest) for p in passages if i < len(p.spans)]
    return fill(passages, in_turn, budget, count)


def reordered(candidates: Sequence[Candidate], scores: Sequence[float]) -> list[tuple[int, int]]:
    """(passage rank, sentence index) of the first ``len(scores)`` candidates, best score first: the
    ``preferred`` order of ``choose`` after a model scored them."""
    scored = sorted(zip(scores, range(len(scores))), key=lambda x: -x[0])
    return [(candidates[i].rank, candidates[i].index) for _, i in scored]


def _scaled(similarities: Sequence[Sequence[float] | None] | None, passages: list[Passage]) -> list[list[float]]:
    """Each passage's sentence cosines scaled to [0, 1] over all the passages' sentences; zeros where a
    passage has none, or none that fit its sentences."""
    given = list(similarities or [])
    given += [None] * (len(passages) - len(given))
    usable = [list(sims) if sims is not None and len(sims) == len(p.spans) else None
              for p, sims in zip(passages, given)]
    values = [x for sims in usable if sims for x in sims]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    return [
        [(x - low) / (high - low) if high > low else 0.0 for x in sims] if sims else [0.0] * len(p.spans)
        for p, sims in zip(passages, usable)
    ]
