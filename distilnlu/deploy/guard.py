"""uvicorn's HTTP/1.1 protocol with a deadline on clients that stall outside the application.

uvicorn 0.54 (h11) times out only idle keep-alive connections, and only once a response has been
sent (``timeout_keep_alive``). A connection that sends nothing, or part of its headers, or that
keeps trickling a body nobody reads after its response went out, is held forever: a few thousand
of them exhaust file descriptors and memory. Its other limits do not help: ``limit_concurrency``
answers 503 to *new* requests once that many connections are open, so stalled clients would lock
good ones out, and ``h11_max_incomplete_event_size`` (16 KiB by default, kept) caps the size of
the headers, not the time they take.

:class:`GuardedH11Protocol` closes a connection that has kept the server waiting for
``stall_timeout_s`` seconds while no application code is running for it: waiting for a
request's headers (from the moment the connection opened or the previous response was sent), or
for the rest of a body after the application has already answered. While the application runs,
the application's own deadline on reading the body applies (``read_body`` in ``serve.py``: a
408 reply, then the connection is closed).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` plus the stall deadline of the module docstring."""

    stall_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_on_client(self) -> bool:
        """True while only the client can move this connection on and no application code is
        running for it."""
        state = self.conn.their_state
        if state is h11.IDLE:  # no request yet, or its headers are not complete
            return True
        answered = self.cycle is not None and self.cycle.response_complete
        return state is h11.SEND_BODY and answered  # uvicorn is discarding an unread body

    def _watch(self) -> None:
        closing = self.transport is None or self.transport.is_closing()
        if closing or not self._waiting_on_client():
            self._disarm()
        elif self._stall is None:  # one deadline per wait: trickling bytes do not extend it
            self._stall = self.loop.call_later(self.stall_timeout_s, self._close_stalled)

    def _disarm(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _close_stalled(self) -> None:
        self._stall = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(stall_timeout_s: float) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with this deadline, for ``uvicorn.Config(http=...)``
    (uvicorn builds the protocol itself, so the setting travels on the class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"stall_timeout_s": stall_timeout_s})
