"""Micro-batching of concurrent requests' texts onto one model thread, for the HTTP service.

A batch holds texts of unrelated requests, so it must not fail as a unit: when the batched model
call raises, every text of the batch is parsed again on its own and only the texts that fail
alone fail (their requests get that error; the others get their answers). Answers do not depend
on the batch either (see :mod:`distilnlu.deploy.backends`), so the retry changes nothing for the
texts that succeed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol

from distilnlu.errors import DistilNLUError

log = logging.getLogger("distilnlu.serve")


class ParsesTexts(Protocol):
    """What the batcher needs of a :class:`~distilnlu.deploy.parser.Parser`."""

    def parse(self, texts: list[str]) -> list[dict[str, Any]]: ...


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


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Batcher:
    """Micro-batching of concurrent ``parse`` calls onto one model thread.

    A batch closes at ``max_batch`` texts or ``max_wait_ms`` after its oldest text was queued,
    whichever is first; texts that queued while the model was busy go out at once. Counters:
    ``requests`` submitted, ``batches`` (model calls, failed ones included, the one-by-one
    retries not counted), ``texts`` parsed, ``failed_batches`` (model calls that raised; a
    batch's texts are then parsed one by one) and ``failed_texts`` (texts that failed alone).
    """

    def __init__(self, parser: ParsesTexts, max_batch: int, max_wait_ms: float) -> None:
        self.parser, self.max_batch, self.max_wait = parser, max_batch, max_wait_ms / 1000
        self.requests = self.batches = self.texts = 0
        self.failed_batches = self.failed_texts = 0
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
        """The parse results of ``texts``, in order, once every batch holding them has run.

        Raises what parsing one of the texts on its own raised (the first such text's error).
        """
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
            await self._fill(loop)
            taken = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            # A request whose client went away (future cancelled) or whose other texts already
            # failed needs no model time.
            batch = [e for e in taken if not e.request.future.done()]
            if not batch:
                continue
            try:
                await self._run(loop, batch)
            except Exception as exc:  # a bug here must not end the worker: all would then hang
                log.error("the batcher failed on %d texts", len(batch), exc_info=exc)
                for entry in batch:
                    self._fail(entry.request, exc)

    async def _fill(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a batch is full or its oldest text has waited ``max_wait``."""
        deadline = self._queue[0].queued_at + self.max_wait
        while len(self._queue) < self.max_batch and loop.time() < deadline:
            self._wakeup.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wakeup.wait()
            except TimeoutError:
                break

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        self.batches += 1
        self.texts += len(batch)
        self._running = batch
        try:
            texts = [e.text for e in batch]
            outcomes, failed = await loop.run_in_executor(self._executor, self._parse_each, texts)
        finally:
            self._running = []
        self.failed_batches += failed
        for entry, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.failed_texts += 1
                self._fail(entry.request, outcome)
            else:
                self._answer(entry, outcome)

    def _parse_each(self, texts: list[str]) -> tuple[list[Any], bool]:
        """On the model thread: a result or an exception per text, and whether the batched call
        failed (then each text of a batch was parsed alone)."""
        try:
            results = self.parser.parse(texts)
            if len(results) != len(texts):
                raise RuntimeError(f"parse gave {len(results)} results for {len(texts)} texts")
            return results, False
        except Exception as exc:
            if len(texts) == 1:
                self._log_failure(exc)
                return [exc], True
            log.warning(
                "a model call on %d texts failed (%s); parsing each alone",
                len(texts),
                _describe(exc),
            )
        return [self._parse_one(text) for text in texts], True

    def _parse_one(self, text: str) -> Any:
        try:
            (result,) = self.parser.parse([text])
        except Exception as exc:  # one bad text fails its own request, never the worker
            self._log_failure(exc)
            return exc
        return result

    @staticmethod
    def _log_failure(exc: Exception) -> None:
        if isinstance(exc, DistilNLUError):  # the text's fault: the client is told why
            log.warning("a text was refused by the model: %s", exc)
        else:  # a bug, or a broken model: keep the traceback
            log.error("the model failed on a text", exc_info=exc)

    @staticmethod
    def _answer(entry: _Entry, result: Any) -> None:
        request = entry.request
        if request.future.done():
            return
        request.results[entry.index] = result
        request.left -= 1
        if request.left == 0:
            request.future.set_result(request.results)

    @staticmethod
    def _fail(request: _Pending, exc: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(exc)
