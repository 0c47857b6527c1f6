"""Knowledge-base chat: retrieve passages, show the evidence at once, then answer from it with [n] citations.

The ``sources`` event comes first, before the model reads anything, with the sentences of each
passage that bear on the question (``highlights``), so the user has the evidence within a second
even when the model is slow. The model then reads only those sentences (``chat.evidence_tokens``),
which keeps the prompt short: on a CPU every prompt token not already cached costs time. With a built-in
model, fewer of them where the model reads slowly, so that the new part of the prompt takes about
``chat.first_token_seconds`` at the speed the model server measures (``evidence_budget``).

With query rewriting (``rewrite_query``) the question's own evidence is still shown first; the search
then runs again with a hypothetical answer the model writes, and a second ``sources`` event replaces
the first when it found other passages. Clients keep the last ``sources`` event.

Then, for a built-in model that reads prompts fast enough (``chat.evidence_scoring``), the model scores the best
few sentences by how likely it finds the question after each; the passage of the best one becomes [1], the model
reads a shorter evidence (``chat.scored_evidence_tokens``) with that sentence first, and a second ``sources``
event shows it.

A Chinese answer is begun for the model by quoting the evidence sentences that bear best on the question (two, from
different articles: ``chat.quoted_sentences``), each with its passage's number, title and law article (quote.py,
``chat.quote_evidence``); the model concludes from them.

When nothing in the knowledge base comes close to the question (relevance.py, with
``chat.refuse_unsupported``), the answer says that the knowledge base does not seem to say, in the
question's language, without asking the model: a small model invents an answer and cites a passage for it
when asked anyway. The passages are still shown. When the answer states a figure that neither the passages
nor the question hold (figures.py, with ``chat.check_figures``), a note after it names that figure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import Any

import anyio

from configs import Settings
from server.chat import events
from server.chat.citations import Misattributed, cited_elsewhere
from server.chat.context import ChatContext, Pending
from server.chat.events import ChatEvent
from server.chat.evidence import Candidate, Passage, choose, openings, rank_sentences, reordered, split_passages
from server.chat.figures import unsupported_figures
from server.chat.history import MESSAGE_OVERHEAD, NOTE_META
from server.chat.names import unsupported_names
from server.chat.overview import DATE_LOOKAHEAD, Overview, dated_first, overview_of
from server.chat.parts import asks_several
from server.chat.passages import answer_from, fit_passages
from server.chat.question_words import question_word_bias
from server.chat.quote import (QUOTE_MORE_TEMPLATE, QUOTE_TEMPLATE, QUOTES_END_TEMPLATE, distinct_articles,
                              quote_values, reads_as_prose)
from server.chat.relevance import Bounds, in_doubt, unsupported
from server.chat.rewrite import Standalone, rewrites_by_default, standalone_question, with_hypothetical_answer
from server.chat.schemas import Source
from server.chat.superlatives import descending, with_row_asked_for
from server.chat.sources import SOURCE_TEXT_MAX, kb_source
from server.errors import InvalidInput
from server.knowledge_base.codes import codes
from server.knowledge_base.manager import KnowledgeBaseManager, SearchHit
from server.knowledge_base.names import is_conversation_kb, split_kb_names
from server.knowledge_base.rerank import RerankError
from server.llm.tokens import approx_token_count

logger = logging.getLogger(__name__)

# Template of the user message that carries the passages when the system template has no {context}.
KB_QUESTION_TEMPLATE = "kb_question"
NO_MATCH_TEMPLATE = "kb_no_match"
# The answer when nothing in the knowledge base comes close to the question (chat.refuse_unsupported).
UNSUPPORTED_TEMPLATE = "kb_unsupported"
# The same when a passage came doubtfully close (relevance.py's doubt band): its best sentence is quoted.
UNSUPPORTED_CLOSEST_TEMPLATE = "kb_unsupported_closest"
# The same when the question names a code (a model or part number) that the knowledge base never mentions.
UNSUPPORTED_CODE_TEMPLATE = "kb_unsupported_code"
# What the knowledge base of a conversation's dropped files is called where the model or the user reads its name.
CONVERSATION_FILES_TEMPLATE = "conversation_files"
CONVERSATION_FILES_DEFAULT = "this conversation's files"
# The words a knowledge-base answer begins with, for models that continue an answer (chat.answer_lead).
ANSWER_LEAD_TEMPLATE = "kb_answer_lead"
# The note after an answer naming figures the passages do not hold (chat.check_figures).
FIGURES_TEMPLATE = "kb_unverified_figures"
# The note naming figures the passage cited does not hold but another does (same setting).
CITED_ELSEWHERE_TEMPLATE = "kb_cited_elsewhere"
# Stand-ins for prompts files written before these templates existed.
KB_QUESTION_DEFAULT = "{context}\n\n{question}"
NO_MATCH_DEFAULT = "No passage in knowledge base '{kb}' matched the question (threshold {threshold})."
UNSUPPORTED_DEFAULT = "The knowledge base '{kb}' does not seem to answer this question; see the closest passages."
# The most figures and names the note lists by name; it counts the rest.
NOTE_ITEMS = 6
FIGURES_DEFAULT = "\n\n(Not found in the passages: {figures}. Check the sources before relying on it.)"
CITED_ELSEWHERE_DEFAULT = "\n\n(Check the citation: {figures}.)"


def effective_threshold(ctx: ChatContext, kb_name: str) -> float:
    """The score threshold the search applied: request, then settings, then the embed model's own."""
    return float(ctx.knowledge_bases().score_threshold(kb_name, ctx.request.score_threshold))


