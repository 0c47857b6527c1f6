"""The FastAPI application: create_app(settings) builds services once and mounts the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request, Response

from configs import Settings, load_settings
from server.api.errors import ERROR_RESPONSES, error_response, install_error_handlers
from server.api.routes import chat, conversations, health, kb, openai_compat, settings_public, ws
from server.auth import check_access, check_browser
from server.errors import AppError, UnsupportedMediaType
from server.knowledge_base.embeddings import use_sleeping_openmp_threads
from server.knowledge_base.maintenance import reconcile_all
from server.services import Services, build_services

logger = logging.getLogger(__name__)

# Route modules, each exposing `router`.
ROUTE_MODULES = (health, kb, openai_compat, ws, chat, conversations, settings_public)
# Paths anyone may call, even without the API key.
PUBLIC_PATHS = {"/health"}


BODY_METHODS = {"POST", "PUT", "PATCH"}
# Seconds the shutdown waits for conversation titles still being written.
SHUTDOWN_WAIT_SECONDS = 10.0


def check_body_type(request: Request) -> None:
    """A request body must be JSON or a multipart upload: text/plain and form-encoded bodies are what a web
    page may send to another site without asking first, so they are refused (415)."""
    if request.method not in BODY_METHODS:
        return
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if has_body and not (media == "application/json" or media.endswith("+json") or media == "multipart/form-data"):
        raise UnsupportedMediaType(f"send the body as application/json (or multipart/form-data for uploads), "
                                   f"not {media or 'no content type'}", code="unsupported_media_type")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the API app; services are created here unless passed in (tests)."""
    settings = settings or (services.settings if services else load_settings())
    owned = services is None
    use_sleeping_openmp_threads()

    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # An interrupted write (a killed process) may have left the index and the database apart.
        await anyio.to_thread.run_sync(reconcile_all, services.kb)
        # In a worker thread: otherwise the first chat would import the model SDK inside the event loop.
        await anyio.to_thread.run_sync(services.llms.warm_up)
        yield
        # Titles still being written (for a while at most), then the models' connections.
        with anyio.move_on_after(SHUTDOWN_WAIT_SECONDS):
            await services.chat.wait_background()
        await services.llms.aclose()
        if owned:
            services.close()

    app = FastAPI(title="kbchat API", version="0.1.0", lifespan=lifespan, responses=ERROR_RESPONSES)
    app.state.services = services
    app.state.settings = settings

    @app.middleware("http")
    async def _auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path not in PUBLIC_PATHS and request.scope.get("type") == "http":
            try:
                check_access(
                    settings,
                    request.headers.get("authorization"),
                    request.client.host if request.client else None,
                )
                check_browser(settings, request.headers.get("origin"), request.headers.get("host"))
                check_body_type(request)
            except AppError as exc:
                return error_response(exc)
        return await call_next(request)

    install_error_handlers(app)

    for module in ROUTE_MODULES:
        app.include_router(module.router)
    return app
