"""Knowledge-base routes: knowledge bases, files, chunks, search and rebuild; they only do HTTP."""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from server.api.deps import ServicesDep
from server.api.schemas_kb import (
    CreateKBRequest,
    EvalReports,
    EvalRequest,
    SearchRequest,
    UpdateChunkRequest,
    UploadOptions,
    UploadResults,
)
from server.api.transport import SSE_CONTENT, SSE_DONE, SSE_MEDIA_TYPE, sse, sse_response_doc
from server.api.uploads import multipart_openapi, read_settings_upload
from server.chat.rewrite import require_rewrites, search_texts
from server.errors import AppError, InvalidInput
from server.knowledge_base.evaluation import evaluate_kb, parse_questions
from server.knowledge_base.manager import ChunkInfo, FileInfo, FileResult, KBInfo, ProgressEvent, SearchHit

logger = logging.getLogger(__name__)
router = APIRouter(tags=["knowledge bases"])
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

PROGRESS_DOC = "Progress events as server-sent events (a final result or error event, then `data: [DONE]`)."
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The results as JSON, or with stream=true " + PROGRESS_DOC[0].lower() + PROGRESS_DOC[1:],
        "content": SSE_CONTENT,
    }
}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The stored file, with the media type of its extension.", "content": {"*/*": {"schema": {
        "type": "string", "format": "binary"}}}},
}


# KB page and API evaluation with rewriting: the model writes an answer for each question, seconds apiece.
MAX_REWRITTEN_QUESTIONS = 200


async def _run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def _progress_stream(job: Callable[[Callable[[ProgressEvent], None]], T], final: Callable[[T], dict[str, Any] | None],
                     cleanup: Callable[[], None] | None = None) -> StreamingResponse:
    """Run a progress-reporting job in a thread and stream its events as SSE, then [DONE].

    The job keeps running to the end if the client goes away, and cleanup runs after it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def report(event: ProgressEvent) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("event", event))

    async def worker() -> None:
        try:
            queue.put_nowait(("result", await anyio.to_thread.run_sync(job, report)))
        except AppError as exc:
            queue.put_nowait(("error", exc))
        except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
            logger.exception("streamed knowledge-base job failed")
            queue.put_nowait(("error", AppError(f"internal error: {type(exc).__name__}")))
        finally:
            if cleanup:
                cleanup()

    task = loop.create_task(worker())

    async def events() -> AsyncIterator[str]:
        _ = task  # keep a reference so the job is not garbage-collected mid-run
        while True:
            kind, payload = await queue.get()
            if kind == "event":
                yield sse(payload.model_dump_json())
                continue
            if kind == "result":
                last = final(payload)
                if last is not None:
                    yield sse(last)
            else:
                yield sse({"stage": "error", "code": payload.code, "message": payload.message})
            yield SSE_DONE
            return

    return StreamingResponse(events(), media_type=SSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get("/kbs", response_model=list[KBInfo])
async def list_kbs(services: ServicesDep) -> list[KBInfo]:
    """List knowledge bases with their file and chunk counts."""
    return await _run(services.kb.list_kbs)


@router.post("/kbs", response_model=KBInfo, status_code=201)
async def create_kb(body: CreateKBRequest, services: ServicesDep) -> KBInfo:
    """Create an empty knowledge base."""
    return await _run(services.kb.create_kb, body.name, body.description, body.embed_model, body.vector_store)


@router.get("/kbs/{kb}", response_model=KBInfo)
async def get_kb(kb: str, services: ServicesDep) -> KBInfo:
    """Describe one knowledge base."""
    return await _run(services.kb.get_kb, kb)


@router.delete("/kbs/{kb}", status_code=204, response_class=Response)
async def delete_kb(kb: str, services: ServicesDep) -> None:
    """Delete a knowledge base with its files and index."""
    await _run(services.kb.delete_kb, kb)


@router.get("/kbs/{kb}/files", response_model=list[FileInfo])
async def list_files(kb: str, services: ServicesDep) -> list[FileInfo]:
    """List the files of a knowledge base and their ingestion state."""
    return await _run(services.kb.list_files, kb)


@router.post("/kbs/{kb}/files", response_model=UploadResults, responses=UPLOAD_RESPONSES,
             openapi_extra=multipart_openapi(UploadOptions))
async def upload_files(kb: str, request: Request, services: ServicesDep) -> Response | UploadResults:
    """Upload files (multipart 'files') and ingest them; stream=true reports progress as SSE."""
    manager = services.kb
    await _run(manager.get_kb, kb)
    upload = await read_settings_upload(request, services.settings)
    handed_over = False
    try:
        options = UploadOptions.from_form(upload.fields)
        await _run(manager.check_upload, kb, upload.file_names, options.chunk_size, options.chunk_overlap)
        ingest = partial(manager.add_files, kb, upload.files, override=options.override,
                         chunk_size=options.chunk_size, chunk_overlap=options.chunk_overlap,
                         to_vector_store=options.to_vector_store, ocr=options.ocr)
        if options.stream:
            def final(results: list[FileResult]) -> dict[str, Any]:
                return {"stage": "result", "results": [r.model_dump() for r in results]}

            response = _progress_stream(lambda report: ingest(progress=report), final, upload.cleanup)
            handed_over = True  # the stream's worker cleans up once ingestion ends
            return response
        results = await _run(ingest)
        _refuse_if_nothing_added(results)
        return UploadResults(results=results, kb=await _run(manager.get_kb, kb))
    finally:
        if not handed_over:
            upload.cleanup()


def _refuse_if_nothing_added(results: list[FileResult]) -> None:
    """An upload whose every file failed is an error reply (its code, or upload_failed when the files' codes
    differ); one with some files added is a 200 that lists the failures among its results."""
    if not results or any(r.status != "error" for r in results):
        return
    codes = {r.code for r in results}
    message = "no file was added: " + "; ".join(f"{r.file_name}: {r.error}" for r in results)
    if AppError.code in codes:
        raise AppError(message)  # a failure on our side (a full disk, say), not in the files
    raise InvalidInput(message, code=codes.pop() if len(codes) == 1 else "upload_failed")


@router.delete("/kbs/{kb}/files/{file_name}", status_code=204, response_class=Response)
async def delete_file(kb: str, file_name: str, services: ServicesDep, delete_content: bool = False) -> None:
    """Remove a file's chunks and record; delete_content=true also deletes the file."""
    await _run(services.kb.delete_file, kb, file_name, delete_content)


@router.post("/kbs/{kb}/files/{file_name}/reingest", response_model=FileResult)
async def reingest_file(kb: str, file_name: str, services: ServicesDep) -> FileResult:
    """Load, split and index a file of content/ again."""
    return await _run(services.kb.reingest_file, kb, file_name)


@router.get("/kbs/{kb}/files/{file_name}/download", response_class=FileResponse, responses=DOWNLOAD_RESPONSES)
async def download_file(kb: str, file_name: str, services: ServicesDep) -> FileResponse:
    """Return the stored file."""
    path = await _run(services.kb.file_path, kb, file_name)
    return FileResponse(path, filename=file_name)


@router.get("/kbs/{kb}/files/{file_name}/chunks", response_model=list[ChunkInfo])
async def list_chunks(kb: str, file_name: str, services: ServicesDep) -> list[ChunkInfo]:
    """List a file's chunks in order."""
    return await _run(services.kb.list_chunks, kb, file_name)


@router.put("/kbs/{kb}/chunks/{doc_id}", response_model=ChunkInfo)
async def update_chunk(kb: str, doc_id: str, body: UpdateChunkRequest, services: ServicesDep) -> ChunkInfo:
    """Edit a chunk's text; it is embedded again."""
    return await _run(services.kb.update_chunk, kb, doc_id, body.text)


@router.delete("/kbs/{kb}/chunks/{doc_id}", status_code=204, response_class=Response)
async def delete_chunk(kb: str, doc_id: str, services: ServicesDep) -> None:
    """Delete one chunk."""
    await _run(services.kb.delete_chunk, kb, doc_id)


@router.post("/kbs/{kb}/search", response_model=list[SearchHit])
async def search(kb: str, body: SearchRequest, services: ServicesDep) -> list[SearchHit]:
    """Retrieve the chunks best matching a query (vector, bm25 or hybrid)."""
    return await _run(services.kb.search, kb, body.query, top_k=body.top_k, score_threshold=body.score_threshold,
                      mode=body.mode, file_name=body.file_name)


@router.post("/kbs/{kb}/eval", response_model=EvalReports)
async def evaluate(kb: str, body: EvalRequest, services: ServicesDep) -> EvalReports:
    """Score retrieval on your own questions: hit@1/3/5/10, MRR@10 and latency per search mode."""
    questions = parse_questions(body.questions.splitlines())
    if body.rewrite and len(questions) > MAX_REWRITTEN_QUESTIONS:
        raise InvalidInput(f"with rewrite, at most {MAX_REWRITTEN_QUESTIONS} questions are evaluated at once "
                           f"(the file holds {len(questions)}): the model writes an answer for each")
    reports = await _run(evaluate_kb, services.kb, kb, questions, body.modes)
    if body.rewrite:
        model = services.llms.get(body.model)
        rewritten, seconds = await search_texts(services.settings, model, [q.question for q in questions])
        require_rewrites(rewritten, body.model or services.llms.default_name)
        more = await _run(evaluate_kb, services.kb, kb, questions, body.modes, rewritten)
        for report in more:
            report["rewrite_s_p50"] = round(statistics.median(seconds), 2)
        reports += more
    return EvalReports(reports=reports)


@router.post("/kbs/{kb}/rebuild", response_class=StreamingResponse, responses=sse_response_doc(PROGRESS_DOC))
async def rebuild(kb: str, services: ServicesDep) -> StreamingResponse:
    """Recreate the vector store from content/, streaming progress as SSE."""
    await _run(services.kb.get_kb, kb)
    return _progress_stream(lambda report: services.kb.rebuild(kb, report), lambda _results: None)
