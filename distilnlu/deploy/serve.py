"""The HTTP service: ``POST /v1/parse``, ``GET /health`` and a try-it page at ``GET /``.

Concurrent requests share model calls: a batcher (:mod:`distilnlu.deploy.batcher`) queues their
texts and runs one ``parse`` over up to ``max_batch`` of them on a single worker thread. The event
loop keeps accepting requests while the model runs, and model calls never overlap (two at once on
a CPU only fight for the same cores). Every text is checked before it is queued
(:func:`~distilnlu.deploy.texts.check_text`), and a batch whose model call fails anyway is parsed
again text by text, so one bad text fails only its own request.

Every error, FastAPI's own included, is ``{"error": "<sentence>"}``: 400 for a body that is not
JSON at all, 408 for a body that did not arrive within ``read_timeout_s`` (the connection is then
closed), 413 for a body over the byte cap, 422 for a well-formed body the service cannot take.
Connections that stall before the application runs are closed by :mod:`distilnlu.deploy.guard`.
A client that goes away mid-body is one log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from distilnlu.deploy.batcher import Batcher, ServiceStopped
from distilnlu.deploy.parser import Parser
from distilnlu.deploy.texts import check_text, json_kind
from distilnlu.errors import ConfigError, DataError, DistilNLUError

if TYPE_CHECKING:
    import uvicorn

__all__ = ["Batcher", "ServeSettings", "ServiceStopped", "create_app", "run_server"]

log = logging.getLogger("distilnlu.serve")
USAGE = 'send {"text": "..."} or {"texts": ["...", ...]}'


@dataclass
class ServeSettings:
    """Request limits, timeouts and batching. ``max_body_bytes`` defaults to the largest legal
    request: ``max_texts`` texts of ``max_chars`` characters, each written as a 12-byte JSON
    escape pair (the worst case), plus room for separators and whitespace. ``read_timeout_s``
    bounds how long a client may take to send a request's headers, and then its body."""

    max_chars: int = 1000
    max_texts: int = 64
    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_body_bytes: int | None = None
    read_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_texts", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if not self.read_timeout_s > 0:
            raise ConfigError(f"read_timeout_s must be more than 0, got {self.read_timeout_s}")
        if self.max_body_bytes is None:
            self.max_body_bytes = self.max_texts * (12 * self.max_chars + 16) + 4096
        elif self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")


class BadRequest(Exception):
    """A request refused with ``status``; ``close``: close the connection after the answer."""

    def __init__(self, status: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


class ClientGone(Exception):
    """The client closed the connection before its whole body arrived."""

    def __init__(self, received: int) -> None:
        super().__init__(f"after {received} body bytes")
        self.received = received


def _check_text(where: str, text: Any, limit: int) -> str:
    try:
        return check_text(text, where, limit)
    except DataError as exc:
        raise BadRequest(422, str(exc)) from None


def read_texts(payload: Any, settings: ServeSettings) -> tuple[list[str], bool]:
    """The texts of a parsed request body, and whether it was the single ``text`` form."""
    if not isinstance(payload, dict):
        kind = json_kind(payload)
        raise BadRequest(422, f"the body must be a JSON object, not a {kind}: {USAGE}")
    extra = sorted(set(payload) - {"text", "texts"})
    if extra:
        names = ", ".join(repr(k) for k in extra)
        raise BadRequest(422, f"unknown key{'s' * (len(extra) > 1)} {names}: {USAGE}")
    if "text" in payload and "texts" in payload:
        raise BadRequest(422, f"give 'text' or 'texts', not both: {USAGE}")
    if "text" in payload:
        return [_check_text("'text'", payload["text"], settings.max_chars)], True
    if "texts" not in payload:
        raise BadRequest(422, f"the body has neither 'text' nor 'texts': {USAGE}")
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f"'texts' must be a list of strings, not a {json_kind(texts)}")
    if not 1 <= len(texts) <= settings.max_texts:
        raise BadRequest(
            422, f"'texts' has {len(texts)} texts; give 1 to {settings.max_texts} per request"
        )
    return [_check_text(f"texts[{i}]", t, settings.max_chars) for i, t in enumerate(texts)], False


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it is known to be over ``limit`` bytes: from the declared
    Content-Length before reading, and from the bytes themselves (a client may lie or stream).

    The whole body must arrive within ``timeout_s`` (a total, so a client trickling a byte at a
    time is cut off too): else 408, and the connection is closed, since what the client sends
    next could not be told apart from the rest of this body. Raises :class:`ClientGone` when
    the client disconnects first.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the request body is {declared} bytes; the limit is {limit} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise BadRequest(413, f"the request body is over the limit of {limit} bytes")
    except TimeoutError:
        raise BadRequest(
            408,
            f"the request body did not arrive within {timeout_s:g} s ({len(body)} bytes came);"
            " send the whole body at once",
            close=True,
        ) from None
    except ClientDisconnect:
        raise ClientGone(len(body)) from None
    return bytes(body)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest(400, f"the request body is empty: {USAGE}")
    try:
        return json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are ValueErrors
        raise BadRequest(400, f"the request body is not valid JSON ({exc}): {USAGE}") from None
    except RecursionError:
        raise BadRequest(400, "the request body is JSON nested too deeply to read") from None


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    # A message may quote the client's text; one that is not valid Unicode could not be encoded.
    # An exception's message may span lines; an error is one line.
    safe = " ".join(message.encode("utf-8", "backslashreplace").decode("utf-8").splitlines())
    return JSONResponse({"error": safe}, status_code=status, headers=headers)


