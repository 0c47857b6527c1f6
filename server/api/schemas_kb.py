"""Request bodies of the knowledge-base API; responses are the manager's own models, or wrap them."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from configs.settings import CHUNK_OVERLAP_MAX, CHUNK_SIZE_MAX, CHUNK_SIZE_MIN, SearchMode
from server.errors import InvalidInput, validation_message
from server.knowledge_base.manager import FileResult, KBInfo
from server.limits import MAX_QUERY_CHARS


class CreateKBRequest(BaseModel):
    """Body of POST /kbs."""

    model_config = ConfigDict(strict=True, extra="forbid")
    name: str = Field(min_length=1, max_length=50)
    description: str = Field("", max_length=2000)
    embed_model: str | None = None
    vector_store: str | None = None


class SearchRequest(BaseModel):
    """Body of POST /kbs/{kb}/search."""

    model_config = ConfigDict(strict=True, extra="forbid")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int | None = Field(None, ge=1, le=100)
    score_threshold: float | None = Field(None, ge=0.0, le=1.0)
    mode: SearchMode | None = None
    file_name: str | None = None


class EvalRequest(BaseModel):
    """Body of POST /kbs/{kb}/eval: JSON Lines text of questions, each with "question" and "file" and/or
    "evidence" (see server/knowledge_base/evaluation.py)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    questions: str = Field(min_length=1, max_length=5_000_000)
    modes: list[SearchMode] = Field(default_factory=lambda: list(get_args(SearchMode)))
    rewrite: bool = Field(False, description="Also search each question with the hypothetical answer the chat "
                          "model writes (KB chat's rewrite_query); reported as '<mode> + rewrite'.")
    model: str | None = Field(None, description="The chat model that rewrites; default: the default model.")


class UpdateChunkRequest(BaseModel):
    """Body of PUT /kbs/{kb}/chunks/{doc_id}."""

    model_config = ConfigDict(strict=True, extra="forbid")
    text: str = Field(min_length=1, max_length=100000)


class UploadOptions(BaseModel):
    """Form fields of POST /kbs/{kb}/files next to the 'files' parts."""

    override: bool = False
    chunk_size: int | None = Field(None, ge=CHUNK_SIZE_MIN, le=CHUNK_SIZE_MAX)
    chunk_overlap: int | None = Field(None, ge=0, le=CHUNK_OVERLAP_MAX)
    to_vector_store: bool = True
    ocr: bool | None = Field(None, description="Read pictures and scanned pages by OCR; empty follows kb.ocr.")
    stream: bool = False

    @field_validator("chunk_size", "chunk_overlap", "ocr", mode="before")
    @classmethod
    def _blank_is_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def from_form(cls, fields: dict[str, str]) -> "UploadOptions":
        """Validate form fields; a bad value is a 422 naming the field."""
        known = {k: v for k, v in fields.items() if k in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            raise InvalidInput(f"bad upload parameters: {validation_message(exc)}") from exc


class UploadResults(BaseModel):
    """Answer of POST /kbs/{kb}/files without stream: each file's outcome and the knowledge base after."""

    results: list[FileResult]
    kb: KBInfo


class EvalReports(BaseModel):
    """Answer of POST /kbs/{kb}/eval: one report per search mode (see server/knowledge_base/evaluation.py)."""

    reports: list[dict[str, Any]]
