"""The body of GET /settings/public: defaults and choices a client offers (no secrets)."""

from __future__ import annotations

from pydantic import BaseModel

from configs.settings import SearchMode
from server.chat.schemas import ChatMode
from server.knowledge_base.manager import KBInfo


class ModelInfo(BaseModel):
    """A configured chat model (see LLMRegistry.describe)."""

    name: str
    kind: str
    builtin: str | None = None
    default: bool = False
    context_window: int
    supports_tools: bool = False


class EmbedModelInfo(BaseModel):
    kind: str
    score_threshold: float


class PublicSettings(BaseModel):
    models: list[ModelInfo]
    default_model: str
    modes: list[ChatMode]
    kbs: list[KBInfo]
    prompt_templates: list[str]
    prompt_templates_by_mode: dict[str, list[str]]
    top_k: int
    kb_passages: int
    max_query_chars: int
    rewrite_query: bool
    # Prompt tokens/s the default built-in model read when its server started; None when unknown or not built in.
    prompt_speed: float | None = None
    refuse_unsupported: bool
    score_threshold: float | None
    score_thresholds: dict[str, float]
    embed_models: dict[str, EmbedModelInfo]
    default_embed_model: str
    vector_stores: list[str]
    default_vector_store: str
    search_modes: list[SearchMode]
    default_search_mode: SearchMode
    engines: list[str]
    default_engine: str
    result_count: int
    history_turns: int
    temperature: float
    kb_temperature: float
    chunk_size: int
    chunk_overlap: int
    chunk_unit: str
    max_upload_mb: int
    ocr: bool = True
    agent_max_steps: int
