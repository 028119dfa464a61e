"""The HTTP service under load and hostile input, on a real model: ``distilnlu serve`` on loopback.

For each backend (``--backend torch|onnx|onnx-int8|all``) the script starts ``python -m
distilnlu serve MODEL_DIR`` in its own process and, from this one (asyncio, raw sockets, one
keep-alive connection per client):

1. **load**: sends ``--requests`` good requests (one text in 8 requests carries 2-4 texts) at
   ``--concurrency``, with ``--poisoned`` bad ones shuffled in: a lone surrogate (``"\\ud800"``,
   valid JSON), an empty text, a whitespace-only text, a text over ``max_chars``, a body over the
   byte cap, a body that is not JSON and one that is not UTF-8. It counts good requests that
   failed (must be 0), poisoned ones answered 4xx (must be all), and good answers whose intent,
   slots or ``truncated`` differ from the same text parsed alone in this process (must be 0;
   the largest confidence difference is shown too);
2. **stall**: opens ``--stalled`` connections that send headers with ``Content-Length: 100``
   and then nothing, and counts those the server answered 408 and closed, and how long the last
   took; ``/health`` is asked while they are held and after;
3. **disconnect**: ``--disconnects`` clients send half a body and hang up; the server's log
   must have one line each and no traceback.

A backend the folder has no export for is exported into a temporary copy (the folder itself is
never written). Run from the repository root::

    .venv/bin/python benchmarks/service_load.py runs/massive/finetune/final --backend all
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("torch", "onnx", "onnx-int8")
STALL_LENGTH = 100  # the Content-Length the stalled connections announce and never send
STARTUP_S = 120.0


@dataclass
class Answer:
    status: int  # 0: no answer (connection error)
    body: bytes = b""


@dataclass
class Item:
    """One request of the load phase: its body, and the texts of a good one (None: poisoned)."""

    body: bytes
    texts: list[str] | None
    kind: str = "good"


@dataclass
class Row:
    backend: str
    requests: int = 0
    seconds: float = 0.0
    good_failed: int = 0
    poisoned: int = 0
    poisoned_4xx: int = 0
    differences: int = 0
    max_confidence_diff: float = 0.0
    stalled: int = 0
    stalled_408: int = 0
    stalled_closed: int = 0
    stalled_last_close_s: float = 0.0
    health_during: str = ""
    health_after: str = ""
    disconnects: int = 0
    disconnect_lines: int = 0
    tracebacks: int = 0
    poison_statuses: dict[str, list[int]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ client


def request_bytes(body: bytes, declared: int | None = None, path: str = "/v1/parse") -> bytes:
    length = len(body) if declared is None else declared
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, raw: bytes) -> Answer:
        for attempt in range(2):  # a keep-alive connection the server just closed: once more
            try:
                return await self._exchange(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                await self.close()
                if attempt:
                    return Answer(0)
        return Answer(0)

    async def _exchange(self, raw: bytes) -> Answer:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection") == "close":
            await self.close()
        return Answer(int(lines[0].split()[1]), body)

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def health(port: int) -> str:
    """``"200 in 3 ms"``, or what went wrong."""
    conn = Connection(port)
    started = time.perf_counter()
    raw = b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n"
    try:
        answer = await asyncio.wait_for(conn.send(raw), 30)
    except TimeoutError:
        return "no answer in 30 s"
    finally:
        await conn.close()
    ok = answer.status == 200 and json.loads(answer.body)["status"] == "ok"
    return f"{'ok' if ok else answer.status} in {1000 * (time.perf_counter() - started):.0f} ms"


# ------------------------------------------------------------------------------------- items


def good_texts(folder: Path, unique: int) -> list[str]:
    """Distinct utterances of the model's saved predictions (dev first), else built-in ones."""
    files = sorted(folder.glob("predictions-*.jsonl"), key=lambda p: "dev" not in p.name)
    texts: list[str] = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    if not texts:
        from distilnlu.data.synthetic import domain_utterances

        texts = domain_utterances(3 * unique, seed=0)
    return list(dict.fromkeys(t for t in texts if t.strip()))[:unique]


def poisoned_items(count: int, max_chars: int, max_body: int) -> list[Item]:
    """``count`` bad requests, the kinds of the module docstring in turn."""
    kinds = [
        ("lone surrogate", json.dumps({"text": "play \ud800 jazz"}).encode()),
        ("empty text", b'{"text": ""}'),
        ("whitespace text", b'{"text": " \\t "}'),
        ("text too long", json.dumps({"text": "a" * (max_chars + 1)}).encode()),
        ("body too large", b'{"text": "' + b"b" * max_body + b'"}'),
        ("not JSON", b"{'text': not json"),
        ("not UTF-8", b'{"text": "caf\xe9 \xff"}'),
        ("bad texts[2]", json.dumps({"texts": ["ok", "fine", "\udc80"]}).encode()),
    ]
    return [Item(kinds[i % len(kinds)][1], None, kinds[i % len(kinds)][0]) for i in range(count)]