def title_of(source: Source, metadata: dict[str, Any]) -> str:
    """A short name of a passage's document: its top heading, else the file name without extension. A table's
    (a sheet's or a CSV file's) is its file's name and its own title (its period, say), which its rows do not
    repeat."""
    headings = [str(h).strip() for h in metadata.get("heading_path") or [] if str(h).strip()]
    stem = PurePosixPath(source["file"]).stem
    if is_table(metadata):
        return " — ".join([stem, *headings[-1:]])
    return headings[0] if headings else stem


def is_table(metadata: dict[str, Any]) -> bool:
    """Whether a chunk holds rows of a table (a sheet's or a CSV file's): it knows which rows."""
    return bool(metadata.get("rows"))


def table_passages(hits: Sequence[SearchHit]) -> list[bool]:
    """Which hits are rows of a table, whose rows the evidence reads best first."""
    return [is_table(hit.metadata) for hit in hits]


def with_highlights(source: Source, passage: Passage) -> Source:
    """The source entry plus the [start, end) offsets, in its text, of the sentences the model reads."""
    out = source.copy()
    out["highlights"] = [[s, e] for s, e in passage.highlights if e <= SOURCE_TEXT_MAX]
    return out


def evidence_budget(ctx: ChatContext, hits: list[SearchHit], sources: list[Source], lead: str,
                    prompt_speed: float | None, system_tokens: int = 0) -> int:
    """``chat.evidence_tokens``, cut so the model reads the new part of its prompt in ``chat.first_token_seconds``.

    The new part is what the model has not cached: the last user message (question, passage labels and evidence)
    and the history before it, the answer's lead, and their message framing. The system prompt is read once and
    kept, unless a rewrite of the question came between (the model server keeps one prompt): then its
    ``system_tokens`` count too. It applies to questions in ``chat.first_token_languages`` asked of built-in
    models whose server says how fast they read (``prompt_speed``). The budget is in kbchat's estimate, so the
    room left in model tokens is converted by these passages' own ratio of the two counts. It never falls below
    ``chat.min_evidence_tokens``.
    """
    chat = ctx.settings.chat
    wanted = chat.evidence_tokens
    if (wanted <= 0 or chat.first_token_seconds <= 0 or not prompt_speed or not ctx.llm.config.builtin
            or ctx.lang not in chat.first_token_languages):
        return wanted
    frame = ctx.render(ctx.localized(KB_QUESTION_TEMPLATE, default=KB_QUESTION_DEFAULT), context="",
                       question=ctx.question)
    labels = "".join(f"[{s['index']}] {title_of(s, hit.metadata)}\n" for s, hit in zip(sources, hits))
    history = sum(ctx.count(m["content"]) + MESSAGE_OVERHEAD for m in ctx.history)
    fixed = ctx.count(frame) + ctx.count(labels) + ctx.count(lead) + history + system_tokens + 2 * MESSAGE_OVERHEAD
    room = prompt_speed * chat.first_token_seconds - fixed
    texts = [hit.text for hit in hits]
    model_tokens = sum(ctx.count(t) for t in texts)
    ratio = sum(approx_token_count(t) for t in texts) / model_tokens if model_tokens else 1.0
    return max(min(chat.min_evidence_tokens, wanted), min(wanted, int(room * ratio)))


