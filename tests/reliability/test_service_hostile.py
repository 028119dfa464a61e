"""The real uvicorn server against hostile clients: stalled and oversized bodies, silent and
trickling connections, clients that leave mid-body, and bad texts mixed into good traffic."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from distilnlu.deploy.parser import Parser
from distilnlu.deploy.serve import ServeSettings, create_app
from tests.deploy.live import http_exchange, live_server, read_until_closed, recorded_logs

TIMEOUT_S = 0.5
SETTINGS = ServeSettings(
    max_chars=100, max_texts=4, max_batch=16, max_wait_ms=20.0, read_timeout_s=TIMEOUT_S
)
LIMIT = SETTINGS.max_body_bytes
assert LIMIT is not None


@pytest.fixture(scope="module")
def parser(tiny_nlu_dir) -> Parser:
    return Parser.load(tiny_nlu_dir, backend="torch", threads=1)


@pytest.fixture
def server(parser):
    with live_server(create_app(parser, SETTINGS), SETTINGS) as address:
        yield address
        health = httpx.get(f"http://{address[0]}:{address[1]}/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"


def post_head(length: int, extra: str = "") -> bytes:
    return (
        f"POST /v1/parse HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def status_and_body(response: bytes) -> tuple[int, dict]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_stalled_body_gets_408_and_the_connection_is_closed(server):
    started = time.monotonic()
    response = http_exchange(server, post_head(100) + b'{"text": "pla')
    took = time.monotonic() - started
    status, body = status_and_body(response)
    assert status == 408
    assert list(body) == ["error"] and "within 0.5 s (13 bytes came)" in body["error"]
    assert b"connection: close" in response.lower()
    assert TIMEOUT_S <= took < TIMEOUT_S + 2.0


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /v1/parse HTTP/1.1\r\nHost: test\r\n", b"GET /hea"],
    ids=["nothing", "half the headers", "half the request line"],
)
def test_connections_that_stall_before_a_request_are_closed(server, sent):
    with socket.create_connection(server) as conn:
        conn.sendall(sent)
        started = time.monotonic()
        assert read_until_closed(conn, 5.0) == b""
    assert time.monotonic() - started < TIMEOUT_S + 2.0


def test_headers_trickled_a_byte_at_a_time_do_not_extend_the_deadline(server):
    request = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200
    started = time.monotonic()
    closed = False
    with socket.create_connection(server) as conn:
        for byte in request:
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # the server closed the connection: what is expected
                closed = True
                break
            time.sleep(0.02)
        closed = closed or read_until_closed(conn, 5.0) == b""
    assert closed
    assert time.monotonic() - started < TIMEOUT_S + 2.0


def test_a_body_nobody_reads_cannot_hold_the_connection_open(server):
    """/health answers without reading the body; uvicorn would wait for the rest forever."""
    request = b"GET /health HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n{"
    started = time.monotonic()
    response = http_exchange(server, request)
    assert response.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < TIMEOUT_S + 2.0


def test_bodies_over_the_cap_get_413_declared_or_streamed(server):
    status, body = status_and_body(http_exchange(server, post_head(LIMIT + 1) + b"{", 5.0))
    assert status == 413 and f"the limit is {LIMIT} bytes" in body["error"]

    chunk = b"x" * 1000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // 1000 + 2))
    head = (
        b"POST /v1/parse HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    status, body = status_and_body(http_exchange(server, head + chunks + b"0\r\n\r\n", 5.0))
    assert status == 413 and f"over the limit of {LIMIT} bytes" in body["error"]


def test_a_client_leaving_mid_body_is_one_log_line(server):
    with recorded_logs("uvicorn", "uvicorn.error", "distilnlu.serve") as logs:
        for _ in range(3):
            with socket.create_connection(server) as conn:
                conn.sendall(post_head(100) + b'{"text": ')
                time.sleep(0.05)
        time.sleep(0.3)
    lines = [r.getMessage() for r in logs.records]
    assert len(lines) == 3, lines
    assert all("went away before sending its whole body (after 9 body bytes)" in x for x in lines)
    assert all(r.exc_info is None for r in logs.records)
    assert "Traceback" not in logs.text()


POISON = [
    json.dumps({"text": "play \ud800 jazz"}).encode(),
    json.dumps({"text": "   "}).encode(),
    json.dumps({"text": "x" * 101}).encode(),
    b"{not json",
    json.dumps({"texts": ["fine", "\udc80"]}).encode(),
]
GOOD = ["set an alarm for seven am", "play some jazz", "what's the weather", "hi", "lights off"]


async def send_mixed(url: str, bodies: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        headers = {"content-type": "application/json"}
        posts = [client.post("/v1/parse", content=b, headers=headers) for b in bodies]
        return await asyncio.gather(*posts)


def test_poisoned_requests_among_good_ones_on_the_real_server(server, parser):
    good = [json.dumps({"text": t}).encode() for t in GOOD * 6]
    bodies = good[:10] + POISON + good[10:]
    url = f"http://{server[0]}:{server[1]}"
    with recorded_logs("uvicorn", "uvicorn.error") as logs:
        answers = asyncio.run(send_mixed(url, bodies))
    poisoned = answers[10 : 10 + len(POISON)]
    assert [a.status_code for a in poisoned] == [422, 422, 422, 400, 422]
    for answer in poisoned:
        assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    expected = {t: parser.parse([t])[0] for t in GOOD}
    for answer in answers[:10] + answers[10 + len(POISON) :]:
        assert answer.status_code == 200
        result = answer.json()["result"]
        assert (result["intent"], result["slots"]) == (
            expected[result["text"]]["intent"],
            expected[result["text"]]["slots"],
        )
    assert not logs.records, logs.text()
