"""The HTTP service in-process: endpoints, every refused request, micro-batching, failures."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from distilnlu.deploy.parser import Parser
from distilnlu.deploy.serve import Batcher, ServeSettings, create_app
from distilnlu.errors import ConfigError

SETTINGS = ServeSettings(max_chars=50, max_texts=8, max_batch=4, max_wait_ms=5.0)
TEXTS = [
    "set an alarm for seven am",
    "what's   the weather in paris",
    "play some jazz in the kitchen",
    "remind me to call mum at noon tomorrow",
    "turn the lights off",
    "how much is a train ticket to berlin",
    "hi",
    "wake me up at 7am on friday please",
]


@pytest.fixture(scope="module")
def parser(tiny_nlu_dir) -> Parser:
    return Parser.load(tiny_nlu_dir, backend="torch")


@pytest.fixture
def client(parser):
    with TestClient(create_app(parser, SETTINGS)) as test_client:
        yield test_client


def test_health_describes_the_model_and_the_limits(client, parser):
    answer = client.get("/health")
    assert answer.status_code == 200
    health = answer.json()
    assert health["status"] == "ok"
    assert (health["model"], health["backend"]) == (parser.name, "torch")
    assert health["intents"] == len(parser.labels.intents)
    assert health["slot_types"] == (len(parser.labels.slot_tags) - 1) // 2
    assert (health["max_chars"], health["max_texts"]) == (50, 8)
    assert health["requests"] == health["batches"] == health["texts"] == 0


def test_page_is_self_contained_and_has_the_elements_its_script_uses(client):
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    for element in ("utterance", "parse", "intent", "confidence", "slots", "error"):
        assert f'id="{element}"' in page
    assert 'fetch("/v1/parse"' in page
    assert "innerHTML" not in page  # user text goes in through textContent only
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


def test_single_text_answers_equal_the_parser(client, parser):
    for text in TEXTS:
        answer = client.post("/v1/parse", json={"text": text})
        assert answer.status_code == 200
        assert answer.json() == {"result": parser.parse([text])[0]}


def test_texts_longer_than_a_batch_are_answered_in_order(client, parser):
    answer = client.post("/v1/parse", json={"texts": TEXTS})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["text"] for r in results] == TEXTS
    expected = [parser.parse([t])[0] for t in TEXTS]
    assert [(r["intent"], r["slots"]) for r in results] == [
        (e["intent"], e["slots"]) for e in expected
    ]
    for got, want in zip(results, expected, strict=True):
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-3)
    health = client.get("/health").json()
    assert health["batches"] >= 2  # 8 texts, at most 4 per model call
    assert health["texts"] == 8


def test_concurrent_requests_share_model_calls(parser):
    settings = ServeSettings(max_chars=50, max_texts=8, max_batch=32, max_wait_ms=50.0)
    with TestClient(create_app(parser, settings)) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda t: client.post("/v1/parse", json={"text": t}), TEXTS * 3))
        health = client.get("/health").json()
    assert [a.json()["result"]["text"] for a in answers] == TEXTS * 3
    assert health["requests"] == 24
    assert health["batches"] < health["requests"]


BAD_REQUESTS = [
    (b"not json", 400, "not valid JSON"),
    (b"{'text': 'single quotes'}", 400, "not valid JSON"),
    (b"", 400, "body is empty"),
    (b'["a list"]', 422, "must be a JSON object, not a list"),
    (b"{}", 422, "neither 'text' nor 'texts'"),
    (b'{"text": "a", "texts": ["b"]}', 422, "not both"),
    (b'{"text": 3}', 422, "'text' must be a string, not a number"),
    (b'{"text": null}', 422, "'text' must be a string, not a null"),
    (b'{"texts": "abc"}', 422, "'texts' must be a list of strings, not a string"),
    (b'{"texts": ["ok", null]}', 422, "texts[1] must be a string"),
    (b'{"text": "hi", "lang": "en"}', 422, "unknown key 'lang'"),
    (b'{"text": "   "}', 422, "'text' is empty or only whitespace"),
    (b'{"text": "play \\ud800 jazz"}', 422, "'text' is not valid Unicode text"),
    (b'{"texts": ["ok", "\\udfff"]}', 422, "texts[1] is not valid Unicode text"),
    (b'{"text": "ok", "\\ud800": 1}', 422, "unknown key '\\ud800'"),
    (b'{"texts": ["fine", " \\t "]}', 422, "texts[1] is empty or only whitespace"),
    (json.dumps({"text": "a" * 51}).encode(), 422, "51 characters long; the limit is 50"),
    (json.dumps({"texts": ["ok", "b" * 60]}).encode(), 422, "texts[1] is 60 characters"),
    (json.dumps({"texts": ["hi"] * 9}).encode(), 422, "9 texts; give 1 to 8"),
    (b'{"texts": []}', 422, "0 texts; give 1 to 8"),
]


@pytest.mark.parametrize(("body", "status", "says"), BAD_REQUESTS)
def test_bad_requests_get_a_sentence_saying_what_is_wrong(client, body, status, says):
    answer = client.post("/v1/parse", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert list(answer.json()) == ["error"]
    assert says in answer.json()["error"]


def test_bodies_over_the_byte_cap_are_refused_declared_or_streamed(client):
    limit = SETTINGS.max_body_bytes
    big = json.dumps({"text": "x" * limit}).encode()
    answer = client.post("/v1/parse", content=big)
    assert answer.status_code == 413
    assert f"{len(big)} bytes; the limit is {limit} bytes" in answer.json()["error"]

    def chunks():  # no Content-Length: only the bytes themselves show the size
        yield b'{"text": "'
        for _ in range(limit // 1000 + 1):
            yield b"y" * 1000
        yield b'"}'

    answer = client.post("/v1/parse", content=chunks())
    assert answer.status_code == 413
    assert f"over the limit of {limit} bytes" in answer.json()["error"]
    assert client.get("/health").json()["requests"] == 0


def test_default_byte_cap_fits_the_largest_legal_request():
    settings = ServeSettings()
    worst = {"texts": ["\U0001f600" * settings.max_chars] * settings.max_texts}
    assert len(json.dumps(worst, ensure_ascii=True, indent=1)) <= settings.max_body_bytes


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="max_batch"):
        ServeSettings(max_batch=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeSettings(max_wait_ms=-1)
    with pytest.raises(ConfigError, match="read_timeout_s"):
        ServeSettings(read_timeout_s=0)


def test_the_service_takes_no_longer_texts_than_its_parser(parser):
    with pytest.raises(ConfigError, match="over the parser's limit of 1000"):
        create_app(parser, ServeSettings(max_chars=5000))


def test_wrong_method_and_unknown_path_answer_in_json(client):
    answer = client.get("/v1/parse")
    assert answer.status_code == 405
    assert answer.json()["error"] == "GET is not allowed on /v1/parse; use POST"
    answer = client.post("/health", json={})
    assert answer.status_code == 405
    assert "POST is not allowed on /health" in answer.json()["error"]
    answer = client.get("/v2/parse")
    assert answer.status_code == 404
    assert "no such path: GET /v2/parse" in answer.json()["error"]


def test_framework_validation_errors_have_the_same_shape(parser):
    app = create_app(parser, SETTINGS)

    @app.get("/probe")
    async def probe(n: int) -> dict:
        return {"n": n}

    with TestClient(app) as client:
        answer = client.get("/probe", params={"n": "many"})
    assert answer.status_code == 422
    assert list(answer.json()) == ["error"]
    assert "query.n" in answer.json()["error"]


def test_a_failing_model_call_fails_only_its_request(tiny_nlu_dir):
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    real = parser.parse

    def flaky(texts):
        if any("boom" in t for t in texts):
            raise RuntimeError("the model fell over")
        return real(texts)

    parser.parse = flaky
    with TestClient(create_app(parser, SETTINGS)) as client:
        answer = client.post("/v1/parse", json={"text": "boom goes the model"})
        assert answer.status_code == 500
        assert "RuntimeError: the model fell over" in answer.json()["error"]
        answer = client.post("/v1/parse", json={"text": "play jazz"})
        assert answer.status_code == 200
        assert answer.json() == {"result": real(["play jazz"])[0]}


class CountingParser:
    """Echoes texts; records each model call's texts; fails a call holding "boom"."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def parse(self, texts: list[str]) -> list[dict]:
        self.calls.append(list(texts))
        if "boom" in texts:
            raise RuntimeError("boom")
        return [{"text": t} for t in texts]


