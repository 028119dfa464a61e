"""The try-it page in headless Chromium (tests/chromium.py): what it shows is what the API
answers."""

from __future__ import annotations

import httpx
import pytest

from tests.chromium import ENTER, WebDriver, chromium, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium")) as session:
        yield session


def api(server, text: str) -> dict:
    answer = httpx.post(f"{server.url}/v1/parse", json={"text": text}, timeout=30.0)
    return answer.json()["result"]


def submit(browser: WebDriver, text: str, by_enter: bool) -> None:
    field = browser.find("#utterance")
    browser.type(field, text + ENTER if by_enter else text)
    if not by_enter:
        browser.click(browser.find("#parse"))


@pytest.mark.parametrize(
    ("text", "by_enter"),
    [
        ("set an alarm for five oh eight pm to move the car", False),
        ("remind me to call lucy on friday at noon", True),
        ("play 🎵 some jazz in the kitchen", True),
    ],
)
def test_page_shows_the_intent_and_slots_the_api_gives(browser, running_server, text, by_enter):
    want = api(running_server, text)
    assert want["slots"], "pick utterances the tiny model tags, or the highlights go untested"
    browser.go(running_server.url + "/")
    submit(browser, text, by_enter)
    shown = browser.wait_for(lambda: browser.text_of("#intent"), "an intent")
    assert shown == want["intent"]
    assert float(browser.text_of("#confidence")) == pytest.approx(want["confidence"], abs=1e-4)
    # The utterance is re-rendered whole, slot labels living only in CSS (not in the text).
    assert browser.text_of("#slots") == text
    marks = browser.find_all("#slots mark.slot")
    assert [(browser.attr(m, "data-type"), browser.prop(m, "textContent")) for m in marks] == [
        (s["type"], s["value"]) for s in want["slots"]
    ]
    assert browser.text_of("#error") == ""


def test_page_shows_the_services_error_and_recovers(browser, running_server):
    browser.go(running_server.url + "/")
    submit(browser, "   ", by_enter=True)
    message = browser.wait_for(lambda: browser.text_of("#error"), "an error")
    assert "empty or only whitespace" in message
    assert browser.prop(browser.find("#result"), "hidden") is True

    submit(browser, "turn the lights off", by_enter=False)
    shown = browser.wait_for(lambda: browser.text_of("#intent"), "an intent")
    assert shown == api(running_server, "turn the lights off")["intent"]
    assert browser.text_of("#error") == ""
