"""The HTTP service: ``POST /v1/parse``, ``GET /health`` and a try-it page at ``GET /``.

Concurrent requests share model calls: a batcher queues their texts and runs one ``parse`` over
up to ``max_batch`` of them on a single worker thread. The event loop keeps accepting requests
while the model runs, and model calls never overlap (two at once on a CPU only fight for the
same cores). Every error, FastAPI's own included, is ``{"error": "<sentence>"}``: 413 for a body
over the byte cap, 422 for a well-formed body the service cannot take, 400 for one that is not
JSON at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from distilnlu.deploy.parser import Parser
from distilnlu.errors import ConfigError

log = logging.getLogger("distilnlu.serve")
USAGE = 'send {"text": "..."} or {"texts": ["...", ...]}'


@dataclass
class ServeSettings:
    """Request limits and batching. ``max_body_bytes`` defaults to the largest legal request:
    ``max_texts`` texts of ``max_chars`` characters, each written as a 12-byte JSON escape pair
    (the worst case), plus room for separators and whitespace."""

    max_chars: int = 1000
    max_texts: int = 64
    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_body_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_texts", "max_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_body_bytes is None:
            self.max_body_bytes = self.max_texts * (12 * self.max_chars + 16) + 4096
        elif self.max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be at least 1, got {self.max_body_bytes}")


class ServiceStopped(RuntimeError):
    """The batcher stopped (server shutdown) before a request was answered."""


@dataclass(slots=True)
class _Pending:
    """One request in flight: ``results`` fill in as the batches holding its texts finish."""

    future: asyncio.Future
    left: int
    results: list[Any]


@dataclass(slots=True)
class _Entry:
    request: _Pending
    index: int
    text: str
    queued_at: float


class Batcher:
    """Micro-batching of concurrent ``parse`` calls onto one model thread.

    A batch closes at ``max_batch`` texts or ``max_wait_ms`` after its oldest text was queued,
    whichever is first; texts that queued while the model was busy go out at once. Counters:
    ``requests`` submitted, ``batches`` (model calls, failed ones included), ``texts`` parsed.
    """

    def __init__(self, parser: Parser, max_batch: int, max_wait_ms: float) -> None:
        self.parser, self.max_batch, self.max_wait = parser, max_batch, max_wait_ms / 1000
        self.requests = self.batches = self.texts = self.failed_batches = 0
        self._queue: deque[_Entry] = deque()
        self._running: list[_Entry] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # Made here, not in __init__, so they belong to the loop that serves (a test client
        # may start the same app more than once, each time on a fresh loop).
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="distilnlu-model")
        self._task = asyncio.create_task(self._work(), name="distilnlu-batcher")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        for entry in [*self._running, *self._queue]:
            self._fail(entry.request, ServiceStopped("the service is stopping"))
        self._queue.clear()
        # A model call still running finishes on its thread; nothing waits for its answer.
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def parse(self, texts: list[str]) -> list[dict[str, Any]]:
        """The parse results of ``texts``, in order, once every batch holding them has run."""
        if self._task is None:
            raise ServiceStopped("the service is not running")
        loop = asyncio.get_running_loop()
        request = _Pending(loop.create_future(), len(texts), [None] * len(texts))
        now = loop.time()
        self._queue.extend(_Entry(request, i, t, now) for i, t in enumerate(texts))
        self.requests += 1
        self._wakeup.set()
        return await request.future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = self._queue[0].queued_at + self.max_wait
            while len(self._queue) < self.max_batch and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._wakeup.wait()
                except TimeoutError:
                    break
            taken = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            # A request whose client went away (future cancelled) or whose other texts already
            # failed needs no model time.
            batch = [e for e in taken if not e.request.future.done()]
            if batch:
                await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        self.batches += 1
        self.texts += len(batch)
        self._running = batch
        try:
            texts = [e.text for e in batch]
            results = await loop.run_in_executor(self._executor, self.parser.parse, texts)
            if len(results) != len(batch):
                raise RuntimeError(f"parse gave {len(results)} results for {len(batch)} texts")
        except Exception as exc:  # one bad call fails its own requests, never the worker
            self.failed_batches += 1
            log.exception("model call on %d texts failed", len(batch))
            for entry in batch:
                self._fail(entry.request, exc)
            return
        finally:
            self._running = []
        for entry, result in zip(batch, results, strict=True):
            request = entry.request
            if request.future.done():
                continue
            request.results[entry.index] = result
            request.left -= 1
            if request.left == 0:
                request.future.set_result(request.results)

    @staticmethod
    def _fail(request: _Pending, exc: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(exc)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string"}


def _kind(value: Any) -> str:
    """A JSON value's type, in JSON's words."""
    return _KINDS.get(type(value), "list" if isinstance(value, list) else "object")


def _check_text(where: str, text: Any, limit: int) -> str:
    if not isinstance(text, str):
        raise BadRequest(422, f"{where} must be a string, not a {_kind(text)}")
    if not text.strip():
        raise BadRequest(422, f"{where} is empty or only whitespace: there is nothing to parse")
    if len(text) > limit:
        raise BadRequest(422, f"{where} is {len(text)} characters long; the limit is {limit}")
    return text


def read_texts(payload: Any, settings: ServeSettings) -> tuple[list[str], bool]:
    """The texts of a parsed request body, and whether it was the single ``text`` form."""
    if not isinstance(payload, dict):
        raise BadRequest(422, f"the body must be a JSON object, not a {_kind(payload)}: {USAGE}")
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
        raise BadRequest(422, f"'texts' must be a list of strings, not a {_kind(texts)}")
    if not 1 <= len(texts) <= settings.max_texts:
        raise BadRequest(
            422, f"'texts' has {len(texts)} texts; give 1 to {settings.max_texts} per request"
        )
    return [_check_text(f"texts[{i}]", t, settings.max_chars) for i, t in enumerate(texts)], False


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to be over ``limit`` bytes: from the declared
    Content-Length before reading, and from the bytes themselves (a client may lie or stream)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the request body is {declared} bytes; the limit is {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, f"the request body is over the limit of {limit} bytes")
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
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(parser: Parser, settings: ServeSettings | None = None) -> FastAPI:
    """The service around ``parser``; its batcher runs while the app's lifespan does."""
    settings = settings or ServeSettings()
    batcher = Batcher(parser, settings.max_batch, settings.max_wait_ms)
    page = (resources.files("distilnlu.deploy") / "static" / "index.html").read_text("utf-8")
    slot_types = {tag[2:] for tag in parser.labels.slot_tags if tag != "O"}

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
            }
        )

    @app.post("/v1/parse")
    async def parse(request: Request) -> Response:
        try:
            body = await read_body(request, settings.max_body_bytes or 0)
            texts, single = read_texts(parse_json(body), settings)
        except BadRequest as exc:
            return error(exc.status, exc.message)
        try:
            results = await batcher.parse(texts)
        except ServiceStopped as exc:
            return error(503, f"{exc}; retry shortly")
        except Exception as exc:  # the model call failed; the exception is in the server's log
            return error(500, f"the model failed on this request ({type(exc).__name__}: {exc})")
        return JSONResponse({"result": results[0]} if single else {"results": results})

    return app


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

    parser = Parser.load(model_dir, backend=backend, threads=threads)
    app = create_app(parser, settings or ServeSettings())
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    print(f"Serving {parser.name} ({parser.backend} backend) at {url}  (Ctrl+C stops)", flush=True)
    # No access log: writing a line per request would cost more than a tiny model's parse.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