def run_batcher(parser: CountingParser, requests: list[list[str]], **options) -> list:
    async def main() -> list:
        batcher = Batcher(parser, **options)  # type: ignore[arg-type]
        await batcher.start()
        try:
            tasks = [batcher.parse(texts) for texts in requests]
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_batcher_puts_concurrent_requests_in_one_call():
    parser = CountingParser()
    requests = [[f"t{i}"] for i in range(10)] + [["a", "b", "c"]]
    answers = run_batcher(parser, requests, max_batch=32, max_wait_ms=200.0)
    assert answers == [[{"text": t} for t in texts] for texts in requests]
    assert len(parser.calls) == 1


def test_batcher_splits_a_request_bigger_than_a_batch_and_keeps_order():
    parser = CountingParser()
    texts = [f"t{i}" for i in range(10)]
    answers = run_batcher(parser, [texts], max_batch=4, max_wait_ms=0.0)
    assert answers == [[{"text": t} for t in texts]]
    assert [len(call) for call in parser.calls] == [4, 4, 2]


def test_a_failing_batch_fails_only_the_text_that_fails_alone():
    parser = CountingParser()
    requests = [["x", "y"], ["boom"], ["z"], ["w", "v"]]
    answers = run_batcher(parser, requests, max_batch=2, max_wait_ms=0.0)
    assert answers[0] == [{"text": "x"}, {"text": "y"}]
    assert isinstance(answers[1], RuntimeError)
    assert answers[2] == [{"text": "z"}]  # shared its call with "boom": answered all the same
    assert answers[3] == [{"text": "w"}, {"text": "v"}]
    assert parser.calls == [["x", "y"], ["boom", "z"], ["boom"], ["z"], ["w", "v"]]


