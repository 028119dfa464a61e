"""A real uvicorn server in a thread of the test process, configured as ``serve`` configures it
(:func:`~distilnlu.deploy.serve.server_config`): for tests that need real sockets and timeouts
but not a separate process."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from distilnlu.deploy.serve import ServeSettings, server_config


@contextmanager
def live_server(app: FastAPI, settings: ServeSettings) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of ``app`` served by uvicorn until the block ends."""
    server = uvicorn.Server(server_config(app, settings, port=0))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound here, so the port is known before the server starts
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class Records(logging.Handler):
    """Every record of the loggers it is attached to (uvicorn's do not reach pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@contextmanager
def recorded_logs(*names: str) -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def http_exchange(address: tuple[str, int], data: bytes, timeout_s: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it (or timeout)."""
    with socket.create_connection(address, timeout=timeout_s) as conn:
        conn.sendall(data)
        return read_until_closed(conn, timeout_s)


def read_until_closed(conn: socket.socket, timeout_s: float) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError if it never does."""
    conn.settimeout(timeout_s)
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received