def choose_evidence(ctx: ChatContext, question: str, texts: list[str], template: str,
                    similarities: list[list[float] | None] | None = None, wanted: int | None = None,
                    preferred: Sequence[tuple[int, int]] = (), tables: Sequence[bool] = (),
                    from_start: bool = False) -> list[Passage]:
    """The sentences the model reads: ``wanted`` tokens of them (``chat.evidence_tokens`` unless given), or whole
    passages when it is 0; with ``from_start``, each passage's first sentences (``evidence.openings``) instead of
    those that bear best on the question.

    ``similarities``: each passage's sentence cosines with the question (``sentence_similarities``).
    Whole passages that overflow the model's window fall back to choosing sentences within it.
    ``chat.evidence_tokens`` is measured with kbchat's estimate, by which it was chosen on the everyday
    questions, not with the model's own tokenizer: Qwen spends 1.7 times fewer tokens on Chinese, so with
    its counts the same budget held 1.7 times the text, and the laws were answered worse (see docs/everyday.md).
    """
    room = ctx.budget - ctx.count(template) - ctx.count(ctx.question) - 3 * MESSAGE_OVERHEAD
    wanted = ctx.settings.chat.evidence_tokens if wanted is None else wanted
    budget = max(1, min(wanted, room)) if wanted > 0 else 0
    weight = ctx.settings.chat.evidence_meaning_weight

    def pick(limit: int, count: Callable[[str], int]) -> list[Passage]:
        if from_start:
            return openings(texts, limit, count, tables)
        return choose(question, texts, limit, count, similarities, weight, preferred, tables)

    passages = pick(budget, approx_token_count)
    if wanted <= 0 and sum(ctx.count(p.excerpt()) for p in passages) > room:
        passages = pick(room, ctx.count)
    return passages


async def _standalone(ctx: ChatContext) -> Standalone:
    """The question standing alone: a follow-up is condensed with its history first."""
    standalone = await standalone_question(ctx)
    if standalone.text != ctx.question:
        ctx.meta["standalone_question"] = standalone.text
    return standalone


@dataclass
class _Evidence:
    """The passages found for a question, as the model will read them and the user sees them."""

    hits: list[SearchHit]
    passages: list[Passage]
    sources: list[Source]
    evidence_tokens: int = 0  # the budget the sentences were chosen with (evidence_budget)
    similarities: list[list[float] | None] | None = None  # each passage's sentence cosines with the question
    # (passage, sentence) pairs that bear best on the question, best first, by shared words and meaning; only the
    # chat model's best where it scored them (evidence_scoring). What the answer quotes (chat.quote_evidence).
    best: list[tuple[int, int]] = field(default_factory=list)


def _ids(evidence: _Evidence) -> list[str]:
    return [hit.doc_id for hit in evidence.hits]


@dataclass(frozen=True)
class _Reading:
    """How fast the model reads prompts (None: unknown) and how many system prompt tokens it reads anew."""

    prompt_speed: float | None = None
    system_tokens: int = 0