def test_a_poisoned_text_in_a_full_batch_fails_only_its_request():
    parser = CountingParser()
    requests = [[f"t{i}"] for i in range(7)] + [["ok", "boom"]] + [[f"u{i}"] for i in range(8)]
    answers = run_batcher(parser, requests, max_batch=32, max_wait_ms=200.0)
    assert len(parser.calls[0]) == 17  # all in one batch, then each alone
    assert isinstance(answers[7], RuntimeError)
    assert [a for i, a in enumerate(answers) if i != 7] == [
        [{"text": t} for t in texts] for i, texts in enumerate(requests) if i != 7
    ]


def test_a_bug_in_the_batcher_fails_its_batch_but_not_the_worker():
    class Buggy(Batcher):
        broken = True

        def _answer(self, entry, result):  # type: ignore[no-untyped-def]
            if Buggy.broken:
                Buggy.broken = False
                raise KeyError("a bug")
            super()._answer(entry, result)

    async def main() -> list:
        batcher = Buggy(CountingParser(), max_batch=4, max_wait_ms=0.0)  # type: ignore[arg-type]
        await batcher.start()
        try:
            first = await asyncio.gather(batcher.parse(["a"]), return_exceptions=True)
            return [*first, await batcher.parse(["b"])]
        finally:
            await batcher.stop()

    first, second = asyncio.run(main())
    assert isinstance(first, KeyError)
    assert second == [{"text": "b"}]


def test_serve_passes_its_timeout_and_body_cap_on(monkeypatch, tiny_nlu_dir):
    from typer.testing import CliRunner

    from distilnlu.cli import app

    seen: dict = {}
    monkeypatch.setattr("distilnlu.deploy.serve.run_server", lambda model, **kw: seen.update(kw))
    args = ["serve", str(tiny_nlu_dir), "--read-timeout", "2.5", "--max-body-bytes", "4096"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (seen["settings"].read_timeout_s, seen["settings"].max_body_bytes) == (2.5, 4096)
    CliRunner().invoke(app, ["serve", str(tiny_nlu_dir)])
    assert seen["settings"] == ServeSettings()  # the defaults: 10 s, the largest legal request
