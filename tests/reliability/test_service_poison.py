"""One bad text must fail only its own request, never the good requests batched with it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from distilnlu.deploy.parser import Parser
from distilnlu.deploy.serve import ServeSettings, create_app
from distilnlu.errors import DataError

# A long wait: the concurrent requests of a test all land in the same model call.
SETTINGS = ServeSettings(max_chars=200, max_texts=8, max_batch=32, max_wait_ms=300.0)
GOOD = [
    "set an alarm for seven am",
    "play some jazz in the kitchen",
    "what's the weather in paris",
    "remind me to call mum at noon",
    "turn the lights off",
    "hi",
] * 3
POISON = "play \ud800 jazz"  # valid JSON ("\ud800"), but no UTF-8 can spell it


@pytest.fixture(scope="module")
def parser(tiny_nlu_dir) -> Parser:
    return Parser.load(tiny_nlu_dir, backend="torch")


def post_all(client: TestClient, bodies: list[bytes]) -> list:
    """POST every body at once, from as many threads."""
    headers = {"content-type": "application/json"}
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(
            pool.map(lambda b: client.post("/v1/parse", content=b, headers=headers), bodies)
        )


def text_body(text: str) -> bytes:
    return json.dumps({"text": text}).encode()  # ensure_ascii: a lone surrogate as \ud800


def check_good(answers: list, texts: list[str], parser: Parser) -> None:
    for answer, text in zip(answers, texts, strict=True):
        assert answer.status_code == 200, answer.text
        want = parser.parse([text])[0]
        got = answer.json()["result"]
        assert (got["text"], got["intent"], got["slots"]) == (text, want["intent"], want["slots"])


def test_a_lone_surrogate_is_refused_and_its_batch_mates_are_answered(parser):
    bodies = [text_body(t) for t in GOOD]
    bodies.insert(7, text_body(POISON))
    with TestClient(create_app(parser, SETTINGS)) as client:
        answers = post_all(client, bodies)
        health = client.get("/health").json()
    poisoned = answers.pop(7)
    assert poisoned.status_code == 422
    assert poisoned.json() == {
        "error": "'text' is not valid Unicode text: it holds a lone surrogate U+D800 at character 5"
    }
    check_good(answers, GOOD, parser)
    assert health["failed_batches"] == 0  # refused before it reached the model
    assert health["texts"] == len(GOOD)


class FailsOn:
    """The tiny parser, raising ``error`` for any call that holds ``bad``: a text the request
    checks let through but the model cannot take."""

    def __init__(self, parser: Parser, bad: str, error: Exception) -> None:
        self.real, self.bad, self.error = parser, bad, error
        self.labels, self.name, self.backend = parser.labels, parser.name, parser.backend
        self.max_chars = parser.max_chars
        self.calls: list[int] = []

    def parse(self, texts: list[str]) -> list[dict]:
        self.calls.append(len(texts))
        if self.bad in texts:
            raise self.error
        return self.real.parse(texts)


@pytest.mark.parametrize(
    ("error", "status", "says"),
    [
        (TypeError("the tokenizer choked"), 500, "TypeError: the tokenizer choked"),
        (DataError("text 0 is not something this model reads"), 422, "not something this"),
    ],
)
def test_a_model_call_that_fails_is_retried_text_by_text(parser, error, status, says):
    flaky = FailsOn(parser, "poison pill", error)
    bodies = [text_body(t) for t in GOOD]
    bodies.insert(3, text_body("poison pill"))
    with TestClient(create_app(flaky, SETTINGS)) as client:  # type: ignore[arg-type]
        answers = post_all(client, bodies)
        health = client.get("/health").json()
    poisoned = answers.pop(3)
    assert poisoned.status_code == status
    assert says in poisoned.json()["error"]
    check_good(answers, GOOD, parser)
    assert health["failed_batches"] >= 1 and health["failed_texts"] == 1
    assert max(flaky.calls) > 1, "the requests did not share a model call"


def test_a_request_with_one_bad_text_among_several_is_refused_whole(parser):
    with TestClient(create_app(parser, SETTINGS)) as client:
        body = json.dumps({"texts": ["play jazz", "", "hi"]}).encode()
        answer = client.post("/v1/parse", content=body)
        assert answer.status_code == 422
        assert answer.json()["error"].startswith("texts[1] is empty or only whitespace")
        assert client.get("/health").json()["requests"] == 0
