"""A real ``distilnlu serve`` process on the tiny model, shared by the service and page tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_until_up(server: Server, deadline_s: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the server exited with status {server.process.returncode}:\n{server.output()}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /health within {deadline_s:.0f} s:\n{server.output()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def running_server(tiny_nlu_dir, tmp_path_factory):
    """``python -m distilnlu serve`` on the tiny model (torch, one thread), up and answering."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    command = [
        sys.executable, "-m", "distilnlu", "serve", str(tiny_nlu_dir),
        "--port", str(port), "--backend", "torch", "--threads", "1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop(process)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_nlu_dir, tiny_nlu_examples):
    """A copy of the tiny model, exported to fp32 and int8 ONNX with gold-labelled parity."""
    from distilnlu.deploy.export import export_model

    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_nlu_dir, folder)
    report = export_model(folder, int8=True, sample=tiny_nlu_examples[:120])
    return folder, report
