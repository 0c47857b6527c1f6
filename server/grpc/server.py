"""The gRPC server: service Chat of chat.proto over grpc.aio, guarded like the HTTP API.

Run it with ``python -m server.grpc.server`` (``kbchat start --grpc`` does); it
listens on settings.server.host:settings.server.grpc_port.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from configs import Settings, load_settings
from server.api.transport import event_dict
from server.auth import check_access
from server.chat.schemas import ChatRequest
from server.errors import AppError, ServiceUnavailable, validation_message
from server.grpc import chat_pb2, chat_pb2_grpc
from server.grpc.convert import event_message, request_fields
from server.logs import configure_logging
from server.knowledge_base.embeddings import use_sleeping_openmp_threads
from server.knowledge_base.maintenance import reconcile_all
from server.services import Services, build_services

logger = logging.getLogger(__name__)

# Seconds running calls get to finish when the server is asked to stop.
STOP_GRACE_SECONDS = 5.0


def peer_host(peer: str | None) -> str | None:
    """The client address in a gRPC peer string such as 'ipv4:127.0.0.1:5000' or 'ipv6:[::1]:5000'."""
    if not peer:
        return None
    kind, _, rest = unquote(peer).partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    if kind in ("unix", "unix-abstract"):
        # A Unix socket is reachable from this machine only.
        return "localhost"
    return None


def _metadata_value(context: grpc.aio.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name.lower() == key:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call that server.auth.check_access refuses, with status UNAUTHENTICATED."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        try:
            check_access(self._settings, _metadata_value(context, "authorization"), peer_host(context.peer()))
        except AppError as exc:
            logger.warning("gRPC call from %s refused: %s", context.peer(), exc.message)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)

    async def _admit(self, request: object, context: grpc.aio.ServicerContext) -> None:
        await self._authorize(context)
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid message: {request.reason}")

    def _guard(self, behavior: Callable[..., Any], response_streaming: bool) -> Callable[..., Any]:
        if response_streaming:

            async def guarded_stream(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[object]:
                await self._admit(request, context)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    # A handler that writes its responses with context.write().
                    await result

            return guarded_stream

        async def guarded(request: object, context: grpc.aio.ServicerContext) -> object:
            await self._admit(request, context)
            return await behavior(request, context)

        return guarded

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        kind = ("stream" if handler.request_streaming else "unary") + "_" + (
            "stream" if handler.response_streaming else "unary"
        )
        return handler._replace(
            request_deserializer=_tolerant(handler.request_deserializer),
            **{kind: self._guard(getattr(handler, kind), handler.response_streaming)},
        )


@dataclass(frozen=True)
class Malformed:
    """Stands for a request whose bytes did not parse, so the call can end with INVALID_ARGUMENT."""

    reason: str


def _tolerant(deserialize: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> object:
        try:
            return deserialize(data)
        except DecodeError as exc:
            return Malformed(str(exc))

    return parse


class ChatServicer(chat_pb2_grpc.ChatServicer):
    """Answers Ask calls with the events of ChatServices.run."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def Ask(  # noqa: N802 - the method name is the proto's
        self, request: chat_pb2.AskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.AskEvent]:
        try:
            chat_request = ChatRequest(**request_fields(request))
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, validation_message(exc))
        # aclosing makes a cancelled call close the chat stream, which stores the partial answer.
        async with aclosing(self._services.chat.run(chat_request)) as events:
            async for event in events:
                yield event_message(event_dict(event))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(settings: Settings, services: Services, port: int | None = None) -> grpc.aio.Server:
    """Start the Chat service on settings.server.host and ``port`` (default settings.server.grpc_port)."""
    server = grpc.aio.server(interceptors=[AuthInterceptor(settings)])
    chat_pb2_grpc.add_ChatServicer_to_server(ChatServicer(services), server)
    address = _address(settings.server.host, settings.server.grpc_port if port is None else port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ServiceUnavailable(f"gRPC server cannot listen on {address}: {exc}") from exc
    if not bound:
        raise ServiceUnavailable(f"gRPC server cannot listen on {address}: is the port in use?")
    await server.start()
    logger.info("gRPC chat service listening on %s", address)
    return server


async def _serve_until_signalled(settings: Settings, services: Services) -> None:
    server = await serve(settings, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("gRPC chat service stopping")
    await server.stop(STOP_GRACE_SECONDS)
    # Titles being written for the last answers are stored before the model clients close.
    await services.chat.wait_background()
    await services.llms.aclose()


def serve_forever(settings: Settings) -> None:
    """Build the services and serve until SIGINT or SIGTERM."""
    services = build_services(settings)
    reconcile_all(services.kb)  # like the HTTP app's start-up
    services.llms.warm_up()  # before the event loop runs, like the HTTP app's start-up
    try:
        asyncio.run(_serve_until_signalled(settings, services))
    finally:
        services.close()


def main() -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    use_sleeping_openmp_threads()
    try:
        serve_forever(settings)
    except AppError as exc:
        logger.error("%s", exc.message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