async def _find(ctx: ChatContext, kb_name: str, query: str, question: str, template: str,
                reading: _Reading = _Reading(), follows: str = "") -> _Evidence:
    """Search with ``query`` (a reranker judges the hits for ``question``; a follow-up is looked for after the
    question it ``follows`` as well) and choose the evidence sentences for ``question`` in what was found."""
    request, chat = ctx.request, ctx.settings.chat
    kb = ctx.knowledge_bases()
    search = partial(kb.search, kb_name, query, top_k=request.top_k or chat.kb_passages,
                     score_threshold=request.score_threshold, mode=request.search_mode, rerank_query=question,
                     context=follows or None)
    hits: list[SearchHit] = await anyio.to_thread.run_sync(search)
    if not hits:
        return _Evidence([], [], [])
    if descending(question) is not None:
        # "Which ... the most ...?" over a table: the row asked for first, found by its figure (superlatives.py).
        table_chunks = partial(_table_chunks, kb, kb_name)
        hits = await anyio.to_thread.run_sync(with_row_asked_for, question, hits, table_chunks)
    texts = [hit.text for hit in hits]
    similarities = None
    if chat.evidence_meaning_weight > 0 and chat.evidence_tokens > 0:
        similarities = await anyio.to_thread.run_sync(kb.sentence_similarities, question, hits)
    sources = [kb_source(i, hit, kb_name) for i, hit in enumerate(hits, 1)]
    tables = table_passages(hits)
    cut = split_passages(texts, tables)
    ranked = rank_sentences(question, cut, similarities, chat.evidence_meaning_weight)
    best = [(c.rank, c.index) for c in ranked]
    # The answer's lead is read with the evidence: a quote (chat.quote_evidence) counts at its length.
    lead = _lead(ctx, question, _Evidence(hits, cut, sources, similarities=similarities, best=best))
    wanted = evidence_budget(ctx, hits, sources, lead, reading.prompt_speed, reading.system_tokens)
    passages = choose_evidence(ctx, question, texts, template, similarities, wanted, tables=tables)
    sources = [with_highlights(source, p) for source, p in zip(sources, passages)]
    return _Evidence(hits, passages, sources, wanted, similarities, best)


async def _opening(ctx: ChatContext, overview: Overview, question: str, template: str, reading: _Reading) -> _Evidence:
    """The evidence for a question about files as a whole (overview.py): their opening passages, each read from its
    start. Nothing was searched, so the sources carry no score."""
    kb = ctx.knowledge_bases()
    limit = ctx.request.top_k or ctx.settings.chat.kb_passages
    lookahead = DATE_LOOKAHEAD if overview.dated else 0
    hits = await anyio.to_thread.run_sync(kb.opening_chunks, overview.kb, limit + lookahead, overview.files)
    hits = dated_first(hits, limit) if overview.dated else hits
    if not hits:
        return _Evidence([], [], [])
    texts = [hit.text for hit in hits]
    tables = table_passages(hits)
    sources = [kb_source(i, hit, overview.kb) for i, hit in enumerate(hits, 1)]
    for source in sources:
        source["score"] = None
    lead = _lead(ctx, question, _Evidence(hits, split_passages(texts, tables), sources))
    wanted = evidence_budget(ctx, hits, sources, lead, reading.prompt_speed, reading.system_tokens)
    passages = choose_evidence(ctx, question, texts, template, wanted=wanted, tables=tables, from_start=True)
    sources = [with_highlights(source, p) for source, p in zip(sources, passages)]
    return _Evidence(hits, passages, sources, wanted)


def kb_label(ctx: ChatContext, kb_name: str) -> str:
    """``kb_name`` as prompts and answers name it: the knowledge base of the conversation's own files as such
    (template conversation_files), several joined by " + "."""
    files = ctx.localized(CONVERSATION_FILES_TEMPLATE, default=CONVERSATION_FILES_DEFAULT)
    return " + ".join(files if is_conversation_kb(name) else name for name in split_kb_names(kb_name))


def _table_chunks(kb: KnowledgeBaseManager, kb_name: str, hit: SearchHit) -> list[SearchHit]:
    return kb.table_chunks(str(hit.metadata.get("kb") or kb_name), hit)


def sentence_readings(sources: list[Source], hits: list[SearchHit], passages: list[Passage],
                      candidates: Sequence[Candidate]) -> list[str]:
    """What the chat model reads of each sentence it scores (chat.evidence_scoring): its document's title, then
    the sentence."""
    titles = [title_of(source, hit.metadata) for source, hit in zip(sources, hits)]
    return [f"{titles[c.rank]}\n{passages[c.rank].sentence(c.index)}" for c in candidates]


