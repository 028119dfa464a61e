"""The real server under load: thousands of concurrent requests, every answer checked."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from distilnlu.data.synthetic import domain_utterances
from distilnlu.deploy.parser import Parser

REQUESTS = 2000
CONCURRENCY = 32
LOAD_SECONDS = 120.0
ODD_UTTERANCES = [
    "  wake me   up at 7am\ton friday ",
    "réveille-moi à sept heures",
    "play 🎵 some jazz 🎷 please",
    "what's the weather in são paulo?",
    "hi",
]


def utterances() -> list[str]:
    plain = list(dict.fromkeys(domain_utterances(120, seed=3)))
    return plain[: 50 - len(ODD_UTTERANCES)] + ODD_UTTERANCES


def request_bodies(texts: list[str], n: int) -> list[dict]:
    """Three single-text requests in four; the rest carry 2 to 6 texts."""
    rng = random.Random(0)
    bodies: list[dict] = []
    for i in range(n):
        if i % 4 == 3:
            bodies.append({"texts": rng.sample(texts, rng.randint(2, 6))})
        else:
            bodies.append({"text": rng.choice(texts)})
    return bodies


async def send_all(url: str, bodies: list[dict]) -> list[httpx.Response | BaseException]:
    """POST every body, ``CONCURRENCY`` at a time, each worker on its own keep-alive connection
    (one client shared by 32 tasks spends more time in its pool than the server does working)."""
    answers: list[httpx.Response | BaseException | None] = [None] * len(bodies)
    todo = iter(range(len(bodies)))

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            for i in todo:
                try:
                    answers[i] = await client.post("/v1/parse", json=bodies[i])
                except httpx.HTTPError as exc:
                    answers[i] = exc

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), LOAD_SECONDS)
    return answers  # type: ignore[return-value]


def test_concurrent_load_gets_the_in_process_answers(running_server, tiny_nlu_dir, record_property):
    texts = utterances()
    assert len(set(texts)) == 50
    parser = Parser.load(tiny_nlu_dir, backend="torch")
    expected = {t: parser.parse([t])[0] for t in texts}
    bodies = request_bodies(texts, REQUESTS)
    before = httpx.get(f"{running_server.url}/health").json()

    started = time.perf_counter()
    answers = asyncio.run(send_all(running_server.url, bodies))
    seconds = time.perf_counter() - started

    failed = [a if isinstance(a, BaseException) else a.status_code for a in answers]
    failed = [f for f in failed if f != 200]
    assert not failed, f"{len(failed)} failed requests, e.g. {failed[:3]}"
    for body, answer in zip(bodies, answers, strict=True):
        payload = answer.json()
        sent = [body["text"]] if "text" in body else body["texts"]
        got = [payload["result"]] if "text" in body else payload["results"]
        assert [r["text"] for r in got] == sent
        for result in got:
            want = expected[result["text"]]
            assert (result["intent"], result["slots"]) == (want["intent"], want["slots"])
            assert result["confidence"] == pytest.approx(want["confidence"], abs=1e-3)
            assert result["truncated"] == want["truncated"]

    after = httpx.get(f"{running_server.url}/health").json()
    calls = after["batches"] - before["batches"]
    assert after["requests"] - before["requests"] == REQUESTS
    assert after["texts"] - before["texts"] == sum(len(b.get("texts", [0])) for b in bodies)
    assert calls < REQUESTS, "no request shared a model call: micro-batching did not happen"
    rate = REQUESTS / seconds
    record_property("requests_per_second", round(rate, 1))
    record_property("model_calls", calls)
    print(f"\n{REQUESTS} requests at concurrency {CONCURRENCY} in {seconds:.2f} s: {rate:.0f}/s, "
          f"{calls} model calls ({REQUESTS / calls:.1f} requests per call)")  # fmt: skip