def create_app(parser: Parser, settings: ServeSettings | None = None) -> FastAPI:
    """The service around ``parser``; its batcher runs while the app's lifespan does."""
    settings = settings or ServeSettings()
    if settings.max_chars > parser.max_chars:
        raise ConfigError(
            f"max_chars {settings.max_chars} is over the parser's limit of {parser.max_chars}"
            " characters; load the parser with Parser.load(..., max_chars=...)"
        )
    batcher = Batcher(parser, settings.max_batch, settings.max_wait_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    # No generated docs: the parse body is read by hand (for the byte cap and plain-sentence
    # errors), so an OpenAPI schema would describe nothing useful.
    app = FastAPI(
        title="distilnlu", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.batcher = batcher
    _add_error_handlers(app)
    _add_pages(app, parser, settings, batcher)

    @app.post("/v1/parse")
    async def parse(request: Request) -> Response:
        return await answer_parse(request, settings, batcher)

    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = (
                f"no such path: {request.method} {request.url.path}; the service answers"
                " POST /v1/parse, GET /health and GET /"
            )
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "another method")
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        else:
            message = str(exc.detail)
        return error(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error(422, f"invalid request ({problems})")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        return error(500, f"internal error ({type(exc).__name__}); see the server's log")


def _add_pages(app: FastAPI, parser: Parser, settings: ServeSettings, batcher: Batcher) -> None:
    page = (resources.files("distilnlu.deploy") / "static" / "index.html").read_text("utf-8")
    slot_types = {tag[2:] for tag in parser.labels.slot_tags if tag != "O"}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> Response:
        return HTMLResponse(page)

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "model": parser.name,
                "backend": parser.backend,
                "intents": len(parser.labels.intents),
                "slot_types": len(slot_types),
                "max_chars": settings.max_chars,
                "max_texts": settings.max_texts,
                "max_batch": settings.max_batch,
                "requests": batcher.requests,
                "batches": batcher.batches,
                "texts": batcher.texts,
                "failed_batches": batcher.failed_batches,
                "failed_texts": batcher.failed_texts,
            }
        )


async def answer_parse(request: Request, settings: ServeSettings, batcher: Batcher) -> Response:
    """``POST /v1/parse``: read and check the body, then parse its texts in shared batches."""
    try:
        body = await read_body(request, settings.max_body_bytes or 0, settings.read_timeout_s)
        texts, single = read_texts(parse_json(body), settings)
    except BadRequest as exc:
        return error(exc.status, exc.message, {"connection": "close"} if exc.close else None)
    except ClientGone as gone:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.warning("%s went away before sending its whole body (%s)", client, gone)
        return Response(status_code=400)  # nobody reads it: uvicorn drops it
    try:
        results = await batcher.parse(texts)
    except ServiceStopped as exc:
        return error(503, f"{exc}; retry shortly")
    except DistilNLUError as exc:  # the parser refused a text the checks above let through
        return error(422, str(exc))
    except Exception as exc:  # the model failed on one of these texts; the traceback is logged
        return error(500, f"the model failed on this request ({type(exc).__name__}: {exc})")
    return JSONResponse({"result": results[0]} if single else {"results": results})


def server_config(
    app: FastAPI, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8080
) -> uvicorn.Config:
    """How ``serve`` runs ``app`` under uvicorn (the tests start servers with the same):
    HTTP/1.1 by h11 with the stall deadline of :mod:`distilnlu.deploy.guard`, uvicorn's own
    keep-alive timeout (5 s) and header size cap (16 KiB), and no access log (a line per
    request would cost more than a tiny model's parse)."""
    import uvicorn

    from distilnlu.deploy.guard import guarded_protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings.read_timeout_s),
        log_level="warning",
        access_log=False,
    )


def _log_to_stderr() -> None:
    """Our warnings as one ``LEVEL:  message`` line each, like uvicorn's own."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:  %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False


def run_server(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    backend: str = "auto",
    threads: int | None = None,
    settings: ServeSettings | None = None,
) -> None:
    """Load the model and serve it until interrupted."""
    import uvicorn

    settings = settings or ServeSettings()
    parser = Parser.load(model_dir, backend=backend, threads=threads, max_chars=settings.max_chars)
    app = create_app(parser, settings)
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    print(f"Serving {parser.name} ({parser.backend} backend) at {url}  (Ctrl+C stops)", flush=True)
    _log_to_stderr()
    uvicorn.Server(server_config(app, settings, host, port)).run()