async def _scored(ctx: ChatContext, kb_name: str, question: str, template: str, found: _Evidence) -> _Evidence:
    """The evidence again, its best sentences (``chat.scored_sentences``) first in the order the chat model
    scores them (chat.evidence_scoring), and the passage of the best one first; ``found`` unchanged when the
    scoring fails or there is nothing to order."""
    scorer = ctx.evidence_scorer
    if scorer is None or found.evidence_tokens <= 0 or not found.hits:
        return found
    texts = [hit.text for hit in found.hits]
    tables = table_passages(found.hits)
    passages = split_passages(texts, tables)
    candidates = rank_sentences(question, passages, found.similarities,
                                ctx.settings.chat.evidence_meaning_weight)[:ctx.settings.chat.scored_sentences]
    if len(candidates) < 2:
        return found
    readings = sentence_readings(found.sources, found.hits, passages, candidates)
    started = time.perf_counter()
    try:
        scores = await anyio.to_thread.run_sync(scorer.scores, question, readings)
    except RerankError as exc:
        logger.warning("evidence scoring failed, the first choice stands: %s", exc)
        return found
    ctx.meta["evidence_scoring_s"] = round(time.perf_counter() - started, 2)
    preferred = reordered(candidates, scores)
    best = preferred[0][0]
    order = [best, *(r for r in range(len(texts)) if r != best)]
    budget = min(found.evidence_tokens, ctx.settings.chat.scored_evidence_tokens)
    chosen = choose_evidence(ctx, question, texts, template, found.similarities, budget, preferred, tables)
    hits = [found.hits[r] for r in order]
    sources = [with_highlights(kb_source(i, hits[i - 1], kb_name), chosen[r]) for i, r in enumerate(order, 1)]
    sims = [found.similarities[r] for r in order] if found.similarities else None
    # The sentence the model scored best is quoted alone: a second quote gained nothing there (docs/everyday.md).
    return _Evidence(hits, [chosen[r] for r in order], sources, budget, sims, best=[(0, preferred[0][1])])


def scores_evidence(settings: Settings, lang: str, prompt_speed: float | None) -> bool:
    """``chat.evidence_scoring`` resolved for a built-in model and a question in ``lang``: only for
    ``chat.evidence_scoring_languages``; ``auto`` scores where the model server reads prompts at
    ``chat.evidence_scoring_min_prompt_speed`` or faster (None: unknown, so no scoring)."""
    setting = settings.chat.evidence_scoring
    if lang not in settings.chat.evidence_scoring_languages:
        return False
    if setting != "auto":
        return bool(setting)
    return prompt_speed is not None and prompt_speed >= settings.chat.evidence_scoring_min_prompt_speed


def _lead(ctx: ChatContext, question: str, found: _Evidence) -> str:
    """The first words of the answer handed to the model (``chat.answer_lead``), or none: the best sentences of
    ``found`` quoted (``chat.quote_evidence``) where there is one to quote, else the kb_answer_lead template."""
    if not ctx.settings.chat.answer_lead:
        return ""
    return _quote(ctx, question, found) or ctx.localized(ANSWER_LEAD_TEMPLATE, default="")


def _lead_stop(ctx: ChatContext, question: str, lead: str) -> list[str] | None:
    """What ends the answer (``chat.lead_once``): the kb_answer_lead template begun again, unless the question asks
    several things (parts.py); nothing when the model does not continue a lead."""
    if not lead or not ctx.settings.chat.lead_once or not ctx.llm.continues_answers:
        return None
    again = ctx.localized(ANSWER_LEAD_TEMPLATE, default="")
    return [again] if again and not asks_several(question, ctx.lang) else None


def _quote(ctx: ChatContext, question: str, found: _Evidence) -> str | None:
    """The lead quoting the evidence sentences that bear best on ``question`` (``found.best``, at most
    ``chat.quoted_sentences`` of them, each from another article or passage; see quote.py); None when none is
    quoted."""
    if ctx.lang not in ctx.settings.chat.quote_evidence or not found.best:
        return None
    documents = [source["file"] for source in found.sources]
    picked = distinct_articles(found.passages, documents, found.best, ctx.settings.chat.quoted_sentences)
    quotes: list[str] = []
    for rank, index in picked:
        values = _quote_values(ctx, question, found, rank, index)
        if values is None:
            if not quotes:
                return None  # the best sentence cannot be quoted: no quote at all
            continue
        template = QUOTE_TEMPLATE if not quotes else QUOTE_MORE_TEMPLATE
        quotes.append(ctx.render(ctx.localized(template, default=""), **values))
    if len(quotes) > 1:
        # After several clauses, the conclusion is begun too: left to itself, the model quotes yet another.
        quotes.append(ctx.localized(QUOTES_END_TEMPLATE, default=""))
    return "".join(quotes) or None


def _quote_values(ctx: ChatContext, question: str, found: _Evidence, rank: int, index: int) -> dict[str, str] | None:
    """The quoting template's values for sentence ``index`` of passage ``rank`` of ``found`` (quote.quote_values)."""
    source, hit = found.sources[rank], found.hits[rank]
    return quote_values(ctx.lang, source["index"], title_of(source, hit.metadata), found.passages[rank], index,
                        question)


