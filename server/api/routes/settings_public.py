"""GET /settings/public: the defaults and choices the WebUI and other clients offer (no secrets)."""

from __future__ import annotations

from typing import get_args

import anyio
from fastapi import APIRouter

from configs.prompts import templates_by_mode
from configs.settings import SearchMode
from server.api.deps import ServicesDep
from server.api.schemas_settings import EmbedModelInfo, ModelInfo, PublicSettings
from server.chat.rewrite import rewrites_by_default
from server.chat.schemas import CHAT_MODES
from server.errors import AppError
from server.limits import MAX_QUERY_CHARS
from server.services import Services

router = APIRouter(tags=["settings"])


async def _default_prompt_speed(services: Services) -> float | None:
    try:
        return await services.llms.get().prompt_speed()
    except AppError:
        return None  # a misconfigured default model is reported when it is used


@router.get("/settings/public", response_model=PublicSettings)
async def public_settings(services: ServicesDep) -> PublicSettings:
    """Models, knowledge bases, templates and the chat and retrieval defaults."""
    settings = services.settings
    kb, chat, search = settings.kb, settings.chat, settings.chat.search
    kbs = await anyio.to_thread.run_sync(services.kb.list_kbs)
    templates = services.chat.template_names()
    models = [ModelInfo.model_validate(m) for m in services.llms.describe()]
    default = next((m for m in models if m.default), None)
    prompt_speed = await _default_prompt_speed(services) if default and default.builtin else None
    return PublicSettings(
        models=models,
        default_model=services.llms.default_name,
        modes=list(CHAT_MODES),
        kbs=kbs,
        prompt_templates=templates,
        prompt_templates_by_mode=templates_by_mode(templates),
        top_k=kb.top_k,
        kb_passages=chat.kb_passages,
        max_query_chars=MAX_QUERY_CHARS,
        rewrite_query=rewrites_by_default(settings, default.builtin if default else None, prompt_speed),
        prompt_speed=prompt_speed,
        refuse_unsupported=chat.refuse_unsupported,
        score_threshold=kb.score_threshold,
        score_thresholds={name: cfg.score_threshold for name, cfg in kb.embed_models.items()},
        embed_models={
            name: EmbedModelInfo(kind=cfg.kind, score_threshold=cfg.score_threshold)
            for name, cfg in kb.embed_models.items()
        },
        default_embed_model=kb.default_embed_model,
        vector_stores=services.kb.vector_store_kinds(),
        default_vector_store=kb.default_vector_store,
        search_modes=list(get_args(SearchMode)),
        default_search_mode=kb.search_mode,
        engines=services.chat.engines.names,
        default_engine=search.default_engine,
        result_count=search.result_count,
        history_turns=chat.history_turns,
        temperature=settings.llm.temperature,
        kb_temperature=settings.llm.kb_temperature,
        chunk_size=kb.chunk_size,
        chunk_overlap=kb.chunk_overlap,
        chunk_unit=kb.chunk_unit,
        max_upload_mb=kb.max_upload_mb,
        ocr=kb.ocr,
        agent_max_steps=chat.agent_max_steps,
    )
