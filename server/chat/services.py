"""ChatServices: the one entry to the four chat modes, with storage, titles and feedback.

Every transport (HTTP SSE, OpenAI /v1, WebSocket, gRPC) iterates ``run(request)``; the
events are described in ``server.chat.events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import anyio

from configs import Settings
from configs.prompts import PromptError, load_prompts
from configs.settings import RerankSettings
from server.chat import agent_chat, bilingual, events, kb_chat, llm_chat, search_chat
from server.chat.context import ChatContext, Exchange, ModeHandler
from server.chat.conversation_files import ConversationFiles
from server.chat.conversations import ConversationService
from server.chat.events import AnswerAccumulator, ChatEvent
from server.chat.history import clean_history, last_turns, load_history, without_repeated
from server.chat.schemas import ChatMode, ChatRequest, ChatResult, ErrorInfo
from server.chat.search_engines import EngineFactory
from server.chat.titles import fallback_title, model_title
from server.db import Database
from server.db import chat_repository as repo
from server.db.chat_repository import FeedbackRecord
from server.errors import AppError, InvalidInput, NotFound
from server.knowledge_base.manager import KnowledgeBaseManager
from server.knowledge_base.names import split_kb_names
from server.knowledge_base.rerank import ChatModelReranker
from server.llm.local.status import local_score_url
from server.llm.registry import LLMRegistry

logger = logging.getLogger(__name__)

# Conversations whose last answer's model call is kept for their next question (ChatServices._exchanges).
REMEMBERED_EXCHANGES = 64

# The function answering each chat mode.
MODE_HANDLERS: dict[ChatMode, ModeHandler] = {
    "llm": llm_chat.run,
    "kb": kb_chat.run,
    "search": search_chat.run,
    "agent": agent_chat.run,
}
CANCELLED: ErrorInfo = {"code": "cancelled", "message": "the answer was stopped before it was complete"}


@dataclass
class _Turn:
    """Where one question is stored: its conversation, user message and pending title."""

    conversation_id: str = ""
    user_message_id: str = ""
    fallback_title: str | None = None  # set when the conversation still needs a model-written title


class ChatServices:
    """Answers questions in the four modes and keeps conversations, titles and feedback."""

    def __init__(self, settings: Settings, db: Database, kb: KnowledgeBaseManager, llms: LLMRegistry) -> None:
        self.settings = settings
        self.db = db
        self.kb = kb
        self.llms = llms
        self.conversations = ConversationService(db)
        self.files = ConversationFiles(self.conversations, kb)
        self.engines = EngineFactory(settings.chat.search)
        self._templates: dict[str, str] = load_prompts(settings.chat.prompts_file)
        self._templates_mtime = self._prompts_mtime()
        self._background: set[asyncio.Task[None]] = set()
        # The model call behind each recent conversation's last answer, which its next question's rewrite
        # continues (ChatContext.previous), so the model server reuses what it computed for that answer.
        self._exchanges: OrderedDict[str, Exchange] = OrderedDict()
        # Scores the evidence sentences through the bundled model server (chat.evidence_scoring).
        self.evidence_scorer = None if settings.chat.evidence_scoring is False else ChatModelReranker(
            RerankSettings(kind="chat_model"), local_score_url(settings), settings.server.api_key)

    def close(self) -> None:
        if self.evidence_scorer is not None:
            self.evidence_scorer.close()

    # ---- templates and feedback ----------------------------------------------------------------

    def _prompts_mtime(self) -> float:
        try:
            return self.settings.chat.prompts_file.stat().st_mtime
        except OSError:
            return 0.0

    def templates(self) -> dict[str, str]:
        """The prompt templates, re-read when the file changes (a broken edit keeps the old ones)."""
        mtime = self._prompts_mtime()
        if mtime != self._templates_mtime:
            self._templates_mtime = mtime
            try:
                self._templates = load_prompts(self.settings.chat.prompts_file)
            except PromptError as exc:
                logger.warning("keeping the previous prompt templates: %s", exc)
        return self._templates

    def template_names(self) -> list[str]:
        return sorted(self.templates())

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation with its messages and the files dropped into it."""
        self.conversations.delete(conversation_id)
        self.files.delete(conversation_id)
        self._exchanges.pop(conversation_id, None)

    def feedback(self, message_id: str, score: str | int, reason: str | None = None) -> FeedbackRecord:
        """Thumbs up/down ("up"/"down" or 1/-1) on an answer; a second call replaces the first."""
        return self.conversations.feedback(message_id, score, reason)

    # ---- answering -----------------------------------------------------------------------------

    def run(self, request: ChatRequest, failures: list[AppError] | None = None) -> AsyncGenerator[ChatEvent, None]:
        """Events of one answer: start, delta/tool/sources..., then done, or error (no done).

        ``failures``, when given, receives the AppError behind an ``error`` event, so a
        transport can answer with its HTTP status.
        """
        return self._events(request, failures)

    async def run_to_completion(self, request: ChatRequest, *, failures: list[AppError] | None = None
                                ) -> ChatResult:
        """The whole answer, a failure's code and message under ``error``; the failures themselves
        (with their HTTP status) are appended to ``failures`` when given."""
        answer = AnswerAccumulator()
        async with contextlib.aclosing(self._events(request, failures)) as stream:
            async for event in stream:
                answer.add(event)
        return answer.result()

    async def _events(self, request: ChatRequest, failures: list[AppError] | None
                      ) -> AsyncGenerator[ChatEvent, None]:
        # Adding files waits while the answer is made, so it gets the cores.
        with self.kb.foreground.answering():
            async with contextlib.aclosing(self._answer_events(request, failures)) as stream:
                async for event in stream:
                    yield event

    async def _answer_events(self, request: ChatRequest, failures: list[AppError] | None
                             ) -> AsyncGenerator[ChatEvent, None]:
        started = time.perf_counter()
        try:
            ctx = await self._context(request)
            turn = await self._store_question(ctx)
        except AppError as exc:
            if failures is not None:
                failures.append(exc)
            yield events.error(exc.code, exc.message)
            return
        yield events.start(turn.conversation_id, turn.user_message_id)
        answer = AnswerAccumulator()
        failure: AppError | None = None
        try:
            async with contextlib.aclosing(self._answer(ctx)) as stream:
                async for event in stream:
                    answer.add(event)
                    yield event
        except AppError as exc:
            failure = exc
        except (asyncio.CancelledError, GeneratorExit):
            # The client left or the transport cancelled: keep what was written, synchronously,
            # because nothing may be awaited in a closing generator.
            self._store_answer(ctx, turn, answer, started, CANCELLED)
            raise
        except Exception as exc:
            logger.exception("answering in %s mode failed", request.mode)
            failure = AppError(f"internal error while answering: {type(exc).__name__}: {exc}")
        if failure is not None:
            if failures is not None:
                failures.append(failure)
            error: ErrorInfo = {"code": failure.code, "message": failure.message}
            await anyio.to_thread.run_sync(self._store_answer, ctx, turn, answer, started, error)
            yield events.error(failure.code, failure.message)
            return
        message_id = await anyio.to_thread.run_sync(self._store_answer, ctx, turn, answer, started, None)
        latency = (time.perf_counter() - started) * 1000
        if turn.conversation_id and ctx.exchange is not None:
            self._remember(turn.conversation_id, ctx.exchange)
        # An answer that came without the model (nothing found, say) keeps the question as its title.
        if turn.fallback_title is not None and self.settings.chat.llm_titles and ctx.exchange is not None:
            self._start_title_task(ctx, turn, ctx.exchange)
        yield events.done(message_id, turn.conversation_id, ctx.prompt_tokens, ctx.completion_tokens, latency)

    def _answer(self, ctx: ChatContext) -> AsyncGenerator[ChatEvent, None]:
        handler = MODE_HANDLERS[ctx.request.mode]
        return bilingual.run(ctx, handler) if bilingual.applies(ctx) else handler(ctx)

    async def _context(self, request: ChatRequest) -> ChatContext:
        """Check everything that can be checked before storing the question."""
        llm = self.llms.get(request.model)
        templates = self.templates()
        if request.prompt_template and request.prompt_template not in templates:
            raise InvalidInput(
                f"unknown prompt template {request.prompt_template!r}; known templates: {', '.join(sorted(templates))}"
            )
        if request.mode == "kb" and request.conversation_id:
            # Files dropped into the conversation are searched too (alone when no knowledge base is chosen).
            files_kb = await anyio.to_thread.run_sync(self.files.kb_name, request.conversation_id)
            if files_kb is not None:
                chosen = split_kb_names(request.kb_name) if request.kb_name else []
                names = [files_kb, *(name for name in chosen if name != files_kb)]
                request = request.model_copy(update={"kb_name": "+".join(names)})
        if request.mode == "kb" and not request.kb_name:
            raise InvalidInput("knowledge-base chat needs kb_name (or files dropped into the conversation)")
        if request.kb_name and request.mode in ("kb", "agent"):
            try:
                for name in split_kb_names(request.kb_name):
                    await anyio.to_thread.run_sync(self.kb.get_kb, name)
            except NotFound as exc:
                # One code for every missing thing a chat names, whatever the KB layer calls it.
                raise NotFound(exc.message) from exc
        if request.mode == "search":
            self.engines.get(request.engine)
        if request.conversation_id:
            await anyio.to_thread.run_sync(self.conversations.exists, request.conversation_id)
        previous = None
        if request.history is not None:
            history = clean_history([m.model_dump() for m in request.history])
            if request.history_turns is not None:
                history = last_turns(history, request.history_turns)
        elif request.conversation_id:
            turns = self.settings.chat.history_turns if request.history_turns is None else request.history_turns
            history = await anyio.to_thread.run_sync(load_history, self.db, request.conversation_id, turns)
            history = without_repeated(history, request.query)
            previous = self._previous(request.conversation_id, history)
        else:
            history = []
        return ChatContext(
            request=request, settings=self.settings, llm=llm, templates=templates, history=history,
            kb=self.kb, engines=self.engines, evidence_scorer=self.evidence_scorer if llm.config.builtin else None,
            previous=previous,
        )

    def _remember(self, conversation_id: str, exchange: Exchange) -> None:
        self._exchanges[conversation_id] = exchange
        self._exchanges.move_to_end(conversation_id)
        while len(self._exchanges) > REMEMBERED_EXCHANGES:
            self._exchanges.popitem(last=False)

    def _previous(self, conversation_id: str, history: list[dict[str, str]]) -> Exchange | None:
        """The model call behind the conversation's last answer, if this process made it and that answer is
        still the last message of ``history`` (not deleted, edited or answered again elsewhere)."""
        exchange = self._exchanges.get(conversation_id)
        if exchange is None or not history or history[-1]["role"] != "assistant":
            return None
        return exchange if history[-1]["content"].startswith(exchange.reply.strip()) else None

    async def _store_question(self, ctx: ChatContext) -> _Turn:
        request = ctx.request
        if not request.store:
            return _Turn()
        return await anyio.to_thread.run_sync(self._store_question_sync, ctx)

    def _store_question_sync(self, ctx: ChatContext) -> _Turn:
        """Store the question, in a new conversation when it names none: one transaction for both."""
        request = ctx.request
        fallback = fallback_title(request.query, self.settings.chat.title_max_chars)
        turn = _Turn(conversation_id=request.conversation_id or "")
        meta: dict[str, Any] = {"mode": request.mode, "model": ctx.llm.name}
        for key in ("kb_name", "engine", "search_mode", "prompt_template"):
            if getattr(request, key):
                meta[key] = getattr(request, key)
        if request.bilingual:
            meta["bilingual"] = True
        with self.db.session() as session:
            if not turn.conversation_id:
                turn.conversation_id = repo.create_conversation(session, fallback, request.mode).id
                turn.fallback_title = fallback
            elif repo.set_title_if(session, turn.conversation_id, fallback, ""):
                turn.fallback_title = fallback
            stored = repo.add_message(session, turn.conversation_id, "user", request.query, request.mode, meta)
        turn.user_message_id = stored.id
        return turn

    def _store_answer(
        self,
        ctx: ChatContext,
        turn: _Turn,
        answer: AnswerAccumulator,
        started: float,
        error: ErrorInfo | None,
    ) -> str:
        """Store the answer (partial and flagged incomplete when ``error``); returns its id ("" if not stored)."""
        if not turn.conversation_id:
            return ""
        meta: dict[str, Any] = {
            "mode": ctx.request.mode,
            "model": ctx.llm.name,
            "sources": answer.sources,
            "tools": answer.tools,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "usage": {"prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens},
            **ctx.meta,
        }
        if error is not None:
            meta.update(incomplete=True, error=error)
        try:
            stored = self.db.run(
                repo.add_message, turn.conversation_id, "assistant", answer.text, ctx.request.mode, meta
            )
        except AppError:
            # The conversation was deleted while the answer streamed; there is nothing to attach it to.
            logger.info("conversation %s vanished before its answer was stored", turn.conversation_id)
            return ""
        return stored.id

    # ---- titles --------------------------------------------------------------------------------

    def _start_title_task(self, ctx: ChatContext, turn: _Turn, exchange: Exchange) -> None:
        task = asyncio.create_task(self._write_title(ctx, exchange, turn.conversation_id, turn.fallback_title or ""))
        # Keep a reference until it ends, or the loop may drop the task half-way.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_title(self, ctx: ChatContext, exchange: Exchange, conversation_id: str, fallback: str) -> None:
        try:
            title = await model_title(ctx.llm, ctx.localized("title"), exchange, self.settings.chat.title_max_chars)
        except AppError as exc:
            logger.info("keeping the fallback title of %s: %s", conversation_id, exc.message)
            return
        if title:
            await anyio.to_thread.run_sync(self.db.run, repo.set_title_if, conversation_id, title, fallback)

    async def wait_background(self) -> None:
        """Wait for pending title tasks (used by tests and at shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