@dataclass(frozen=True)
class _Judgement:
    """Whether the knowledge base seems unable to answer the question, and whether that was judged within the doubt
    band, by the question's words (relevance.py)."""

    unsupported: bool
    doubtful: bool = False
    # The codes the question names that the knowledge base never mentions (codes.py).
    unmentioned: tuple[str, ...] = ()


async def _unsupported(ctx: ChatContext, kb_name: str, question: str, found: _Evidence) -> _Judgement:
    """Whether the knowledge base holds nothing close enough to the question to answer it
    (chat.refuse_unsupported, see relevance.py)."""
    refuse = ctx.request.refuse_unsupported
    if not found.hits or not (ctx.settings.chat.refuse_unsupported if refuse is None else refuse):
        return _Judgement(False)
    kb = ctx.knowledge_bases()

    def judge() -> _Judgement:
        unmentioned = kb.unmentioned(kb_name, codes(question))
        if unmentioned:
            ctx.meta["unmentioned"] = unmentioned
            return _Judgement(True, unmentioned=tuple(unmentioned))
        closest = kb.closest_chunk(kb_name, question)
        bounds = Bounds(kb.relevance_floor(kb_name, ctx.lang), kb.relevance_doubt(kb_name, ctx.lang),
                        ctx.settings.kb.relevance_keyword_score)
        keywords = kb.keyword_score(kb_name, question) if in_doubt(closest, ctx.lang, bounds) else None
        if closest is not None:
            ctx.meta["closest_score"] = closest.score
        if keywords is not None:
            ctx.meta["keyword_score"] = round(keywords, 3)
        return _Judgement(unsupported(closest, ctx.lang, bounds, keywords), doubtful=keywords is not None)

    return await anyio.to_thread.run_sync(judge)


def _declined(ctx: ChatContext, label: str, question: str, found: _Evidence, judged: _Judgement) -> str:
    """The answer for a question the knowledge base does not seem to answer: that it never mentions the code the
    question names (kb_unsupported_code), just that (kb_unsupported) or, where a passage came doubtfully close,
    that with its best sentence quoted, since an answerable question in other words than the documents' may find
    its answer there."""
    if judged.unmentioned:
        template = ctx.localized(UNSUPPORTED_CODE_TEMPLATE, default=UNSUPPORTED_DEFAULT)
        return ctx.render(template, kb=label, code=_listed(ctx.lang, list(judged.unmentioned)))
    values = None
    if judged.doubtful:
        # The best sentence that says something: one sharing a word with the question may be only a link.
        quotable = (_quote_values(ctx, question, found, *best) for best in found.best)
        values = next((v for v in quotable if v is not None and reads_as_prose(v["sentence"])), None)
    if values is None:
        return ctx.render(ctx.localized(UNSUPPORTED_TEMPLATE, default=UNSUPPORTED_DEFAULT), kb=label)
    return ctx.render(ctx.localized(UNSUPPORTED_CLOSEST_TEMPLATE, default=UNSUPPORTED_DEFAULT), kb=label, **values)


def _question_with_passages(ctx: ChatContext, sources: list[Source], hits: list[SearchHit],
                            passages: list[Passage]) -> str:
    """The last user message: each passage's chosen sentences under its number and title, then the question."""
    labelled = [
        f"[{s['index']}] {title_of(s, hit.metadata)}\n{p.excerpt()}"
        for s, hit, p in zip(sources, hits, passages)
        if p.chosen
    ]
    template = ctx.localized(KB_QUESTION_TEMPLATE, default=KB_QUESTION_DEFAULT)
    return ctx.render(template, context="\n\n".join(labelled), question=ctx.question)


def _question_word_bias(ctx: ChatContext, sources: list[Source], hits: list[SearchHit], passages: list[Passage],
                        lead: str) -> dict[int, float] | None:
    """The logit bias against the question's words that the passages lack (``chat.question_word_penalty``), for
    models whose tokenizer kbchat has; None otherwise."""
    tokenizer = ctx.llm.tokenizer.get() if ctx.llm.tokenizer is not None else None
    if tokenizer is None:
        return None
    grounds = [lead, *(p.excerpt() for p in passages), *(title_of(s, hit.metadata) for s, hit in zip(sources, hits))]
    return question_word_bias(tokenizer, ctx.question, grounds, ctx.settings.chat.question_word_penalty) or None