def load_items(texts: list[str], good: int, poisoned: list[Item], seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(good):
        chosen = rng.sample(texts, rng.randint(2, 4)) if i % 8 == 7 else [rng.choice(texts)]
        body = {"texts": chosen} if len(chosen) > 1 else {"text": chosen[0]}
        items.append(Item(json.dumps(body).encode(), chosen))
    items += poisoned
    rng.shuffle(items)
    return items


# -------------------------------------------------------------------------------------- load


async def send_load(port: int, items: list[Item], concurrency: int) -> list[Answer]:
    answers: list[Answer] = [Answer(0)] * len(items)
    todo = iter(range(len(items)))

    async def client() -> None:
        conn = Connection(port)
        for i in todo:
            answers[i] = await conn.send(request_bytes(items[i].body))
        await conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return answers


def score_load(
    row: Row, items: list[Item], answers: list[Answer], alone: dict[str, dict[str, Any]]
) -> None:
    statuses: dict[str, list[int]] = {}
    for item, answer in zip(items, answers, strict=True):
        if item.texts is None:
            row.poisoned += 1
            row.poisoned_4xx += 400 <= answer.status < 500
            statuses.setdefault(item.kind, []).append(answer.status)
            continue
        if answer.status != 200:
            row.good_failed += 1
            continue
        payload = json.loads(answer.body)
        results = [payload["result"]] if "result" in payload else payload["results"]
        for text, got in zip(item.texts, results, strict=True):
            want = alone[text]
            key = ("intent", "slots", "truncated")
            row.differences += any(got[k] != want[k] for k in key) or got["text"] != text
            diff = abs(got["confidence"] - want["confidence"])
            row.max_confidence_diff = max(row.max_confidence_diff, diff)
    row.poison_statuses = {k: sorted(set(v)) for k, v in statuses.items()}


# ------------------------------------------------------------------------------ stall, leave


async def stall_one(port: int, limit_s: float) -> tuple[bool, float, bool]:
    """(closed by the server, seconds until then, answered 408)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes(b"", declared=STALL_LENGTH))
    await writer.drain()
    started = time.perf_counter()
    received = b""
    try:
        async with asyncio.timeout(limit_s):
            while chunk := await reader.read(65536):
                received += chunk
    except TimeoutError:
        return False, limit_s, received.startswith(b"HTTP/1.1 408")
    except OSError:
        pass  # a reset is a close too
    finally:
        writer.close()
    return True, time.perf_counter() - started, received.startswith(b"HTTP/1.1 408")


async def stall(row: Row, port: int, count: int, read_timeout: float) -> None:
    limit = read_timeout + 20.0
    tasks = []
    for start in range(0, count, 100):  # connect in waves: the listen backlog is finite
        tasks += [asyncio.create_task(stall_one(port, limit)) for _ in range(start, start + 100)]
        await asyncio.sleep(0.02)
    tasks = tasks[:count]
    await asyncio.sleep(min(1.0, read_timeout / 2))
    row.health_during = await health(port)
    results = await asyncio.gather(*tasks)
    row.stalled = count
    row.stalled_closed = sum(closed for closed, _, _ in results)
    row.stalled_408 = sum(got for _, _, got in results)
    row.stalled_last_close_s = max(seconds for _, seconds, _ in results)


async def leave_mid_body(port: int, count: int) -> None:
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(b'{"text": "pla', declared=STALL_LENGTH))
        await writer.drain()
        await asyncio.sleep(0.005)
        writer.close()
    await asyncio.sleep(1.0)  # the server notices and logs


# ------------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    folder: Path, backend: str, threads: int, read_timeout: float, log: Path
) -> Iterator[int]:
    port = free_port()
    command = [
        sys.executable, "-m", "distilnlu", "serve", str(folder), "--port", str(port),
        "--backend", backend, "--threads", str(threads), "--read-timeout", str(read_timeout),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(process, port, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if asyncio.run(health(port)).startswith("ok"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not come up in {STARTUP_S:.0f} s")


# -------------------------------------------------------------------------------------- runs


def exported_folder(folder: Path, backends: list[str], work: Path) -> Path:
    """``folder``, or a copy of it in ``work`` with the ONNX files ``backends`` need."""
    from distilnlu.deploy.backends import ONNX_FILES
    from distilnlu.deploy.export import dev_sample, export_model

    needed = [b for b in backends if b != "torch" and not (folder / ONNX_FILES[b]).is_file()]
    if not needed:
        return folder
    copy = work / folder.name
    shutil.copytree(folder, copy)
    print(f"exporting {folder} to ONNX (fp32 + int8) in {copy}", flush=True)
    export_model(copy, int8=True, sample=dev_sample(copy, 300))
    return copy


def alone_answers(folder: Path, backend: str, texts: list[str], threads: int) -> dict[str, Any]:
    """Each text parsed on its own, in this process: what a batch must not change."""
    import torch

    from distilnlu.deploy.parser import Parser

    torch.set_num_threads(threads)
    parser = Parser.load(folder, backend=backend, threads=threads)
    return {t: parser.parse([t])[0] for t in texts}


def run_backend(args: argparse.Namespace, folder: Path, backend: str, work: Path) -> Row:
    from distilnlu.deploy.serve import ServeSettings

    settings = ServeSettings()
    assert settings.max_body_bytes is not None
    texts = good_texts(folder, args.unique)
    alone = alone_answers(folder, backend, texts, args.threads)
    poisoned = poisoned_items(args.poisoned, settings.max_chars, settings.max_body_bytes)
    items = load_items(texts, args.requests, poisoned)
    row = Row(backend, requests=len(items))
    log = work / f"server-{backend}.log"
    with server(folder, backend, args.threads, args.read_timeout, log) as port:
        started = time.perf_counter()
        answers = asyncio.run(send_load(port, items, args.concurrency))
        row.seconds = time.perf_counter() - started
        score_load(row, items, answers, alone)
        asyncio.run(stall(row, port, args.stalled, args.read_timeout))
        asyncio.run(leave_mid_body(port, args.disconnects))
        row.disconnects = args.disconnects
        row.health_after = asyncio.run(health(port))
    text = log.read_text(errors="replace")
    row.disconnect_lines = text.count("went away before sending its whole body")
    row.tracebacks = text.count("Traceback")
    return row


def table(rows: list[Row], read_timeout: float) -> str:
    header = (
        f"{'backend':<10}{'requests':>9}{'req/s':>7}{'good failed':>12}{'poisoned 4xx':>14}"
        f"{'differences':>12}{'max|Δconf|':>11}  {'stalled closed (408)':<22}{'last close':>11}"
        f"  {'health during / after':<24}{'disconnect lines':>17}{'tracebacks':>11}"
    )
    lines = [header]
    for r in rows:
        stalled = f"{r.stalled_closed}/{r.stalled} ({r.stalled_408})"
        lines.append(
            f"{r.backend:<10}{r.requests:>9}{r.requests / r.seconds:>7.0f}{r.good_failed:>12}"
            f"{f'{r.poisoned_4xx}/{r.poisoned}':>14}{r.differences:>12}"
            f"{r.max_confidence_diff:>11.4f}  {stalled:<22}{r.stalled_last_close_s:>10.2f}s"
            f"  {r.health_during + ' / ' + r.health_after:<24}"
            f"{f'{r.disconnect_lines}/{r.disconnects}':>17}{r.tracebacks:>11}"
        )
    lines.append(f"(read timeout {read_timeout:g} s; differences: intent, slots or truncated)")
    return "\n".join(lines)


def passed(row: Row) -> bool:
    return (
        row.good_failed == 0
        and row.poisoned_4xx == row.poisoned
        and row.differences == 0
        and row.stalled_closed == row.stalled
        and row.health_during.startswith("ok")
        and row.health_after.startswith("ok")
        and row.disconnect_lines == row.disconnects
        and row.tracebacks == 0
    )


def raise_fd_limit(needed: int) -> None:
    """Stalled connections need a descriptor each, here and in the server (which inherits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=Path, help="A fine-tuned intent + slot model folder.")
    ap.add_argument("--backend", default="all", choices=[*BACKENDS, "all"])
    ap.add_argument("--requests", type=int, default=10_000, help="Good requests.")
    ap.add_argument("--poisoned", type=int, default=200, help="Bad requests mixed in.")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--unique", type=int, default=1000, help="Distinct utterances used.")
    ap.add_argument("--stalled", type=int, default=1000, help="Stalled connections.")
    ap.add_argument("--disconnects", type=int, default=100, help="Clients leaving mid-body.")
    ap.add_argument("--read-timeout", type=float, default=10.0, help="serve --read-timeout.")
    ap.add_argument("--threads", type=int, default=1, help="serve --threads (and the reference).")
    ap.add_argument("--json", type=Path, help="Also write the rows here.")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    backends = list(BACKENDS) if args.backend == "all" else [args.backend]
    raise_fd_limit(2 * args.stalled + 4 * args.concurrency + 256)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = exported_folder(args.model_dir.resolve(), backends, Path(tmp))
        for backend in backends:
            print(f"{backend}: load, stall and disconnect phases", flush=True)
            rows.append(run_backend(args, folder, backend, Path(tmp)))
    print(table(rows, args.read_timeout))
    for r in rows:
        print(f"{r.backend}: poisoned answers by kind: {r.poison_statuses}")
    print("PASS" if all(passed(r) for r in rows) else "FAIL")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
