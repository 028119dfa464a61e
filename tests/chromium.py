"""Headless Chromium for the tests that look at a page: the service's try-it page, the report.

Chromium is driven through chromedriver's W3C WebDriver HTTP protocol with httpx, so the tests
need no browser-automation package, only Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import free_port, stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
ENTER = "\ue007"
DEADLINE_S = 20.0

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (make test installs them)",
)


class WebDriver:
    """The few WebDriver commands the test uses, on one browser session."""

    def __init__(self, url: str, user_data: Path) -> None:
        self.http = httpx.Client(base_url=url, timeout=60.0)
        args = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-dev-shm-usage", f"--user-data-dir={user_data}",
        ]  # fmt: skip
        options = {"binary": CHROMIUM, "args": args}
        capabilities = {"alwaysMatch": {"goog:chromeOptions": options}}
        session = self._call("POST", "/session", {"capabilities": capabilities})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        answer = self.http.request(method, path, json=body if method == "POST" else None)
        payload = answer.json()
        if answer.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {payload.get('value')}")
        return payload["value"]

    def go(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def find(self, css: str) -> str:
        found = self._call(
            "POST", f"{self.session}/element", {"using": "css selector", "value": css}
        )
        return found[ELEMENT]

    def find_all(self, css: str) -> list[str]:
        found = self._call(
            "POST", f"{self.session}/elements", {"using": "css selector", "value": css}
        )
        return [f[ELEMENT] for f in found]

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/clear", {})
        self._call("POST", f"{self.session}/element/{element}/value", {"text": text})

    def click(self, element: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/click", {})

    def prop(self, element: str, name: str) -> Any:
        return self._call("GET", f"{self.session}/element/{element}/property/{name}")

    def attr(self, element: str, name: str) -> str | None:
        return self._call("GET", f"{self.session}/element/{element}/attribute/{name}")

    def text_of(self, css: str) -> str:
        return self.prop(self.find(css), "textContent")

    def wait_for(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"the page did not show {what} within {DEADLINE_S:.0f} s")

    def execute(self, script: str) -> Any:
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": []})

    def window(self, width: int, height: int) -> None:
        self._call("POST", f"{self.session}/window/rect", {"width": width, "height": height})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.http.close()


@contextmanager
def chromium(folder: Path) -> Iterator[WebDriver]:
    """A browser session (chromedriver's log and the profile in ``folder``), closed after."""
    port = free_port()
    with (folder / "chromedriver.log").open("wb") as sink:
        driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    session = None
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                if httpx.get(f"{url}/status", timeout=2.0).json()["value"]["ready"]:
                    break
            except httpx.TransportError:
                pass
            if driver.poll() is not None or time.monotonic() > deadline:
                log = (folder / "chromedriver.log").read_text(errors="replace")
                pytest.fail(f"chromedriver did not start:\n{log[-3000:]}")
            time.sleep(0.1)
        session = WebDriver(url, folder / "profile")
        yield session
    finally:
        if session is not None:
            session.close()
        stop(driver)