async def run(ctx: ChatContext) -> AsyncGenerator[ChatEvent, None]:
    """Answer from the passages of ``request.kb_name`` that pass the threshold; never invent sources."""
    request = ctx.request
    kb_name = request.kb_name
    if not kb_name:
        raise InvalidInput("knowledge-base chat needs kb_name")
    ctx.meta["kb_name"] = kb_name
    chat = ctx.settings.chat
    prompt_speed = await ctx.llm.prompt_speed()
    hyde = request.rewrite_query
    if hyde is None:
        hyde = rewrites_by_default(ctx.settings, ctx.llm.config.builtin, prompt_speed)
    standing = Pending(_standalone(ctx))
    async for event in standing.statuses("rewriting" if ctx.history else None):
        yield event
    standalone = standing.result()
    question = standalone.text
    if standalone.complete and question != ctx.question and not chat.kb_answer_history:
        # The answer reads the question as rewritten to stand alone, without the history it came from.
        ctx.history, ctx.question = [], question
    template = ctx.template(chat.kb_prompt_template)
    label = kb_label(ctx, kb_name)
    # A question about the dropped files, or a named file, as a whole is answered from their openings (overview.py).
    overview = await anyio.to_thread.run_sync(overview_of, ctx.knowledge_bases(), kb_name, question)
    if overview is not None:
        ctx.meta["overview"] = True
        hyde = False
    # A rewrite (of a follow-up, or HyDE) displaces the cached system prompt from the model server, unless it
    # continues the conversation's previous answer (ctx.previous), whose prompt begins with that system prompt.
    rewrites = (bool(ctx.history) and ctx.previous is None) or hyde
    reading = _Reading(prompt_speed, ctx.count(ctx.render(template, kb=label)) if rewrites else 0)
    if overview is not None:
        finding = Pending(_opening(ctx, overview, question, template, reading))
    else:
        finding = Pending(_find(ctx, kb_name, question, question, template, reading, standalone.follows))
    # A reranker (the chat model, say) can take seconds before the passages are known.
    ranks = ctx.settings.kb.rerank.kind != "off" and overview is None
    async for event in finding.statuses("ranking" if ranks else None):
        yield event
    found = finding.result()
    if found.sources or not hyde:
        # Evidence first: what the question finds is shown before any model time is spent on it.
        yield events.sources(found.sources)
    # The files are what such a question asks about: nothing to judge.
    judged = _Judgement(False) if overview is not None else await _unsupported(ctx, kb_name, question, found)
    if judged.unsupported:
        # Judged before any rewriting, so no model time is spent on the question at all.
        ctx.meta["unsupported"] = True
        if standalone.follows:
            # The passages shown with the refusal are the question's own closest ones, not the exchange's before it.
            found = await _find(ctx, kb_name, question, question, template, reading)
            yield events.sources(found.sources)
        yield events.delta(_declined(ctx, label, question, found, judged))
        return
    if hyde:
        # Then the search again with a hypothetical answer in the documents' words; the passages it
        # finds replace the first ones when they differ.
        writing = Pending(with_hypothetical_answer(ctx, question))
        async for event in writing.statuses("rewriting"):
            yield event
        query = writing.result()
        ctx.meta["search_query"] = query
        better = await _find(ctx, kb_name, query, question, template, reading)
        if better.hits and _ids(better) != _ids(found):
            found = better
            yield events.sources(found.sources)
        elif not found.sources:
            yield events.sources([])
    if (found.hits and overview is None and ctx.evidence_scorer is not None
            and scores_evidence(ctx.settings, ctx.lang, prompt_speed)):
        weighing = Pending(_scored(ctx, kb_name, question, template, found))
        async for event in weighing.statuses("weighing"):
            yield event
        scored = weighing.result()
        if scored is not found:
            found = scored
            yield events.sources(found.sources)
    if not found.hits:
        threshold = await anyio.to_thread.run_sync(effective_threshold, ctx, kb_name)
        no_match = ctx.localized(NO_MATCH_TEMPLATE, default=NO_MATCH_DEFAULT)
        yield events.delta(ctx.render(no_match, kb=label, threshold=f"{threshold:g}"))
        return
    hits, passages, sources = found.hits, found.passages, found.sources
    if found.evidence_tokens != chat.evidence_tokens:
        ctx.meta["evidence_tokens"] = found.evidence_tokens
    # The passages as the model reads them: under their titles, which for a table hold its period and unit.
    asked = [question, ctx.question, ctx.request.query, *(m["content"] for m in ctx.history if m.get("role") == "user")]
    grounds = [*asked, *(hit.text for hit in hits), *(title_of(s, hit.metadata) for s, hit in zip(sources, hits))]
    numbered = {s["index"]: f"{title_of(s, hit.metadata)}\n{hit.text}" for s, hit in zip(sources, hits)}
    lead = ""
    if "{context}" in template:
        # A template of the older layout: passages in the system prompt, the question after them.
        system, _ = fit_passages(ctx, template, [(s, p.excerpt()) for s, p in zip(sources, passages)], kb=label)
        answer = answer_from(ctx, system)
    else:
        messages = ctx.messages(ctx.render(template, kb=label), _question_with_passages(ctx, sources, hits, passages))
        lead = _lead(ctx, question, found)
        answer = ctx.answer(messages, lead=lead, stop=_lead_stop(ctx, question, lead),
                            logit_bias=_question_word_bias(ctx, sources, hits, passages, lead))
    async for event in _with_note(ctx, answer, grounds, _Cited(numbered, "\n".join(asked), lead)):
        yield event


def _listed(lang: str, missing: list[str]) -> str:
    """``missing`` as the note names them: the first ``NOTE_ITEMS``, then how many more."""
    shown, more = missing[:NOTE_ITEMS], len(missing) - NOTE_ITEMS
    if lang == "zh":
        return "、".join(f"“{f}”" for f in shown) + (f"等{len(missing)}处" if more > 0 else "")
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class _Cited:
    """What an answer's citations are checked against (citations.py): the passages shown by number, each under its
    title, the question in the words it was asked, and the lead the answer was begun with."""

    passages: dict[int, str]
    question: str
    lead: str


def _placed(lang: str, misplaced: list[Misattributed]) -> str:
    """The figures cited from the wrong passage as the note names them, each with the passage that holds it."""
    items = []
    for item in misplaced[:NOTE_ITEMS]:
        cited = ", ".join(f"[{n}]" for n in item.cited)
        items.append(f"“{item.figure}”在资料[{item.found}]中，不在资料{cited}中" if lang == "zh"
                     else f"{item.figure} is in [{item.found}], not in {cited}")
    return ("；" if lang == "zh" else "; ").join(items)


async def _with_note(ctx: ChatContext, answer: AsyncGenerator[ChatEvent, None], grounds: list[str], cited: _Cited
                           ) -> AsyncGenerator[ChatEvent, None]:
    """The answer's events, then, with ``chat.check_figures``, a note naming the figures (figures.py) and names
    (names.py) it states that none of ``grounds`` (the passages shown, the question) holds, and the figures it cites
    from a passage that does not hold them while another does (citations.py)."""
    told = events.AnswerAccumulator()
    async for event in answer:
        told.add(event)
        yield event
    if not ctx.settings.chat.check_figures:
        return
    figures = unsupported_figures(told.text, grounds)
    names = unsupported_names(told.text, grounds)
    if figures:
        ctx.meta["unsupported_figures"] = figures
    if names:
        ctx.meta["unsupported_names"] = names
    misplaced = cited_elsewhere(told.text, cited.passages, cited.question, cited.lead)
    notes = []
    if figures or names:
        note = ctx.localized(FIGURES_TEMPLATE, default=FIGURES_DEFAULT)
        notes.append(ctx.render(note, figures=_listed(ctx.lang, figures + names)))
    if misplaced:
        ctx.meta["cited_elsewhere"] = [item._asdict() for item in misplaced]
        note = ctx.localized(CITED_ELSEWHERE_TEMPLATE, default=CITED_ELSEWHERE_DEFAULT)
        notes.append(ctx.render(note, figures=_placed(ctx.lang, misplaced)))
    if notes:
        # Kept apart too, so the history a model reads later leaves it out (history.load_history).
        ctx.meta[NOTE_META] = "".join(notes)
        yield events.delta(ctx.meta[NOTE_META])
